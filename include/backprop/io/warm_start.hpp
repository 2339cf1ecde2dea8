// backprop/io/warm_start.hpp — a new run's network started from a saved model's weights (a warm start, as
// `backprop train --init-from MODEL`), and the check that a resumed run rebuilt the network and the data
// preparation of the checkpoint it continues.
//
// A warm start takes the weights only: the new run has its own optimiser, schedule, data order and epochs.
// The architecture (an MLP's layer sizes, or a layer list), the shapes of every tensor and the class labels
// are checked before anything is loaded, so a mismatch leaves the network as it was. Messages name the
// configuration's flags (--init-from, --layers, --batchnorm) that set what differs.
//
// Example:
//   bp::io::Architecture arch{.inputs = 4, .hidden = {16}, .outputs = 3};
//   bp::Generator gen(1);
//   auto net = bp::io::build_network(arch, gen);
//   bp::io::init_from(*net, "runs/a/model.safetensors", {.architecture = arch});   // checked, then loaded
//   std::cout << bp::io::describe(arch) << "\n";                                  // 4-16-3
#pragma once

#include <backprop/io/model_file.hpp>
#include <backprop/nn.hpp>
#include <string>

namespace backprop::io {

/// Loads the weights of the model file at `path` into `net`, the network a run built for `expected`
/// (its architecture: inputs 0 for a layer list; its preprocessing: the class labels of the run's data, or
/// none to skip that check). Throws FileError prefixed "--init-from: " when the file cannot be read;
/// ConfigError naming `path` when the saved network is of another kind (MLP / layer list), has other layer
/// sizes or batch norm, was trained on other classes, or has a tensor whose name or shape does not fit `net`.
void init_from(nn::Module& net, const std::string& path, const ModelFile& expected);

/// Checks that `now`, the model a resumed run rebuilt from its configuration and data, is the one the
/// checkpoint at `path` saved (`saved`): the same inputs and outputs, module tree and input shape, class
/// labels and standardisation statistics. Throws FileError naming `path` and what changed.
void check_same_model(const ModelFile& saved, const ModelFile& now, const std::string& path);

}  // namespace backprop::io
