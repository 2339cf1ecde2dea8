// backprop/io/onnx.hpp — a trained network as an ONNX model, for ONNX Runtime, OpenCV DNN, TensorRT, ...
//
// export_onnx writes the network's inference form as an ONNX graph of standard operators (opset 17, IR
// version 8), with the weights inside: Linear -> Gemm, BatchNorm1d -> BatchNormalization with the running
// statistics, LayerNorm -> LayerNormalization, Residual -> Add, the activations -> Relu / Sigmoid / Tanh /
// LeakyRelu / Softmax / LogSoftmax, DropConnect -> Gemm with its inference weights (the mean network) and its
// activation, Flatten / Unflatten -> Flatten / Reshape; Dropout and Identity disappear. The first dimension is
// the batch, left free ("batch"), so the model runs on any number of rows. With `preprocessing`, the graph
// starts with its steps (pixel scale: Mul; standardisation: Sub, Div), so the ONNX model takes the raw input
// `backprop predict` reads (pixel values 0..255, unstandardised columns), and its class names go into the
// model's metadata_props ("class_names", a JSON list). The output is the network's output (logits for a
// classifier: softmax of them gives the probabilities `predict` prints). docs/export.md lists the mapping
// and what cannot be exported.
//
// Example:
//   bp::Generator gen(1);
//   auto net = bp::io::build_network({.inputs = 784, .hidden = {256, 128}, .outputs = 10}, gen);
//   bp::io::export_onnx(*net, "model.onnx", {784});
//   bp::io::Preprocessing pre{.input = "image", .pixel_scale = 1.0 / 255, .class_names = {"T-shirt", "..."}};
//   bp::io::export_onnx(*net, "raw.onnx", {784}, {.preprocessing = pre});   // takes bytes 0..255 as floats
//   std::string bytes = bp::io::to_onnx(*net, {784});                        // the same, in memory
//   bp::io::export_model_file("runs/demo/model.safetensors", "demo.onnx");   // a saved model, as saved
#pragma once

#include <backprop/io/model_file.hpp>
#include <backprop/nn/module.hpp>
#include <backprop/tensor.hpp>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace backprop::io {

/// The ONNX operator set the exporter writes (the default domain).
inline constexpr std::int64_t kOnnxOpset = 17;

struct OnnxOptions {
  /// Steps applied to the raw input before the network (pixel scale, standardisation), written as graph
  /// nodes; its class names go into the metadata. Without it the graph takes the network's own input.
  std::optional<Preprocessing> preprocessing;
  std::string input_name = "input";
  std::string output_name = "output";
  /// More metadata_props entries (key -> value); "class_names" and the preprocessing's keys are set already.
  std::map<std::string, std::string> metadata;
  /// export_onnx: replace an existing file even when it holds another kind of content (WriteOptions::force).
  bool force = false;
};

/// The ONNX model of `module` for inputs of one example's shape `input_shape` (e.g. {784}), serialised
/// (protobuf bytes). The module is put in eval mode while it is traced (one forward pass of two zero
/// examples, which gives every intermediate shape) and its mode is restored afterwards; nothing else about it
/// changes. Throws ValueError naming the module's path in the tree and its repr when a module has no ONNX form
/// (an unknown or custom type, DropConnect with gaussian inference and an activation: its output is random) or
/// changes the batch dimension, or when `input_shape` is empty or has a size below 1; ShapeError when the
/// module does not accept the shape; ValueError when a preprocessing's standardisation does not fit the input.
std::string to_onnx(nn::Module& module, const std::vector<std::int64_t>& input_shape,
                    const OnnxOptions& options = {});

/// to_onnx, written to `path` through write_file_atomic (crash-safe; an existing file of another kind is
/// refused unless options.force). Throws what to_onnx throws, before anything is written, and FileError when
/// writing fails (the previous file is untouched).
void export_onnx(nn::Module& module, const std::string& path, const std::vector<std::int64_t>& input_shape,
                 const OnnxOptions& options = {});

/// The model file `model_path` exported to `path`: its network for its saved input shape, with its
/// preprocessing when it has one (options.preprocessing is replaced by it). Returns the model file. Throws
/// FileError naming `model_path` when it is missing, is not a model file or records no input shape;
/// ConfigError when it is a checkpoint (training state: export the run's model.safetensors); and what
/// export_onnx throws.
ModelFile export_model_file(const std::string& model_path, const std::string& path, OnnxOptions options = {});

}  // namespace backprop::io
