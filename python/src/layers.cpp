// backprop.nn's convolution, pooling, embedding, attention and container layers, and the functional ops they
// rest on (backprop.conv2d, max_pool2d, embedding, ...), with PyTorch's argument names and defaults.
#include <backprop/nn/reduce.hpp>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "bindings.hpp"

namespace pybp {

namespace {

namespace nn = bp::nn;

// A spatial size as PyTorch takes it: one int for both dims, or (h, w).
using Pair = std::pair<std::int64_t, std::int64_t>;
using IntOrPair = std::variant<std::int64_t, Pair>;
// A convolution's padding: an int, (h, w), "same" or "valid".
using Padding = std::variant<std::int64_t, Pair, std::string>;
// Conv1d's sizes: an int or a 1-tuple.
using IntOrSingle = std::variant<std::int64_t, std::tuple<std::int64_t>>;
using Padding1d = std::variant<std::int64_t, std::tuple<std::int64_t>, std::string>;

bp::Size2 size2(const IntOrPair& s) {
  if (const auto* n = std::get_if<std::int64_t>(&s)) return {*n};
  const Pair& p = std::get<Pair>(s);
  return {p.first, p.second};
}

// A pooling stride: None means the kernel size (0 in the library).
bp::Size2 stride2(const std::optional<IntOrPair>& s) {
  return s ? size2(*s) : bp::Size2(0);
}

bp::ConvPadding padding2(const Padding& p) {
  if (const auto* mode = std::get_if<std::string>(&p)) return bp::ConvPadding(*mode);
  if (const auto* n = std::get_if<std::int64_t>(&p)) return {*n};
  return {std::get<Pair>(p).first, std::get<Pair>(p).second};
}

std::int64_t size1(const IntOrSingle& s) {
  if (const auto* n = std::get_if<std::int64_t>(&s)) return *n;
  return std::get<0>(std::get<std::tuple<std::int64_t>>(s));
}

bp::ConvPadding padding1(const Padding1d& p) {
  if (const auto* mode = std::get_if<std::string>(&p)) return bp::ConvPadding(*mode);
  if (const auto* n = std::get_if<std::int64_t>(&p)) return {*n};
  return {std::get<0>(std::get<std::tuple<std::int64_t>>(p))};
}

py::tuple pair_of(bp::Size2 s) {
  return py::make_tuple(s.h, s.w);
}

bp::Generator& gen_or_default(bp::Generator* gen) {
  return gen ? *gen : default_generator();
}

// Adds each module of `modules` to a container through `add`, keeping the Python object of each alive as long
// as the container (a module written in Python needs its Python half for its forward).
template <class Add>
void add_kept_alive(const py::handle& self, const py::handle& module, Add add) {
  add(module.cast<nn::ModulePtr>());
  py::detail::keep_alive_impl(self, module);
}

// A new, empty container that keeps the Python objects of the modules its constructor is given until it is
// destroyed, as add_kept_alive does later (a constructor has no `self` to keep them alive through).
template <class C>
std::shared_ptr<C> container_holding(std::vector<py::object> objects) {
  return std::shared_ptr<C>(new C(), [objects = std::move(objects)](C* c) mutable {
    delete c;  // first: a module written in Python is destroyed with its Python object, under the GIL
    if (Py_IsInitialized() == 0) {
      for (py::object& o : objects) o.release();  // the interpreter is gone: nothing to release
      return;
    }
    py::gil_scoped_acquire gil;
    objects.clear();
  });
}

template <class T>
using Class = py::class_<T, nn::Module, std::shared_ptr<T>>;

void bind_functional(py::module_& m) {
  m.def(
      "conv2d",
      [](const bp::Tensor& input, const bp::Tensor& weight, const std::optional<bp::Tensor>& bias,
         const IntOrPair& stride, const Padding& padding, const IntOrPair& dilation, std::int64_t groups) {
        return bp::conv2d(input, weight, bias.value_or(bp::Tensor()), size2(stride), padding2(padding),
                          size2(dilation), groups);
      },
      py::arg("input"), py::arg("weight"), py::arg("bias") = py::none(), py::arg("stride") = 1,
      py::arg("padding") = 0, py::arg("dilation") = 1, py::arg("groups") = 1, R"doc(
2-D cross-correlation (torch.nn.functional.conv2d): input [N, C, H, W], weight [O, C / groups, kh, kw],
bias [O] -> [N, O, OH, OW]. Sizes are an int or (h, w); padding also "same" (stride 1) or "valid".)doc");
  m.def(
      "conv1d",
      [](const bp::Tensor& input, const bp::Tensor& weight, const std::optional<bp::Tensor>& bias,
         const IntOrSingle& stride, const Padding1d& padding, const IntOrSingle& dilation,
         std::int64_t groups) {
        return bp::conv1d(input, weight, bias.value_or(bp::Tensor()), size1(stride), padding1(padding),
                          size1(dilation), groups);
      },
      py::arg("input"), py::arg("weight"), py::arg("bias") = py::none(), py::arg("stride") = 1,
      py::arg("padding") = 0, py::arg("dilation") = 1, py::arg("groups") = 1,
      "1-D cross-correlation: input [N, C, L], weight [O, C / groups, k] -> [N, O, OL].");
  m.def(
      "conv_transpose2d",
      [](const bp::Tensor& input, const bp::Tensor& weight, const std::optional<bp::Tensor>& bias,
         const IntOrPair& stride, const IntOrPair& padding, const IntOrPair& output_padding,
         std::int64_t groups, const IntOrPair& dilation) {
        return bp::conv_transpose2d(input, weight, bias.value_or(bp::Tensor()), size2(stride), size2(padding),
                                    size2(output_padding), groups, size2(dilation));
      },
      py::arg("input"), py::arg("weight"), py::arg("bias") = py::none(), py::arg("stride") = 1,
      py::arg("padding") = 0, py::arg("output_padding") = 0, py::arg("groups") = 1, py::arg("dilation") = 1,
      "The transposed convolution (torch.nn.functional.conv_transpose2d): input [N, C, H, W], weight "
      "[C, O / groups, kh, kw].");
  m.def(
      "max_pool2d",
      [](const bp::Tensor& input, const IntOrPair& kernel_size, const std::optional<IntOrPair>& stride,
         const IntOrPair& padding, const IntOrPair& dilation, bool ceil_mode,
         bool return_indices) -> py::object {
        if (!return_indices)
          return py::cast(bp::max_pool2d(input, size2(kernel_size), stride2(stride), size2(padding),
                                         size2(dilation), ceil_mode));
        const bp::ValuesIndices vi = bp::max_pool2d_with_indices(input, size2(kernel_size), stride2(stride),
                                                                 size2(padding), size2(dilation), ceil_mode);
        return py::make_tuple(vi.values, vi.indices.to(bp::i64));
      },
      py::arg("input"), py::arg("kernel_size"), py::arg("stride") = py::none(), py::arg("padding") = 0,
      py::arg("dilation") = 1, py::arg("ceil_mode") = false, py::arg("return_indices") = false, R"doc(
Largest value of each window (stride None: the kernel size). With return_indices, (values, indices): each
maximum's flat position h * W + w in its input plane, int64, as PyTorch gives them.)doc");
  m.def(
      "avg_pool2d",
      [](const bp::Tensor& input, const IntOrPair& kernel_size, const std::optional<IntOrPair>& stride,
         const IntOrPair& padding, bool ceil_mode, bool count_include_pad) {
        return bp::avg_pool2d(input, size2(kernel_size), stride2(stride), size2(padding), ceil_mode,
                              count_include_pad);
      },
      py::arg("input"), py::arg("kernel_size"), py::arg("stride") = py::none(), py::arg("padding") = 0,
      py::arg("ceil_mode") = false, py::arg("count_include_pad") = true,
      "Mean of each window (stride None: the kernel size; the divisor counts the padding unless "
      "count_include_pad is False).");
  m.def(
      "adaptive_avg_pool2d",
      [](const bp::Tensor& input, const IntOrPair& output_size) {
        return bp::adaptive_avg_pool2d(input, size2(output_size));
      },
      py::arg("input"), py::arg("output_size"), "Mean over output_size windows; 1 gives the global average.");
  m.def(
      "embedding",
      [](const py::object& input, const bp::Tensor& weight, std::optional<std::int64_t> padding_idx) {
        return bp::embedding(to_indices(input, "embedding"), weight, padding_idx);
      },
      py::arg("input"), py::arg("weight"), py::arg("padding_idx") = py::none(), R"doc(
Rows of weight [V, D] at the indices `input` (any shape; an int64 Tensor, a NumPy integer array, or whole
numbers) -> input.shape + (D,). The row padding_idx gets no gradient.)doc");
}

void bind_conv(py::module_& m) {
  Class<nn::Conv2d>(m, "Conv2d", R"doc(
2-D convolution of [N, in_channels, H, W] images (torch.nn.Conv2d): weight [out, in / groups, kh, kw], bias
[out]. Sizes are an int or (h, w); padding also "same" (stride 1) or "valid". Initialised as PyTorch does.)doc")
      .def(py::init([](std::int64_t in, std::int64_t out, const IntOrPair& kernel_size,
                       const IntOrPair& stride, const Padding& padding, const IntOrPair& dilation,
                       std::int64_t groups, bool bias, const py::object& dtype, bp::Generator* gen) {
             return std::make_shared<nn::Conv2d>(in, out, size2(kernel_size), gen_or_default(gen),
                                                 nn::ConvOptions{.stride = size2(stride),
                                                                 .padding = padding2(padding),
                                                                 .dilation = size2(dilation),
                                                                 .groups = groups,
                                                                 .bias = bias,
                                                                 .dtype = to_dtype(dtype)});
           }),
           py::arg("in_channels"), py::arg("out_channels"), py::arg("kernel_size"), py::arg("stride") = 1,
           py::arg("padding") = 0, py::arg("dilation") = 1, py::arg("groups") = 1, py::arg("bias") = true,
           py::arg("dtype") = bp::f32, py::arg("generator") = nullptr)
      .def_property_readonly("weight", &nn::Conv2d::weight)
      .def_property_readonly("bias", [](const nn::Conv2d& c) { return maybe(c.bias()); })
      .def_property_readonly("in_channels", &nn::Conv2d::in_channels)
      .def_property_readonly("out_channels", &nn::Conv2d::out_channels)
      .def_property_readonly("kernel_size", [](const nn::Conv2d& c) { return pair_of(c.kernel_size()); })
      .def_property_readonly("stride", [](const nn::Conv2d& c) { return pair_of(c.options().stride); })
      .def_property_readonly("dilation", [](const nn::Conv2d& c) { return pair_of(c.options().dilation); })
      .def_property_readonly("groups", [](const nn::Conv2d& c) { return c.options().groups; });

  Class<nn::Conv1d>(m, "Conv1d", R"doc(
1-D convolution of [N, in_channels, L] sequences (torch.nn.Conv1d): weight [out, in / groups, k], bias [out].
Sizes are an int or a 1-tuple; padding also "same" (stride 1) or "valid".)doc")
      .def(py::init([](std::int64_t in, std::int64_t out, const IntOrSingle& kernel_size,
                       const IntOrSingle& stride, const Padding1d& padding, const IntOrSingle& dilation,
                       std::int64_t groups, bool bias, const py::object& dtype, bp::Generator* gen) {
             return std::make_shared<nn::Conv1d>(in, out, size1(kernel_size), gen_or_default(gen),
                                                 nn::ConvOptions{.stride = size1(stride),
                                                                 .padding = padding1(padding),
                                                                 .dilation = size1(dilation),
                                                                 .groups = groups,
                                                                 .bias = bias,
                                                                 .dtype = to_dtype(dtype)});
           }),
           py::arg("in_channels"), py::arg("out_channels"), py::arg("kernel_size"), py::arg("stride") = 1,
           py::arg("padding") = 0, py::arg("dilation") = 1, py::arg("groups") = 1, py::arg("bias") = true,
           py::arg("dtype") = bp::f32, py::arg("generator") = nullptr)
      .def_property_readonly("weight", &nn::Conv1d::weight)
      .def_property_readonly("bias", [](const nn::Conv1d& c) { return maybe(c.bias()); })
      .def_property_readonly("in_channels", &nn::Conv1d::in_channels)
      .def_property_readonly("out_channels", &nn::Conv1d::out_channels)
      .def_property_readonly("kernel_size",
                             [](const nn::Conv1d& c) { return py::make_tuple(c.kernel_size()); });

  Class<nn::ConvTranspose2d>(m, "ConvTranspose2d", R"doc(
Transposed 2-D convolution (torch.nn.ConvTranspose2d), the adjoint of Conv2d: weight [in, out / groups, kh,
kw], bias [out]; output size (H - 1) stride - 2 padding + dilation (k - 1) + output_padding + 1.)doc")
      .def(py::init([](std::int64_t in, std::int64_t out, const IntOrPair& kernel_size,
                       const IntOrPair& stride, const IntOrPair& padding, const IntOrPair& output_padding,
                       std::int64_t groups, bool bias, const IntOrPair& dilation, const py::object& dtype,
                       bp::Generator* gen) {
             return std::make_shared<nn::ConvTranspose2d>(
                 in, out, size2(kernel_size), gen_or_default(gen),
                 nn::ConvOptions{.stride = size2(stride),
                                 .padding = size2(padding),
                                 .dilation = size2(dilation),
                                 .groups = groups,
                                 .bias = bias,
                                 .output_padding = size2(output_padding),
                                 .dtype = to_dtype(dtype)});
           }),
           py::arg("in_channels"), py::arg("out_channels"), py::arg("kernel_size"), py::arg("stride") = 1,
           py::arg("padding") = 0, py::arg("output_padding") = 0, py::arg("groups") = 1,
           py::arg("bias") = true, py::arg("dilation") = 1, py::arg("dtype") = bp::f32,
           py::arg("generator") = nullptr)
      .def_property_readonly("weight", &nn::ConvTranspose2d::weight)
      .def_property_readonly("bias", [](const nn::ConvTranspose2d& c) { return maybe(c.bias()); })
      .def_property_readonly("in_channels", &nn::ConvTranspose2d::in_channels)
      .def_property_readonly("out_channels", &nn::ConvTranspose2d::out_channels)
      .def_property_readonly("kernel_size",
                             [](const nn::ConvTranspose2d& c) { return pair_of(c.kernel_size()); });
}

void bind_pooling(py::module_& m) {
  Class<nn::MaxPool2d>(m, "MaxPool2d",
                       "Largest value of each window (torch.nn.MaxPool2d; stride None: the kernel size).")
      .def(py::init([](const IntOrPair& kernel_size, const std::optional<IntOrPair>& stride,
                       const IntOrPair& padding, const IntOrPair& dilation, bool ceil_mode) {
             return std::make_shared<nn::MaxPool2d>(size2(kernel_size),
                                                    nn::PoolOptions{.stride = stride2(stride),
                                                                    .padding = size2(padding),
                                                                    .dilation = size2(dilation),
                                                                    .ceil_mode = ceil_mode});
           }),
           py::arg("kernel_size"), py::arg("stride") = py::none(), py::arg("padding") = 0,
           py::arg("dilation") = 1, py::arg("ceil_mode") = false)
      .def_property_readonly("kernel_size", [](const nn::MaxPool2d& p) { return pair_of(p.kernel_size()); });
  Class<nn::AvgPool2d>(m, "AvgPool2d", R"doc(
Mean of each window (torch.nn.AvgPool2d; stride None: the kernel size). The divisor counts the zero padding
unless count_include_pad is False.)doc")
      .def(py::init([](const IntOrPair& kernel_size, const std::optional<IntOrPair>& stride,
                       const IntOrPair& padding, bool ceil_mode, bool count_include_pad) {
             return std::make_shared<nn::AvgPool2d>(size2(kernel_size),
                                                    nn::PoolOptions{.stride = stride2(stride),
                                                                    .padding = size2(padding),
                                                                    .ceil_mode = ceil_mode,
                                                                    .count_include_pad = count_include_pad});
           }),
           py::arg("kernel_size"), py::arg("stride") = py::none(), py::arg("padding") = 0,
           py::arg("ceil_mode") = false, py::arg("count_include_pad") = true)
      .def_property_readonly("kernel_size", [](const nn::AvgPool2d& p) { return pair_of(p.kernel_size()); });
  Class<nn::AdaptiveAvgPool2d>(m, "AdaptiveAvgPool2d",
                               "Mean over output_size windows (torch.nn.AdaptiveAvgPool2d); 1 is the global "
                               "average.")
      .def(py::init([](const IntOrPair& output_size) {
             return std::make_shared<nn::AdaptiveAvgPool2d>(size2(output_size));
           }),
           py::arg("output_size"))
      .def_property_readonly("output_size",
                             [](const nn::AdaptiveAvgPool2d& p) { return pair_of(p.output_size()); });
}

void bind_norm_dropout(py::module_& m) {
  Class<nn::BatchNorm2d>(m, "BatchNorm2d", R"doc(
Batch normalisation of [N, C, H, W] images (torch.nn.BatchNorm2d): each channel's statistics over N, H and W;
running_mean and running_var in eval mode.)doc")
      .def(py::init([](std::int64_t features, double eps, double momentum, bool affine,
                       const py::object& dtype) {
             return std::make_shared<nn::BatchNorm2d>(
                 features, nn::BatchNormOptions{
                               .eps = eps, .momentum = momentum, .affine = affine, .dtype = to_dtype(dtype)});
           }),
           py::arg("num_features"), py::arg("eps") = 1e-5, py::arg("momentum") = 0.1,
           py::arg("affine") = true, py::arg("dtype") = bp::f32)
      .def_property_readonly("weight", [](const nn::BatchNorm2d& l) { return maybe(l.weight()); })
      .def_property_readonly("bias", [](const nn::BatchNorm2d& l) { return maybe(l.bias()); })
      .def_property_readonly("running_mean", &nn::BatchNorm2d::running_mean)
      .def_property_readonly("running_var", &nn::BatchNorm2d::running_var)
      .def_property_readonly("num_batches_tracked", &nn::BatchNorm2d::num_batches_tracked);

  Class<nn::Dropout2d>(
      m, "Dropout2d",
      "Zeroes whole channels of [N, C, H, W] with probability p in training (torch.nn.Dropout2d).")
      .def(py::init([](double p, bp::Generator* gen) {
             return std::make_shared<nn::Dropout2d>(p, gen_or_default(gen));
           }),
           py::arg("p") = 0.5, py::arg("generator") = nullptr)
      .def_property_readonly("p", &nn::Dropout2d::p);
}

void bind_embedding(py::module_& m) {
  const auto lookup = [](nn::Embedding& e, const py::object& input) {
    return e.forward(to_indices(input, "Embedding"));
  };
  Class<nn::Embedding>(m, "Embedding", R"doc(
A table of num_embeddings learned vectors of embedding_dim features (torch.nn.Embedding), drawn from N(0, 1):
indices of any shape -> indices.shape + (embedding_dim,). Indices are an int64 Tensor, a NumPy integer array
(read exactly) or whole numbers. The row padding_idx starts at zero and gets no gradient.)doc")
      .def(py::init([](std::int64_t num_embeddings, std::int64_t embedding_dim,
                       std::optional<std::int64_t> padding_idx, const py::object& dtype, bp::Generator* gen) {
             return std::make_shared<nn::Embedding>(
                 num_embeddings, embedding_dim, gen_or_default(gen),
                 nn::EmbeddingOptions{.padding_idx = padding_idx, .dtype = to_dtype(dtype)});
           }),
           py::arg("num_embeddings"), py::arg("embedding_dim"), py::arg("padding_idx") = py::none(),
           py::arg("dtype") = bp::f32, py::arg("generator") = nullptr)
      .def("forward", lookup, py::arg("input"))
      .def("__call__", lookup, py::arg("input"))
      .def_property_readonly("weight", &nn::Embedding::weight)
      .def_property_readonly("num_embeddings", &nn::Embedding::num_embeddings)
      .def_property_readonly("embedding_dim", &nn::Embedding::embedding_dim)
      .def_property_readonly("padding_idx", &nn::Embedding::padding_idx);

  Class<nn::Mean>(m, "Mean", R"doc(
The average over dimension `dim` as a layer: Mean(1) turns token vectors [N, L, D] from an Embedding into one
vector per document [N, D]. keepdim keeps the dimension, of size 1.)doc")
      .def(py::init<std::int64_t, bool>(), py::arg("dim"), py::arg("keepdim") = false)
      .def_property_readonly("dim", &nn::Mean::dim)
      .def_property_readonly("keepdim", &nn::Mean::keepdim);
}

void bind_attention(py::module_& m) {
  const auto self_attention = [](nn::MultiheadAttention& a, const bp::Tensor& x) { return a.forward(x); };
  const auto attend = [](nn::MultiheadAttention& a, const bp::Tensor& query, const bp::Tensor& key,
                         const bp::Tensor& value, const py::object& key_padding_mask, bool need_weights,
                         const py::object& attn_mask) {
    const bp::Tensors out = a.attend(query, key, value, to_mask(key_padding_mask, "key_padding_mask"),
                                     to_mask(attn_mask, "attn_mask"));
    return py::make_tuple(out[0], need_weights ? py::cast(out[1]) : py::none());
  };
  const char* const attend_doc = R"doc(
(output, weights) as torch.nn.MultiheadAttention returns them: query [N, L, E], key and value [N, S, E]
(batch_first; else [L, N, E] and [S, N, E]) -> output of query's shape and weights [N, L, S] averaged over the
heads (None unless need_weights). Masks: bool (True blocks a position) or float (added to the scores);
key_padding_mask [N, S], attn_mask [L, S] or [N * num_heads, L, S]. Called with one tensor: self-attention,
the output alone.)doc";
  Class<nn::MultiheadAttention>(m, "MultiheadAttention", R"doc(
Multi-head scaled dot-product attention (torch.nn.MultiheadAttention): parameters in_proj_weight [3E, E],
in_proj_bias [3E] and out_proj (a Linear E -> E), named and laid out as PyTorch's, so its state dict loads
unchanged. Inputs are [L, N, E] unless batch_first (PyTorch's default, False).)doc")
      .def(py::init([](std::int64_t embed_dim, std::int64_t num_heads, bool bias, bool batch_first,
                       const py::object& dtype, bp::Generator* gen) {
             return std::make_shared<nn::MultiheadAttention>(
                 embed_dim, num_heads, gen_or_default(gen),
                 nn::MultiheadAttentionOptions{
                     .bias = bias, .batch_first = batch_first, .dtype = to_dtype(dtype)});
           }),
           py::arg("embed_dim"), py::arg("num_heads"), py::arg("bias") = true, py::arg("batch_first") = false,
           py::arg("dtype") = bp::f32, py::arg("generator") = nullptr)
      .def("forward", self_attention, py::arg("x"))
      .def("forward", attend, py::arg("query"), py::arg("key"), py::arg("value"),
           py::arg("key_padding_mask") = py::none(), py::arg("need_weights") = true,
           py::arg("attn_mask") = py::none(), attend_doc)
      .def("__call__", self_attention, py::arg("x"))
      .def("__call__", attend, py::arg("query"), py::arg("key"), py::arg("value"),
           py::arg("key_padding_mask") = py::none(), py::arg("need_weights") = true,
           py::arg("attn_mask") = py::none(), attend_doc)
      .def_property_readonly("embed_dim", &nn::MultiheadAttention::embed_dim)
      .def_property_readonly("num_heads", &nn::MultiheadAttention::num_heads)
      .def_property_readonly("batch_first",
                             [](const nn::MultiheadAttention& a) { return a.options().batch_first; })
      .def_property_readonly("in_proj_weight", &nn::MultiheadAttention::in_proj_weight)
      .def_property_readonly("in_proj_bias",
                             [](const nn::MultiheadAttention& a) { return maybe(a.in_proj_bias()); })
      .def_property_readonly("out_proj", &nn::MultiheadAttention::out_proj);
}

void bind_containers(py::module_& m) {
  const auto extend = [](const py::object& self, const py::iterable& modules) {
    auto& list = self.cast<nn::ModuleList&>();
    for (const py::handle h : modules)
      add_kept_alive(self, h, [&](const nn::ModulePtr& p) { list.push_back(p); });
  };
  Class<nn::ModuleList>(m, "ModuleList", R"doc(
Modules under the names "0", "1", ... (torch.nn.ModuleList): a custom Module registers the list and calls its
entries in its own forward; the list has no forward of its own.)doc")
      .def(py::init([](const std::optional<py::iterable>& modules) {
             std::vector<py::object> given;
             if (modules)
               for (const py::handle h : *modules) given.push_back(py::reinterpret_borrow<py::object>(h));
             auto list = container_holding<nn::ModuleList>(given);
             for (const py::object& o : given) list->push_back(o.cast<nn::ModulePtr>());
             return list;
           }),
           py::arg("modules") = py::none())
      .def(
          "append",
          [](const py::object& self, const py::object& module) {
            add_kept_alive(self, module,
                           [&](const nn::ModulePtr& p) { self.cast<nn::ModuleList&>().push_back(p); });
          },
          py::arg("module"))
      .def("extend", extend, py::arg("modules"))
      .def("__len__", &nn::ModuleList::size)
      .def(
          "__getitem__",
          [](const nn::ModuleList& l, std::int64_t i) {
            const auto n = static_cast<std::int64_t>(l.size());
            BP_CHECK(i >= -n && i < n, IndexError, "ModuleList[", i, "]: the list holds ", n, " modules");
            return l[static_cast<std::size_t>(i < 0 ? i + n : i)];
          },
          py::arg("index"))
      .def("__iter__", [](const nn::ModuleList& l) {
        py::list out;
        for (const nn::ModulePtr& p : l) out.append(p);
        return py::iter(out);
      });

  Class<nn::ModuleDict>(m, "ModuleDict", R"doc(
Modules under string keys, in insertion order (torch.nn.ModuleDict): parameters are named "key.weight". A key
is added once (no dots, not empty); the dict has no forward of its own.)doc")
      .def(py::init([](const std::optional<py::dict>& modules) {
             std::vector<py::object> given;
             if (modules)
               for (const auto& [k, v] : *modules) given.push_back(py::reinterpret_borrow<py::object>(v));
             auto d = container_holding<nn::ModuleDict>(given);
             if (modules)
               for (const auto& [k, v] : *modules) d->insert(k.cast<std::string>(), v.cast<nn::ModulePtr>());
             return d;
           }),
           py::arg("modules") = py::none())
      .def(
          "__setitem__",
          [](const py::object& self, const std::string& key, const py::object& module) {
            add_kept_alive(self, module,
                           [&](const nn::ModulePtr& p) { self.cast<nn::ModuleDict&>().insert(key, p); });
          },
          py::arg("key"), py::arg("module"))
      .def("__getitem__", &nn::ModuleDict::operator[], py::arg("key"))
      .def("__contains__", &nn::ModuleDict::contains, py::arg("key"))
      .def("__len__", &nn::ModuleDict::size)
      .def("__iter__", [](const nn::ModuleDict& d) { return py::iter(py::cast(d.keys())); })
      .def("keys", &nn::ModuleDict::keys)
      .def("values",
           [](const nn::ModuleDict& d) {
             std::vector<nn::ModulePtr> out;
             for (const std::string& k : d.keys()) out.push_back(d[k]);
             return out;
           })
      .def("items", [](const nn::ModuleDict& d) {
        std::vector<std::pair<std::string, nn::ModulePtr>> out;
        for (const std::string& k : d.keys()) out.emplace_back(k, d[k]);
        return out;
      });
}

}  // namespace

void bind_layers(py::module_& top) {
  bind_functional(top);
  py::module_ m = top.attr("nn");
  bind_conv(m);
  bind_pooling(m);
  bind_norm_dropout(m);
  bind_embedding(m);
  bind_attention(m);
  bind_containers(m);
}

}  // namespace pybp
