// Warm starts from a saved model, and the resume check of a rebuilt model (backprop/io/warm_start.hpp).
#include <backprop/error.hpp>
#include <backprop/io/warm_start.hpp>
#include <backprop/ops.hpp>

namespace backprop::io {

void init_from(nn::Module& net, const std::string& path, const ModelFile& expected) {
  ModelFile saved;
  try {
    saved = load_model(path);
  } catch (const FileError& e) {
    throw FileError(std::string("--init-from: ") + e.what());
  }
  const Architecture& a = saved.architecture;
  const Architecture& arch = expected.architecture;
  BP_CHECK((a.inputs == 0) == (arch.inputs == 0), ConfigError, "--init-from ", path,
           ": the model's network is ", a.inputs == 0 ? "a layer list" : "an MLP", " but this run builds ",
           arch.inputs == 0 ? "a layer list (--arch)" : "an MLP (--arch mlp)");
  BP_CHECK(a.inputs == 0 || (a.inputs == arch.inputs && a.hidden == arch.hidden &&
                             a.outputs == arch.outputs && a.batchnorm == arch.batchnorm),
           ConfigError, "--init-from ", path, ": the model's network is ", describe(a),
           a.batchnorm ? " with batchnorm" : "", " but this run builds ", describe(arch),
           arch.batchnorm ? " with batchnorm" : "", " (set --layers and --batchnorm to match the model)");
  const std::vector<std::string>& classes = expected.preprocessing.class_names;
  BP_CHECK(classes.empty() || saved.preprocessing.class_names == classes, ConfigError, "--init-from ", path,
           ": the model was trained on other classes than this run's data");
  try {
    net.load_state_dict(saved.state);
  } catch (const OutOfMemoryError&) {
    throw;
  } catch (const Error& e) {
    throw ConfigError(std::string("--init-from ") + path + ": " + e.what());
  }
}

void check_same_model(const ModelFile& saved, const ModelFile& now, const std::string& path) {
  const Architecture& arch = now.architecture;
  const Preprocessing& pre = now.preprocessing;
  BP_CHECK(saved.architecture.inputs == arch.inputs && saved.architecture.outputs == arch.outputs, FileError,
           path, ": the checkpoint's network is ", describe(saved.architecture), " but the data now gives ",
           describe(arch), "; the training data changed since the checkpoint");
  BP_CHECK(now.module_tree.empty() ||
               (saved.input_shape == now.input_shape && saved.module_tree == now.module_tree),
           FileError, path,
           ": the checkpoint's network differs from the one the data now gives (input shape ",
           backprop::to_string(saved.input_shape), " against ", backprop::to_string(now.input_shape),
           "); the training data changed since the checkpoint");
  BP_CHECK(saved.preprocessing.class_names == pre.class_names, FileError, path,
           ": the class labels of the training data changed since the checkpoint");
  BP_CHECK(saved.preprocessing.mean.defined() == pre.mean.defined() &&
               (!pre.mean.defined() || (max_abs_diff(saved.preprocessing.mean, pre.mean) == 0 &&
                                        max_abs_diff(saved.preprocessing.std, pre.std) == 0)),
           FileError, path,
           ": the standardisation statistics of the training data changed since the checkpoint");
}

}  // namespace backprop::io
