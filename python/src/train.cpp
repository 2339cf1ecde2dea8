// backprop.fit / evaluate / predict and the training callbacks, model files (load_model, save_model), ONNX
// export, the data readers (Fashion-MNIST, IDX) and explain.
#include <backprop/explain.hpp>
#include <backprop/io/model_file.hpp>
#include <backprop/io/module_tree.hpp>
#include <backprop/io/onnx.hpp>
#include <backprop/train/callbacks.hpp>
#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "bindings.hpp"

namespace pybp {

namespace {

namespace tr = bp::train;

// A callback written in Python: override any of the hooks.
class PyCallback : public tr::Callback {
 public:
  void on_train_begin(std::int64_t epochs, std::int64_t batches) override {
    PYBIND11_OVERRIDE(void, tr::Callback, on_train_begin, epochs, batches);
  }
  void on_epoch_begin(std::int64_t epoch) override {
    PYBIND11_OVERRIDE(void, tr::Callback, on_epoch_begin, epoch);
  }
  void on_batch_end(const tr::StepInfo& info) override {
    PYBIND11_OVERRIDE(void, tr::Callback, on_batch_end, info);
  }
  bool on_epoch_end(const tr::EpochMetrics& m) override {
    py::gil_scoped_acquire gil;
    py::function f = py::get_override(static_cast<const tr::Callback*>(this), "on_epoch_end");
    if (!f) return false;
    py::object r = f(m);
    return !r.is_none() && r.cast<bool>();  // None (no return statement) means "go on"
  }
  void on_train_end(const tr::History& h) override { PYBIND11_OVERRIDE(void, tr::Callback, on_train_end, h); }
};

// Raises KeyboardInterrupt (or whatever a Python signal handler raises) between updates: fit() runs without the
// GIL, so Python would otherwise see Ctrl-C only when training ends.
class PythonSignals : public tr::Callback {
 public:
  void on_batch_end(const tr::StepInfo&) override {
    py::gil_scoped_acquire gil;
    if (PyErr_CheckSignals() != 0) throw py::error_already_set();
  }
};

// MetricsLog owns the writer it appends to.
class MetricsFile : public tr::Callback {
 public:
  explicit MetricsFile(const std::string& path) : writer_(path), log_(writer_) {}
  void on_grad_flow(const bp::train::GradFlowRecord& r) override { log_.on_grad_flow(r); }
  bool on_epoch_end(const tr::EpochMetrics& m) override { return log_.on_epoch_end(m); }

 private:
  bp::io::MetricsWriter writer_;
  tr::MetricsLog log_;
};

// A labelled dataset over NumPy features and targets (shared, not copied, where from_numpy can).
bp::data::TensorDataset dataset(const py::object& x, const py::object& y, const std::string& task,
                                std::int64_t num_classes, const char* what) {
  bp::data::TensorDataset d;
  d.features = to_tensor(x, what);
  BP_CHECK(d.features.dim() >= 2, ShapeError, what, ": features must be [N, D] (N examples), got shape ",
           d.features.shape());
  d.targets = to_tensor(y, what).to(d.features.dtype());
  if (task == "classification") {
    d.task = bp::data::Task::classification;
    if (num_classes <= 0) {
      bp::NoGradGuard guard;
      BP_CHECK(d.targets.numel() > 0, ValueError, what, ": no targets");
      num_classes = static_cast<std::int64_t>(bp::amax(d.targets).item()) + 1;
    }
    d.num_classes = num_classes;
  } else {
    BP_CHECK(task == "regression", ValueError, what, ": task must be 'classification' or 'regression', got '",
             task, "'");
    d.task = bp::data::Task::regression;
  }
  d.validate(what);
  return d;
}

struct Model {
  bp::io::ModelFile file;
  bp::nn::ModulePtr module;
  std::string path;
};

// Raw input as `backprop predict` reads it -> what the network takes: pixels times pixel_scale (images), then
// the stored standardisation.
bp::Tensor preprocess(const Model& m, const py::array& x) {
  const bp::io::Preprocessing& pre = m.file.preprocessing;
  std::int64_t d = m.file.architecture.inputs;
  if (d <= 0 && m.file.input_shape.size() == 1) d = m.file.input_shape[0];
  py::array a = x;
  if (a.ndim() >= 2 && d > 0 && a.ndim() > 2) a = a.attr("reshape")(a.shape(0), -1);
  const bp::Shape shape(a.shape(), a.shape() + a.ndim());
  BP_CHECK(a.ndim() == 2 && (d <= 0 || shape[1] == d), ShapeError, m.path, ": expected inputs of shape [N, ",
           d > 0 ? std::to_string(d) : std::string("D"), "] (N examples",
           pre.input == "image" ? " of raw pixels" : "", "), got an array of shape ", shape);
  const char kind = a.dtype().kind();
  BP_CHECK(kind == 'f' || kind == 'i' || kind == 'u' || kind == 'b', ValueError, m.path,
           ": expected an array of numbers, got dtype ", std::string(py::str(a.dtype().attr("name"))));
  const bp::Tensors params = m.module->parameters();
  const bp::DType dtype = params.empty() ? bp::f32 : params.front().dtype();
  const double scale = pre.input == "image" ? pre.pixel_scale : 1.0;
  bp::Tensor t(shape, dtype);
  // One pass from the array's own type where it is a common one (no intermediate copy), else through double;
  // each value is scaled in double precision as `backprop predict` does.
  const auto convert = [&](auto in_zero) {
    using In = decltype(in_zero);
    auto src = py::array_t<In, py::array::c_style | py::array::forcecast>::ensure(a);
    if (!src) throw py::error_already_set();
    bp::dispatch(dtype, [&](auto zero) {
      using T = decltype(zero);
      T* out = t.data<T>();
      const In* in = src.data();
      for (py::ssize_t i = 0; i < src.size(); ++i)
        out[i] = static_cast<T>(static_cast<double>(in[i]) * scale);
    });
  };
  if (a.dtype().is(py::dtype::of<std::uint8_t>()))
    convert(std::uint8_t{});
  else if (a.dtype().is(py::dtype::of<float>()))
    convert(float{});
  else
    convert(double{});
  return pre.apply(t);
}

py::array classes_of(const bp::Tensor& outputs) {
  return to_numpy(bp::argmax(outputs, 1)).attr("astype")("int64");
}

}  // namespace

void bind_train(py::module_& m) {
  // ---- records ----
  py::class_<tr::EpochMetrics>(m, "EpochMetrics", "One epoch's figures (NaN where not measured).")
      .def_readonly("epoch", &tr::EpochMetrics::epoch)
      .def_readonly("train_loss", &tr::EpochMetrics::train_loss)
      .def_readonly("train_accuracy", &tr::EpochMetrics::train_accuracy)
      .def_readonly("val_loss", &tr::EpochMetrics::val_loss)
      .def_readonly("val_accuracy", &tr::EpochMetrics::val_accuracy)
      .def_readonly("lr", &tr::EpochMetrics::lr)
      .def_readonly("updates", &tr::EpochMetrics::updates)
      .def_readonly("seconds", &tr::EpochMetrics::seconds)
      .def_readonly("samples_per_second", &tr::EpochMetrics::samples_per_second)
      .def("__repr__", [](const tr::EpochMetrics& e) {
        return "EpochMetrics(epoch=" + std::to_string(e.epoch) +
               ", train_loss=" + std::to_string(e.train_loss) + ", val_loss=" + std::to_string(e.val_loss) +
               ")";
      });
  py::class_<tr::StepInfo>(m, "StepInfo", "What a callback's on_batch_end sees after each update.")
      .def_readonly("epoch", &tr::StepInfo::epoch)
      .def_readonly("batch", &tr::StepInfo::batch)
      .def_readonly("num_batches", &tr::StepInfo::num_batches)
      .def_readonly("step", &tr::StepInfo::step)
      .def_readonly("batch_size", &tr::StepInfo::batch_size)
      .def_readonly("loss", &tr::StepInfo::loss)
      .def_readonly("accuracy", &tr::StepInfo::accuracy);
  py::class_<tr::History>(m, "History", "What fit() returns: the epochs trained and how training ended.")
      .def_readonly("epochs", &tr::History::epochs)
      .def_readonly("best_epoch", &tr::History::best_epoch)
      .def_readonly("stopped_early", &tr::History::stopped_early)
      .def_readonly("total_updates", &tr::History::total_updates)
      .def_readonly("epochs_done", &tr::History::epochs_done)
      .def_readonly("restored_best", &tr::History::restored_best)
      .def_readonly("interrupted", &tr::History::interrupted);
  py::class_<tr::Evaluation>(m, "Evaluation", "Loss, accuracy and confusion matrix on a dataset.")
      .def_readonly("loss", &tr::Evaluation::loss)
      .def_readonly("accuracy", &tr::Evaluation::accuracy)
      .def_readonly("confusion", &tr::Evaluation::confusion)
      .def_readonly("per_class_accuracy", &tr::Evaluation::per_class_accuracy)
      .def_readonly("examples", &tr::Evaluation::examples);

  // ---- callbacks ----
  py::module_ cb = m.def_submodule("callbacks", "Training callbacks (backprop/train/callbacks.hpp).");
  py::class_<tr::Callback, PyCallback>(cb, "Callback", R"doc(
Hooks into fit(): subclass and override on_train_begin(epochs, batches_per_epoch), on_epoch_begin(epoch),
on_batch_end(step_info), on_epoch_end(metrics) (return True to stop after that epoch) or
on_train_end(history).)doc")
      .def(py::init<>())
      .def("on_train_begin", &tr::Callback::on_train_begin, py::arg("epochs"), py::arg("batches_per_epoch"))
      .def("on_epoch_begin", &tr::Callback::on_epoch_begin, py::arg("epoch"))
      .def("on_batch_end", &tr::Callback::on_batch_end, py::arg("info"))
      .def("on_epoch_end", &tr::Callback::on_epoch_end, py::arg("metrics"))
      .def("on_train_end", &tr::Callback::on_train_end, py::arg("history"));
  py::class_<tr::ProgressBar, tr::Callback>(
      cb, "ProgressBar", "A progress bar on stderr (one line per epoch when not a terminal).")
      .def(py::init([](std::optional<bool> tty) {
             return tty ? std::make_unique<tr::ProgressBar>(stderr, *tty)
                        : std::make_unique<tr::ProgressBar>(stderr);
           }),
           py::arg("tty") = py::none());
  py::class_<MetricsFile, tr::Callback>(cb, "MetricsLog",
                                        "Appends epoch records to a metrics log (JSON lines, docs/files.md).")
      .def(py::init<const std::string&>(), py::arg("path"));
  py::class_<tr::ModelCheckpoint, tr::Callback>(cb, "ModelCheckpoint", R"doc(
Writes checkpoints DIR/epoch-NNNN.safetensors every `every` epochs and after the last, keeping `keep`
(0 = all); best_model also saves a model file at each new best validation loss.)doc")
      .def(py::init([](const std::string& dir, const bp::nn::Module& model, std::int64_t every, int keep,
                       const std::string& best_model) {
             bp::io::ModelFile description{.module_tree = bp::io::module_tree(model),
                                           .has_preprocessing = false};
             return std::make_unique<tr::ModelCheckpoint>(
                 dir, std::move(description),
                 tr::CheckpointOptions{.every = every, .keep = keep, .best_model = best_model});
           }),
           py::arg("dir"), py::arg("model"), py::arg("every") = 1, py::arg("keep") = 3,
           py::arg("best_model") = "")
      .def_property_readonly("written", &tr::ModelCheckpoint::written)
      .def_property_readonly("last_path", &tr::ModelCheckpoint::last_path);

  // ---- training ----
  m.def(
      "fit",
      [](bp::nn::Module& model, const bp::loss::Loss& loss, bp::optim::Optimizer& optimizer,
         const py::object& x, const py::object& y, std::int64_t epochs, std::int64_t batch_size,
         const py::object& validation, bool shuffle, std::uint64_t seed, bool drop_last,
         std::int64_t patience, bool restore_best, double l1, double l2, double clip,
         const std::vector<tr::Callback*>& callbacks, const std::string& task, std::int64_t num_classes) {
        const bp::data::TensorDataset train = dataset(x, y, task, num_classes, "fit");
        bp::data::TensorDataset val;
        tr::FitOptions o{.epochs = epochs,
                         .batch_size = batch_size,
                         .shuffle = shuffle,
                         .seed = seed,
                         .drop_last = drop_last,
                         .early_stopping_patience = patience,
                         .restore_best = restore_best,
                         .l1 = l1,
                         .l2 = l2,
                         .clip_grad_norm = clip};
        if (!validation.is_none()) {
          const auto pair = validation.cast<std::pair<py::object, py::object>>();
          val = dataset(pair.first, pair.second, task, train.num_classes, "fit validation");
          o.validation = &val;
        }
        PythonSignals signals;
        o.callbacks = callbacks;
        o.callbacks.push_back(&signals);
        py::gil_scoped_release release;
        return tr::fit(model, loss, optimizer, train, o);
      },
      py::arg("model"), py::arg("loss"), py::arg("optimizer"), py::arg("x"), py::arg("y"),
      py::arg("epochs") = 10, py::arg("batch_size") = 64, py::arg("validation") = py::none(),
      py::arg("shuffle") = true, py::arg("seed") = 0, py::arg("drop_last") = false,
      py::arg("early_stopping_patience") = 0, py::arg("restore_best") = true, py::arg("l1") = 0.0,
      py::arg("l2") = 0.0, py::arg("clip_grad_norm") = 0.0,
      py::arg("callbacks") = std::vector<tr::Callback*>{}, py::arg("task") = "classification",
      py::arg("num_classes") = 0, R"doc(
Trains `model` on features x [N, D] and targets y with the library's training loop (backprop/train.hpp).
Classification targets are class indices (any integer or float array; num_classes defaults to max + 1);
task="regression" takes real-valued targets. validation=(x_val, y_val) adds validation loss and accuracy to
every epoch. Returns a History. Runs without the GIL; Ctrl-C stops it after the current update.)doc");
  m.def(
      "evaluate",
      [](bp::nn::Module& model, const bp::loss::Loss& loss, const py::object& x, const py::object& y,
         std::int64_t batch_size, const std::string& task, std::int64_t num_classes) {
        const bp::data::TensorDataset d = dataset(x, y, task, num_classes, "evaluate");
        py::gil_scoped_release release;
        return tr::evaluate(model, loss, d, batch_size);
      },
      py::arg("model"), py::arg("loss"), py::arg("x"), py::arg("y"), py::arg("batch_size") = 1000,
      py::arg("task") = "classification", py::arg("num_classes") = 0,
      "Loss, accuracy and confusion matrix in eval mode, without recording a graph.");
  m.def(
      "predict",
      [](bp::nn::Module& model, const py::object& x, std::int64_t batch_size) {
        const bp::Tensor t = to_tensor(x, "predict");
        py::gil_scoped_release release;
        return tr::predict(model, t, batch_size);
      },
      py::arg("model"), py::arg("x"), py::arg("batch_size") = 1000,
      "The model's outputs for x [N, D], in eval mode, batch by batch, without recording a graph.");

  // ---- model files ----
  py::class_<Model>(m, "Model", R"doc(
A model file (backprop.load_model): the network with the preprocessing it was trained with. predict()
takes the raw input `backprop predict` takes: pixel values 0..255 for an image model, feature columns for a
table model.)doc")
      .def_property_readonly(
          "module", [](const Model& md) { return md.module; }, "The network (eval mode).")
      .def_property_readonly("path", [](const Model& md) { return md.path; })
      .def_property_readonly("task", [](const Model& md) { return md.file.preprocessing.task; })
      .def_property_readonly("input_kind", [](const Model& md) { return md.file.preprocessing.input; })
      .def_property_readonly("pixel_scale", [](const Model& md) { return md.file.preprocessing.pixel_scale; })
      .def_property_readonly("class_names", [](const Model& md) { return md.file.preprocessing.class_names; })
      .def_property_readonly("feature_names",
                             [](const Model& md) { return md.file.preprocessing.feature_names; })
      .def_property_readonly("input_shape", [](const Model& md) { return md.file.input_shape; })
      .def_property_readonly(
          "training",
          [](const Model& md) { return py::module_::import("json").attr("loads")(md.file.training_json); },
          "The training summary stored in the file, as a dict.")
      .def_property_readonly(
          "config", [](const Model& md) { return md.file.config_toml; },
          "The run configuration (TOML text; empty when unknown).")
      .def(
          "preprocess", [](const Model& md, const py::array& x) { return preprocess(md, x); }, py::arg("x"),
          "Raw input [N, D] (or images [N, rows, cols]) -> the tensor the network takes.")
      .def(
          "predict",
          [](const Model& md, const py::array& x, std::int64_t batch_size) {
            const bp::Tensor t = preprocess(md, x);
            bp::Tensor y;
            {
              py::gil_scoped_release release;
              y = tr::predict(*md.module, t, batch_size);
            }
            return to_numpy(y);
          },
          py::arg("x"), py::arg("batch_size") = 1000,
          "The network's outputs (logits for a classifier, values for regression) for raw input x, as an "
          "array.")
      .def(
          "predict_proba",
          [](const Model& md, const py::array& x, std::int64_t batch_size) {
            const bp::Tensor t = preprocess(md, x);
            bp::Tensor p;
            {
              py::gil_scoped_release release;
              p = bp::softmax(tr::predict(*md.module, t, batch_size), 1);
            }
            return to_numpy(p);
          },
          py::arg("x"), py::arg("batch_size") = 1000, "Class probabilities (softmax of the outputs).")
      .def(
          "predict_class",
          [](const Model& md, const py::array& x, std::int64_t batch_size) {
            const bp::Tensor t = preprocess(md, x);
            bp::Tensor y;
            {
              py::gil_scoped_release release;
              y = tr::predict(*md.module, t, batch_size);
            }
            return classes_of(y);
          },
          py::arg("x"), py::arg("batch_size") = 1000,
          "The index of the most probable class of each row (class_names gives its name).")
      .def(
          "export_onnx",
          [](const Model& md, const std::string& path, bool force) {
            // What `backprop export MODEL --onnx PATH` writes: the preprocessing as graph nodes, so the ONNX
            // model takes the raw input predict() takes, and the class names in its metadata.
            BP_CHECK(!md.file.input_shape.empty(), FileError, md.path,
                     ": the model does not record its input shape; an ONNX model needs it (save it with "
                     "save_model(path, module, input_shape=...))");
            bp::io::OnnxOptions options{.force = force};
            if (md.file.has_preprocessing) options.preprocessing = md.file.preprocessing;
            bp::io::export_onnx(*md.module, path, md.file.input_shape, options);
          },
          py::arg("path"), py::arg("force") = false,
          "Writes the model as ONNX (opset 17), as `backprop export MODEL --onnx PATH` does.")
      .def("__repr__", [](const Model& md) { return "Model('" + md.path + "')\n" + md.module->repr(); });
  m.def(
      "load_model",
      [](const std::string& path) {
        Model md{bp::io::load_model(path), nullptr, path};
        md.module = bp::io::build_module(md.file, path);
        return md;
      },
      py::arg("path"),
      "Reads a model file (written by `backprop train` or save_model, or a checkpoint) with its "
      "preprocessing.");
  m.def("load_module", &bp::io::load_module, py::arg("path"),
        "The network of a model file alone, in eval mode.");
  m.def(
      "save_model",
      [](const std::string& path, const bp::nn::Module& module,
         const std::vector<std::int64_t>& input_shape) {
        bp::io::save_model(path, module, {.input_shape = input_shape});
      },
      py::arg("path"), py::arg("module"), py::arg("input_shape") = std::vector<std::int64_t>{},
      "Saves any network of built-in layers (its module tree and tensors) crash-safely; load_module reads it "
      "back.");

  m.def(
      "export_onnx",
      [](bp::nn::Module& module, const std::string& path, const std::vector<std::int64_t>& input_shape,
         const std::map<std::string, std::string>& metadata, bool force) {
        bp::io::export_onnx(module, path, input_shape, {.metadata = metadata, .force = force});
      },
      py::arg("module"), py::arg("path"), py::arg("input_shape"),
      py::arg("metadata") = std::map<std::string, std::string>{}, py::arg("force") = false, R"doc(
Writes the network's inference form as an ONNX model (opset 17, docs/export.md) for inputs of one example's
shape `input_shape` (e.g. [784], [1, 28, 28], or [L] token ids for a network that starts with an Embedding,
whose ONNX input is then int64); the batch dimension is left free. `metadata` adds metadata_props entries.
Raises ValueError naming a module that has no ONNX form; nothing is written then.)doc");

  // ---- data ----
  m.def(
      "load_fashion_mnist",
      [](const std::string& split, std::int64_t limit, const std::string& dir) {
        BP_CHECK(split == "train" || split == "test", ValueError,
                 "load_fashion_mnist: split must be 'train' or "
                 "'test', got '",
                 split, "'");
        bp::data::TensorDataset d = bp::data::FashionMNIST::load(
            dir, split == "train" ? bp::data::Split::train : bp::data::Split::test, limit);
        py::array labels = to_numpy(d.targets).attr("astype")("int64");
        return py::make_tuple(to_numpy(d.flattened().features), labels);
      },
      py::arg("split") = "train", py::arg("limit") = 0, py::arg("dir") = bp::data::FashionMNIST::default_dir,
      "(features float32 [N, 784] in [0, 1], labels int64 [N]) of Fashion-MNIST; limit > 0 reads the first "
      "rows.");
  m.attr("FASHION_MNIST_CLASSES") = bp::data::FashionMNIST::class_names();
  m.def(
      "read_idx",
      [](const std::string& path, std::int64_t limit) {
        bp::data::IdxArray a = bp::data::read_idx(path, limit);
        py::array_t<std::uint8_t> out(std::vector<py::ssize_t>(a.dims.begin(), a.dims.end()));
        std::copy(a.data.begin(), a.data.end(), out.mutable_data());
        return out;
      },
      py::arg("path"), py::arg("limit") = 0, "An IDX file (raw or gzip) as a uint8 array of its dims.");

  // ---- explain ----
  m.def(
      "explain",
      [](const std::vector<std::int64_t>& sizes, double lr, std::uint64_t seed, const std::vector<double>& x,
         const std::vector<double>& y) {
        namespace ex = bp::explain;
        const ex::WorkedExample step =
            ex::worked_example({.sizes = sizes, .lr = lr, .seed = seed, .x = x, .y = y});
        return ex::to_text(step, ex::verify(step));
      },
      py::arg("sizes") = std::vector<std::int64_t>{2, 3, 2}, py::arg("lr") = 0.5, py::arg("seed") = 1,
      py::arg("x") = std::vector<double>{}, py::arg("y") = std::vector<double>{},
      "`backprop explain`'s text: one step of the delta rule by hand, every number, checked against "
      "autograd.");
  m.def(
      "explain_repeated", [](int n) { return bp::explain::to_text(bp::explain::dynamic_programming(n)); },
      py::arg("n"), "`backprop explain --repeated N`: backpropagation as dynamic programming, counted.");
}

}  // namespace pybp
