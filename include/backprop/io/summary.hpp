// backprop/io/summary.hpp — a model summary as Keras's model.summary() prints it: every module of the tree
// with its type, output shape and parameter count, found by one forward pass of a zero example.
//
// The type names are the module tree's (backprop/io/module_tree.hpp), so a module type of your own appears
// under the name it was registered with. A Sequential feeds its children in turn, so each child gets its
// output shape; the children of other containers show "-" for it, as does every row when no input shape is
// given.
//
// Example:
//   bp::Generator gen(0);
//   bp::nn::Sequential net{bp::nn::Linear(784, 256, gen), bp::nn::ReLU(), bp::nn::Linear(256, 10, gen)};
//   const bp::io::ModelSummary s = bp::io::summary(net, {784});
//   std::string text = s.table();    // the table below
//   std::string shape = s.rows[3].output_shape;   // "[1, 10]"
//
//   Layer    Type           Output shape           Params
//   (model)  Sequential     [1, 10]               203,530
//     0      Linear         [1, 256]              200,960
//     1      ReLU           [1, 256]                    0
//     2      Linear         [1, 10]                 2,570
//   total params 203,530, trainable 203,530, non-trainable 0 (buffers: running statistics, counters)
#pragma once

#include <backprop/nn/module.hpp>
#include <backprop/tensor.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace backprop::io {

/// One module of the tree, in the order a depth-first walk meets them; the first row is the model itself.
struct SummaryRow {
  std::string name;             // "" for the model, "0", "features.2", ... (as named_parameters() names them)
  std::string type;             // "Linear", "Sequential"; "(same as NAME)" for a module shared with NAME
  std::string output_shape;     // "[1, 256]", or "-" where not known
  int depth = 0;                // 0 for the model, 1 for its children, ...
  std::int64_t parameters = 0;  // the module's parameters, its children's included (0 for a shared one)
};

struct ModelSummary {
  std::vector<SummaryRow> rows;
  std::int64_t trainable_parameters = 0;  // the model's parameters (each shared tensor counted once)
  std::int64_t buffer_elements = 0;       // running statistics, counters: the non-trainable part
  /// The table: a header row, one row per module indented by depth, and the totals (each line starts with
  /// two spaces and ends with a newline).
  std::string table() const;
};

/// The summary of `model`. With `input_shape` (one example's shape, without the batch dimension), runs one
/// forward pass of zeros of shape [1, input_shape...] in the parameters' dtype, without recording a graph;
/// the model's outputs and state are otherwise untouched. Throws what the forward pass throws (a ShapeError for
/// an input shape the model does not take).
ModelSummary summary(nn::Module& model, const Shape& input_shape = {});

/// 1234567 as "1,234,567".
std::string with_commas(std::int64_t n);

}  // namespace backprop::io
