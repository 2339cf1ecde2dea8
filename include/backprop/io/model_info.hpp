// backprop/io/model_info.hpp — everything a model file or checkpoint says about itself, as `backprop info`
// shows it: the network (architecture or the type saved from code), the parameter count, the layer summary
// (io/summary.hpp), the layers, the tensors, the preprocessing, the task, the training record and, for a
// checkpoint, where training stopped.
//
// describe_file() reads the file, builds its network and runs one forward pass of a zero example of the saved
// input shape (when known) for the summary's output shapes. text() is the lines `backprop info FILE` prints;
// json() is the object `backprop info FILE --json` prints (docs/cli.md lists its keys).
//
// Example:
//   bp::io::ModelInfo info = bp::io::describe_file("runs/demo/model.safetensors");
//   std::cout << info.text();                        // "file        runs/demo/model.safetensors (model)", ...
//   std::int64_t n = info.parameters;                // each shared tensor counted once
//   std::string first = info.summary.rows[1].type;   // "Linear"
//   bool resumable = info.checkpoint.has_value();    // a checkpoint: info.checkpoint->epoch, ->step
//   std::string object = info.json();                // indented by 2, without a final newline
#pragma once

#include <backprop/io/model_file.hpp>
#include <backprop/io/summary.hpp>
#include <backprop/tensor.hpp>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace backprop::io {

/// One tensor of the file, in file order.
struct TensorInfo {
  std::string name;  // "0.weight", "preprocess.mean", "optimizer.state.0.exp_avg", ...
  Shape shape;
  std::string dtype;  // "F32" or "F64"
};

/// Where a checkpoint's training stopped.
struct CheckpointInfo {
  std::int64_t epoch = 0;
  std::int64_t step = 0;
  std::size_t optimizer_entries = 0;  // the optimiser's state tensors
};

struct ModelInfo {
  std::string path;
  ModelFile model;  // architecture, preprocessing, training record, configuration, input shape
  std::optional<CheckpointInfo> checkpoint;  // set for a checkpoint, empty for a model file
  std::int64_t parameters = 0;               // the network's parameters (each shared tensor counted once)
  ModelSummary summary;                      // for one example of zeros of model.input_shape
  std::vector<std::pair<std::string, std::string>> layers;  // each child of the network: name, repr()
  std::string module_tree;                                  // the module tree as JSON (io/module_tree.hpp)
  std::vector<TensorInfo> tensors;                          // every tensor of the file, in file order

  /// A network saved from code (io::save_model(path, module)): no architecture, only a module tree.
  bool from_code() const { return model.architecture.inputs == 0; }
  /// The lines `backprop info` prints, each ending with a newline.
  std::string text() const;
  /// The JSON object `backprop info --json` prints, indented by 2, without a final newline.
  std::string json() const;
};

/// Reads the model file or checkpoint at `path` and describes it. Throws FileError naming the file when it is
/// not a backprop model or checkpoint (what load_safetensors, from_named and build_module check), and when
/// one forward pass of a zero example of the saved input shape fails (naming the shape).
ModelInfo describe_file(const std::string& path);

}  // namespace backprop::io
