// backprop/io/model_file.hpp — a trained network in one self-describing safetensors file.
//
// A model file holds the network's tensors under their module names ("0.weight", "0.bias", "3.weight", ...,
// the names nn::Module::state_dict() gives, which are also the names a PyTorch nn.Sequential of the same
// layers uses), and in the safetensors "__metadata__":
//   "format"         "backprop.model/1" (or "backprop.checkpoint/1" for a checkpoint, which adds optimiser
//                    and RNG state; see checkpoint.hpp)
//   "architecture"   JSON: {"inputs", "hidden": [...], "outputs", "activation", "batchnorm", "dropout",
//                    "dropconnect", "init", "parameters", "modules": [repr of each layer]}
//   "preprocessing"  JSON: {"task", "input": "image"|"table", "pixel_scale", "image_shape", "standardize",
//                    "class_names", "feature_names", "target"}; the standardisation's mean and std are the
//                    tensors "preprocess.mean" and "preprocess.std" [D]
//   "training"       JSON: the training summary (epochs, metrics, test results, seed, ...)
//   "config"         the run configuration as TOML (backprop/config.hpp)
//   "module"         JSON: the module tree (module_tree.hpp): each module's type, options and named children
//   "input_shape"    JSON: one example's shape, e.g. [784] (optional)
// so `backprop eval`, `predict` and `info` need nothing but the file.
//
// Any network, not only the command line's MLP, is saved whole with save_model(path, module) and comes back
// with load_module(path), without its code; such a file has "module" and no "architecture", and
// "preprocessing" only when it was given.
//
// Example:
//   bp::io::ModelFile m{.architecture = {.inputs = 784, .hidden = {256, 128}, .outputs = 10}};
//   bp::Generator gen(1);
//   auto net = bp::io::build_network(m.architecture, gen);
//   m.state = net->state_dict();
//   bp::io::save_model("model.safetensors", m);
//   bp::io::ModelFile back = bp::io::load_model("model.safetensors");
//   auto same = bp::io::load_network(back);                       // weights restored, eval mode
//   bp::Tensor logits = same->forward(back.preprocessing.apply(x));
//
//   bp::io::save_model("any.safetensors", *net, {.input_shape = {784}});   // any registered module tree
//   std::shared_ptr<bp::nn::Module> again = bp::io::load_module("any.safetensors");   // eval mode
#pragma once

#include <backprop/config.hpp>
#include <backprop/generator.hpp>
#include <backprop/io.hpp>
#include <backprop/nn.hpp>
#include <backprop/tensor.hpp>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace backprop::io {

/// A feed-forward network of dense layers: inputs -> hidden[0] -> ... -> outputs.
struct Architecture {
  std::int64_t inputs = 0;
  std::vector<std::int64_t> hidden;
  std::int64_t outputs = 0;
  std::string activation = "relu";       // sigmoid | tanh | relu | leaky_relu
  bool batchnorm = false;                // BatchNorm1d between each hidden Linear and its activation
  double dropout = 0.0;                  // Dropout after each hidden activation
  double dropconnect = 0.0;              // DropConnect replaces the Linear of each hidden layer
  std::string init = "kaiming_uniform";  // kaiming_uniform | kaiming_normal | xavier_uniform | xavier_normal
};

/// "784-256-128-10": an MLP's layer sizes.
std::string describe(const Architecture& architecture);

/// The Sequential an Architecture describes. Each hidden layer is
///   Linear (DropConnect when dropconnect > 0) [-> BatchNorm1d] -> activation [-> Dropout],
/// and the output layer is a Linear without activation (its outputs are logits, or values for regression).
/// Weights are initialised with `init` and the gain of `activation`, drawing from `gen`; Dropout and
/// DropConnect layers seed their own generators from `gen`. Throws ConfigError naming the field on an unknown
/// activation or init, a non-positive width, or a probability outside [0, 1).
std::shared_ptr<nn::Sequential> build_network(const Architecture& architecture, Generator& gen);

/// The Sequential a list of layer tables describes (`[[model.layer]]`, or a preset: config::network_layers),
/// for examples of shape `input` ([784] for a table, [1, 28, 28] for images) and `outputs` outputs. Each
/// layer's input size follows from the layer before; the last dense layer without `out` gets `outputs`.
/// `init` ("auto" or a model.init value) initialises dense layers as build_network(Architecture) does, with
/// the gain of the activation that follows; convolutions keep PyTorch's default. Throws ConfigError naming
/// the layer (its number, from 1, and type) when a table does not fit the shape it gets (a dense layer on an
/// image needs a flatten before it) or the last layer does not give `outputs` values.
std::shared_ptr<nn::Sequential> build_network(const std::vector<config::LayerSpec>& layers,
                                              const Shape& input, std::int64_t outputs, Generator& gen,
                                              const std::string& init = "auto");

/// What was learned from the training data besides the weights, applied to any input before the network.
struct Preprocessing {
  std::string task = "classification";     // "classification" or "regression"
  std::string input = "table";             // "image": IDX pixels; "table": CSV columns
  double pixel_scale = 1.0;                // image: the network sees raw byte * pixel_scale
  std::vector<std::int64_t> image_shape;   // image: [rows, cols]
  Tensor mean, std;                        // table: standardisation [D]; undefined when off
  std::vector<std::string> class_names;    // output index -> label text
  std::vector<std::string> feature_names;  // table: the feature columns' header names (may be empty)
  std::string target;                      // table: the target column's name (or index) in the training file

  /// features [N, D] -> (features - mean) / std when standardisation is on, else features unchanged.
  /// Throws ShapeError naming both sizes when D differs from the standardisation's.
  Tensor apply(const Tensor& features) const;
};

struct ModelFile {
  Architecture architecture;
  Preprocessing preprocessing;
  std::map<std::string, Tensor> state;    // the network's state_dict(): parameters and buffers by name
  std::string training_json = "{}";       // a JSON object: what training produced
  std::string config_toml;                // the run configuration (TOML), empty if unknown
  std::string module_tree;                // the module tree as JSON (module_tree.hpp); empty in older files
  std::vector<std::int64_t> input_shape;  // one example's shape; empty when unknown
  bool has_preprocessing = true;          // false for a model saved from code without preprocessing
};

/// What a network saved from code may carry besides its module tree and tensors.
struct SaveOptions {
  std::vector<std::int64_t> input_shape;       // one example's shape, e.g. {784}: `backprop info` shows
                                               // each layer's output shape for it
  std::optional<Preprocessing> preprocessing;  // what `backprop eval` and `predict` need: the task, the
                                               // input kind, class names, standardisation
  std::string training_json = "{}";            // a JSON object
};

/// The metadata value of "format" in model files and in checkpoints.
inline constexpr const char* kModelFormat = "backprop.model/1";
inline constexpr const char* kCheckpointFormat = "backprop.checkpoint/1";
/// In a checkpoint, the weights of the best epoch so far (for early stopping's restore) are stored as tensors
/// "best_state.<name>"; they are not part of the model, and from_named skips them in a checkpoint.
inline constexpr const char* kBestStatePrefix = "best_state.";

/// Writes a model file crash-safely (see save_safetensors). Throws ValueError when training_json is not a
/// JSON object or a state name collides with "preprocess.*"; FileError when writing fails.
void save_model(const std::string& path, const ModelFile& model);

/// Saves any network whose module types are registered (module_tree.hpp): its module tree, its state_dict()
/// and `options`. Throws ValueError naming the module when a type is not registered, or on a bad option;
/// FileError when writing fails.
void save_model(const std::string& path, const nn::Module& module, const SaveOptions& options = {});

/// Reads any model file (one saved from code, or by `backprop train`, or a checkpoint) and gives back the
/// network with its tensors loaded, in eval mode: build_module(load_model(path), path).
std::shared_ptr<nn::Module> load_module(const std::string& path);

/// A model file and its network, ready for predictions and for data::load_eval_data / load_predict_inputs.
struct LoadedModel {
  ModelFile model;
  std::shared_ptr<nn::Module> network;
};

/// load_model and build_module, with model.architecture.inputs and outputs filled in for a network saved from
/// code (from its 1-D input shape [D] and one forward pass of a zero example), so that data read for it can
/// be checked against them. `who` names the caller in messages ("`backprop eval`"). Throws FileError naming
/// `path` when a network saved from code has no preprocessing or no 1-D input shape, or its forward pass
/// fails or gives another shape than [1, outputs].
LoadedModel load_for_prediction(const std::string& path, const std::string& who = "prediction");

/// The network of a model: built from its module tree, or, in a file written before trees were stored, from
/// its architecture (load_network). Throws FileError naming `origin` and the field or tensor that does not fit.
std::shared_ptr<nn::Module> build_module(const ModelFile& model, const std::string& origin = "model");

/// Reads a model file, or the model part of a checkpoint (without building the network; see load_module).
/// Throws FileError naming the file and the metadata key when the file is not a backprop model (another tool's safetensors file), a metadata entry is not valid
/// JSON or lacks a field, or any load_safetensors check fails.
ModelFile load_model(const std::string& path);

/// build_network(model.architecture) with model.state loaded, in eval mode. Throws FileError naming `origin`
/// (the file) when the tensors do not match the architecture (missing, unexpected, wrong shape).
std::shared_ptr<nn::Sequential> load_network(const ModelFile& model, const std::string& origin = "model");

/// The pieces shared with checkpoints: the tensors and metadata of a model, and back. from_named ignores
/// tensors whose names start with `ignore_prefix` (a checkpoint's "optimizer.").
NamedTensors to_named(const ModelFile& model, const std::string& format = kModelFormat);
ModelFile from_named(const NamedTensors& file, const std::string& path,
                     const std::string& ignore_prefix = "");

}  // namespace backprop::io
