// backprop.nn: modules and layers; backprop.loss: costs; backprop.optim: optimisers.
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bindings.hpp"

namespace pybp {

namespace {

namespace nn = bp::nn;

template <class E>
E pick(const std::string& value, const char* what, const std::vector<std::pair<const char*, E>>& names) {
  std::string known;
  for (const auto& [name, e] : names) {
    if (value == name) return e;
    known += known.empty() ? name : std::string(", ") + name;
  }
  throw bp::ValueError(std::string(what) + ": unknown value '" + value + "' (expected one of " + known + ")");
}

nn::Nonlinearity nonlinearity(const std::string& s) {
  using N = nn::Nonlinearity;
  return pick<N>(s, "nonlinearity",
                 {{"linear", N::linear},
                  {"sigmoid", N::sigmoid},
                  {"tanh", N::tanh},
                  {"relu", N::relu},
                  {"leaky_relu", N::leaky_relu}});
}

nn::Init init(const std::string& s) {
  using I = nn::Init;
  return pick<I>(s, "init",
                 {{"kaiming_uniform", I::kaiming_uniform},
                  {"kaiming_normal", I::kaiming_normal},
                  {"xavier_uniform", I::xavier_uniform},
                  {"xavier_normal", I::xavier_normal},
                  {"zeros", I::zeros}});
}

bp::loss::Reduction reduction(const std::string& s) {
  using R = bp::loss::Reduction;
  return pick<R>(s, "reduction", {{"mean", R::mean}, {"sum", R::sum}});
}

bp::Generator& gen_or_default(bp::Generator* gen) {
  return gen ? *gen : default_generator();
}

py::list named(const std::vector<std::pair<std::string, bp::Tensor>>& items) {
  py::list out;
  for (const auto& [name, t] : items) out.append(py::make_tuple(name, t));
  return out;
}

bp::Tensors params_of(const py::object& params) {
  if (py::isinstance<nn::Module>(params)) return params.cast<nn::Module&>().parameters();
  return params.cast<bp::Tensors>();
}

// A Module written in Python: forward (and optionally repr) overridden; parameters and children registered
// with register_parameter / register_module.
class PyModule : public nn::Module {
 public:
  bp::Tensor forward(const bp::Tensor& x) override {
    PYBIND11_OVERRIDE_PURE(bp::Tensor, nn::Module, forward, x);
  }
  std::string repr() const override {
    py::gil_scoped_acquire gil;
    if (py::function f = py::get_override(static_cast<const nn::Module*>(this), "__repr__"))
      return f().cast<std::string>();
    return "Module()";
  }
  using nn::Module::register_buffer;
  using nn::Module::register_module;
  using nn::Module::register_parameter;
};

// The module as a Python subclass of Module (the only kind that registers from Python).
PyModule& python_module(nn::Module& mod, const char* what) {
  auto* p = dynamic_cast<PyModule*>(&mod);
  BP_CHECK(p != nullptr, ValueError, what,
           ": only a Module subclass written in Python registers from Python (", mod.repr(), " is built in)");
  return *p;
}

template <class T>
using Class = py::class_<T, nn::Module, std::shared_ptr<T>>;

}  // namespace

void bind_nn(py::module_& top) {
  py::module_ m = top.def_submodule("nn", "Layers and networks (backprop/nn.hpp).");
  py::class_<nn::Module, PyModule, std::shared_ptr<nn::Module>>(m, "Module", R"doc(
Base of every layer and network. Subclass it in Python to write a network: call super().__init__(),
register parameters and children with register_parameter / register_module, and define forward(x).)doc")
      .def(py::init<>())
      .def("forward", py::overload_cast<const bp::Tensor&>(&nn::Module::forward), py::arg("x"))
      .def(
          "__call__", [](nn::Module& mod, const bp::Tensor& x) { return mod.forward(x); }, py::arg("x"))
      .def("__repr__", &nn::Module::repr)
      .def("parameters", &nn::Module::parameters, "Every parameter, in the order named_parameters() gives.")
      .def("named_parameters", [](const nn::Module& mod) { return named(mod.named_parameters()); })
      .def("named_buffers", [](const nn::Module& mod) { return named(mod.named_buffers()); })
      .def("children",
           [](const nn::Module& mod) {
             py::list out;
             for (const auto& [name, child] : mod.named_children()) out.append(child);
             return out;
           })
      .def("named_children", &nn::Module::named_children)
      .def("named_modules", &nn::Module::named_modules)
      .def("state_dict", &nn::Module::state_dict,
           "Parameters and buffers by dotted name (the live tensors; clone them for a snapshot).")
      .def(
          "load_state_dict",
          [](nn::Module& mod, const py::dict& state) {
            // Integer entries (BatchNorm's num_batches_tracked) are read as int64, exactly; the rest as tensors.
            const std::map<std::string, bp::Tensor> current = mod.state_dict();
            std::map<std::string, bp::Tensor> s;
            for (const auto& [k, v] : state) {
              const auto name = k.cast<std::string>();
              const auto it = current.find(name);
              s[name] = it != current.end() && it->second.dtype() == bp::i64
                            ? to_indices(v, "load_state_dict")
                            : to_tensor(v, "load_state_dict");
            }
            mod.load_state_dict(s);
          },
          py::arg("state"),
          "Copies `state` (tensors or arrays by name) into the parameters and buffers (strict).")
      .def("train", &nn::Module::train, py::arg("mode") = true)
      .def("eval", &nn::Module::eval)
      .def_property_readonly("training", &nn::Module::is_training)
      .def("zero_grad", &nn::Module::zero_grad)
      .def("num_parameters", &nn::Module::num_parameters)
      .def(
          "register_parameter",
          [](nn::Module& mod, const std::string& name, const py::object& t) {
            return python_module(mod, "register_parameter")
                .register_parameter(name, to_tensor(t, "register_parameter"));
          },
          py::arg("name"), py::arg("tensor"), "Registers a trainable tensor (returned, now requiring grad).")
      .def(
          "register_buffer",
          [](nn::Module& mod, const std::string& name, const py::object& t) {
            return python_module(mod, "register_buffer")
                .register_buffer(name, to_tensor(t, "register_buffer"));
          },
          py::arg("name"), py::arg("tensor"))
      .def(
          "register_module",
          [](nn::Module& mod, const std::string& name, const nn::ModulePtr& child) {
            return python_module(mod, "register_module").register_module(name, child);
          },
          py::arg("name"), py::arg("module"), py::keep_alive<1, 3>());

  Class<nn::Sequential>(m, "Sequential", "Applies its modules in order.")
      .def(py::init([](const py::args& mods) {
             auto s = std::make_shared<nn::Sequential>();
             for (const py::handle h : mods) s->push_back(h.cast<nn::ModulePtr>());
             return s;
           }),
           py::keep_alive<1, 2>())  // a module written in Python lives as long as its container
      .def(
          "append", [](nn::Sequential& s, const nn::ModulePtr& mod) { s.push_back(mod); }, py::arg("module"),
          py::keep_alive<1, 2>())
      .def("__len__", &nn::Sequential::size)
      .def(
          "__getitem__",
          [](const nn::Sequential& s, std::int64_t i) {
            const auto n = static_cast<std::int64_t>(s.size());
            return s[static_cast<std::size_t>(i < 0 && i >= -n ? i + n : i)];
          },
          py::arg("index"))
      .def("forward_all", &nn::Sequential::forward_all, py::arg("x"),
           "The output of every module, in order.");

  Class<nn::Linear>(m, "Linear", "x @ weight.T + bias: [N, in_features] -> [N, out_features].")
      .def(py::init([](std::int64_t in, std::int64_t out, bool bias, const std::string& in_init,
                       const std::string& nl, const py::object& dtype, bp::Generator* gen) {
             return std::make_shared<nn::Linear>(in, out, gen_or_default(gen),
                                                 nn::LinearOptions{.bias = bias,
                                                                   .init = init(in_init),
                                                                   .nonlinearity = nonlinearity(nl),
                                                                   .dtype = to_dtype(dtype)});
           }),
           py::arg("in_features"), py::arg("out_features"), py::arg("bias") = true,
           py::arg("init") = "kaiming_uniform", py::arg("nonlinearity") = "relu", py::arg("dtype") = bp::f32,
           py::arg("generator") = nullptr)
      .def_property_readonly("weight", &nn::Linear::weight)
      .def_property_readonly("bias", [](const nn::Linear& l) { return maybe(l.bias()); })
      .def_property_readonly("in_features", &nn::Linear::in_features)
      .def_property_readonly("out_features", &nn::Linear::out_features);

  Class<nn::ReLU>(m, "ReLU").def(py::init<>());
  Class<nn::Sigmoid>(m, "Sigmoid").def(py::init<>());
  Class<nn::Tanh>(m, "Tanh").def(py::init<>());
  Class<nn::Identity>(m, "Identity").def(py::init<>());
  Class<nn::LeakyReLU>(m, "LeakyReLU").def(py::init<double>(), py::arg("slope") = 0.01);
  Class<nn::Softmax>(m, "Softmax").def(py::init<std::int64_t>(), py::arg("dim") = -1);
  Class<nn::LogSoftmax>(m, "LogSoftmax").def(py::init<std::int64_t>(), py::arg("dim") = -1);
  Class<nn::Flatten>(m, "Flatten")
      .def(py::init<std::int64_t, std::int64_t>(), py::arg("start_dim") = 1, py::arg("end_dim") = -1);
  Class<nn::Unflatten>(m, "Unflatten")
      .def(py::init<std::int64_t, bp::Shape>(), py::arg("dim"), py::arg("sizes"));

  Class<nn::Dropout>(m, "Dropout", "Zeroes each element with probability p in training (inverted dropout).")
      .def(py::init([](double p, bp::Generator* gen) {
             return std::make_shared<nn::Dropout>(p, gen_or_default(gen));
           }),
           py::arg("p") = 0.5, py::arg("generator") = nullptr)
      .def_property_readonly("p", &nn::Dropout::p);
  Class<nn::DropConnect>(m, "DropConnect",
                         "A dense layer whose weights are dropped with probability p in training.")
      .def(py::init([](std::int64_t in, std::int64_t out, double p, bool bias, const py::object& dtype,
                       bp::Generator* gen) {
             return std::make_shared<nn::DropConnect>(
                 in, out, p, gen_or_default(gen),
                 nn::DropConnectOptions{.bias = bias, .dtype = to_dtype(dtype)});
           }),
           py::arg("in_features"), py::arg("out_features"), py::arg("p") = 0.5, py::arg("bias") = true,
           py::arg("dtype") = bp::f32, py::arg("generator") = nullptr)
      .def_property_readonly("weight", &nn::DropConnect::weight)
      .def_property_readonly("bias", [](const nn::DropConnect& l) { return maybe(l.bias()); });

  Class<nn::BatchNorm1d>(m, "BatchNorm1d", "Batch normalisation of [N, C] features.")
      .def(py::init([](std::int64_t features, double eps, double momentum, bool affine,
                       const py::object& dtype) {
             return std::make_shared<nn::BatchNorm1d>(
                 features, nn::BatchNormOptions{
                               .eps = eps, .momentum = momentum, .affine = affine, .dtype = to_dtype(dtype)});
           }),
           py::arg("num_features"), py::arg("eps") = 1e-5, py::arg("momentum") = 0.1,
           py::arg("affine") = true, py::arg("dtype") = bp::f32)
      .def_property_readonly("weight", [](const nn::BatchNorm1d& l) { return maybe(l.weight()); })
      .def_property_readonly("bias", [](const nn::BatchNorm1d& l) { return maybe(l.bias()); })
      .def_property_readonly("running_mean", &nn::BatchNorm1d::running_mean)
      .def_property_readonly("running_var", &nn::BatchNorm1d::running_var);

  Class<nn::LayerNorm>(m, "LayerNorm", "Normalises over the last len(normalized_shape) dimensions.")
      .def(py::init([](const py::object& shape, double eps, bool affine, const py::object& dtype) {
             bp::Shape s = py::isinstance<py::int_>(shape) ? bp::Shape{shape.cast<std::int64_t>()}
                                                           : shape.cast<bp::Shape>();
             return std::make_shared<nn::LayerNorm>(
                 s, nn::LayerNormOptions{.eps = eps, .elementwise_affine = affine, .dtype = to_dtype(dtype)});
           }),
           py::arg("normalized_shape"), py::arg("eps") = 1e-5, py::arg("elementwise_affine") = true,
           py::arg("dtype") = bp::f32)
      .def_property_readonly("weight", [](const nn::LayerNorm& l) { return maybe(l.weight()); })
      .def_property_readonly("bias", [](const nn::LayerNorm& l) { return maybe(l.bias()); });

  Class<nn::Residual>(m, "Residual", "x + block(x).")
      .def(py::init([](const nn::ModulePtr& block) { return std::make_shared<nn::Residual>(block); }),
           py::arg("block"), py::keep_alive<1, 2>())
      .def_property_readonly("block", &nn::Residual::block);

  // ---- losses ----
  py::module_ lm =
      top.def_submodule("loss", "Costs (backprop/loss.hpp): loss(output, target) -> 0-d tensor.");
  namespace L = bp::loss;
  py::class_<L::Loss, std::shared_ptr<L::Loss>>(lm, "Loss")
      .def("__call__", &L::Loss::operator(), py::arg("output"), py::arg("target"))
      .def("__repr__", &L::Loss::repr);
  py::class_<L::CrossEntropy, L::Loss, std::shared_ptr<L::CrossEntropy>>(
      lm, "CrossEntropy", "Softmax cross-entropy from logits [N, C] and class indices [N].")
      .def(py::init([](double smoothing, const std::string& red) {
             return std::make_shared<L::CrossEntropy>(
                 L::CrossEntropyOptions{.label_smoothing = smoothing, .reduction = reduction(red)});
           }),
           py::arg("label_smoothing") = 0.0, py::arg("reduction") = "mean");
  py::class_<L::MSE, L::Loss, std::shared_ptr<L::MSE>>(lm, "MSE", "Mean (or sum) of squared differences.")
      .def(py::init([](const std::string& red) {
             return std::make_shared<L::MSE>(L::MSEOptions{reduction(red)});
           }),
           py::arg("reduction") = "mean");
  py::class_<L::SoftmaxMSE, L::Loss, std::shared_ptr<L::SoftmaxMSE>>(lm, "SoftmaxMSE")
      .def(py::init([](const std::string& red) {
             return std::make_shared<L::SoftmaxMSE>(L::MSEOptions{reduction(red)});
           }),
           py::arg("reduction") = "mean");
  py::class_<L::Quadratic, L::Loss, std::shared_ptr<L::Quadratic>>(lm, "Quadratic")
      .def(py::init([](const std::string& red) {
             return std::make_shared<L::Quadratic>(L::QuadraticOptions{reduction(red)});
           }),
           py::arg("reduction") = "mean");
  py::class_<L::NLL, L::Loss, std::shared_ptr<L::NLL>>(lm, "NLL").def(
      py::init(
          [](const std::string& red) { return std::make_shared<L::NLL>(L::NLLOptions{reduction(red)}); }),
      py::arg("reduction") = "mean");
  py::class_<L::BCEWithLogits, L::Loss, std::shared_ptr<L::BCEWithLogits>>(lm, "BCEWithLogits")
      .def(py::init([](const std::string& red) {
             return std::make_shared<L::BCEWithLogits>(L::BCEWithLogitsOptions{reduction(red)});
           }),
           py::arg("reduction") = "mean");

  // ---- optimisers ----
  py::module_ om = top.def_submodule(
      "optim", "Optimisers (backprop/optim.hpp); `params` is a list of tensors or a Module.");
  namespace O = bp::optim;
  py::class_<O::Optimizer, std::shared_ptr<O::Optimizer>>(om, "Optimizer")
      .def("step", &O::Optimizer::step, "One update from the current gradients.")
      .def("zero_grad", &O::Optimizer::zero_grad)
      .def_property("lr", &O::Optimizer::lr, &O::Optimizer::set_lr)
      .def_property_readonly("steps", &O::Optimizer::steps)
      .def("__repr__", &O::Optimizer::repr);
  py::class_<O::SGD, O::Optimizer, std::shared_ptr<O::SGD>>(om, "SGD").def(
      py::init([](const py::object& params, double lr, double momentum, double dampening, bool nesterov,
                  double wd) {
        return std::make_shared<O::SGD>(params_of(params), O::SGDOptions{.lr = lr,
                                                                         .momentum = momentum,
                                                                         .dampening = dampening,
                                                                         .nesterov = nesterov,
                                                                         .weight_decay = wd});
      }),
      py::arg("params"), py::arg("lr") = 0.01, py::arg("momentum") = 0.0, py::arg("dampening") = 0.0,
      py::arg("nesterov") = false, py::arg("weight_decay") = 0.0);
  py::class_<O::Adam, O::Optimizer, std::shared_ptr<O::Adam>>(om, "Adam")
      .def(py::init([](const py::object& params, double lr, std::pair<double, double> betas, double eps,
                       double wd) {
             return std::make_shared<O::Adam>(
                 params_of(params),
                 O::AdamOptions{
                     .lr = lr, .beta1 = betas.first, .beta2 = betas.second, .eps = eps, .weight_decay = wd});
           }),
           py::arg("params"), py::arg("lr") = 1e-3, py::arg("betas") = std::pair<double, double>{0.9, 0.999},
           py::arg("eps") = 1e-8, py::arg("weight_decay") = 0.0);
  py::class_<O::AdamW, O::Adam, std::shared_ptr<O::AdamW>>(om, "AdamW")
      .def(py::init([](const py::object& params, double lr, std::pair<double, double> betas, double eps,
                       double wd) {
             return std::make_shared<O::AdamW>(
                 params_of(params),
                 O::AdamWOptions{
                     .lr = lr, .beta1 = betas.first, .beta2 = betas.second, .eps = eps, .weight_decay = wd});
           }),
           py::arg("params"), py::arg("lr") = 1e-3, py::arg("betas") = std::pair<double, double>{0.9, 0.999},
           py::arg("eps") = 1e-8, py::arg("weight_decay") = 1e-2);
  py::class_<O::RMSprop, O::Optimizer, std::shared_ptr<O::RMSprop>>(om, "RMSprop")
      .def(py::init([](const py::object& params, double lr, double alpha, double eps, double momentum,
                       double wd, bool centered) {
             return std::make_shared<O::RMSprop>(params_of(params), O::RMSpropOptions{.lr = lr,
                                                                                      .alpha = alpha,
                                                                                      .eps = eps,
                                                                                      .momentum = momentum,
                                                                                      .weight_decay = wd,
                                                                                      .centered = centered});
           }),
           py::arg("params"), py::arg("lr") = 1e-2, py::arg("alpha") = 0.99, py::arg("eps") = 1e-8,
           py::arg("momentum") = 0.0, py::arg("weight_decay") = 0.0, py::arg("centered") = false);
  om.def("clip_grad_norm", &O::clip_grad_norm, py::arg("params"), py::arg("max_norm"),
         "Scales the gradients so their total 2-norm is at most max_norm; returns the norm before.");
}

}  // namespace pybp
