// libFuzzer target: the module-tree reader (the "module" metadata of a model file) against a fixed set of
// tensors: JSON structure, fields, option kinds, type names, children, shared modules, tensor matching.
#include <backprop/io/module_tree.hpp>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // The tensors of Sequential(Linear(3, 2), ReLU(), Sequential(Linear(2, 2)), BatchNorm1d(2)).
  static const std::map<std::string, backprop::Tensor> state = {
      {"0.weight", backprop::zeros({2, 3})},
      {"0.bias", backprop::zeros({2})},
      {"2.0.weight", backprop::zeros({2, 2})},
      {"2.0.bias", backprop::zeros({2})},
      {"3.weight", backprop::zeros({2})},
      {"3.bias", backprop::zeros({2})},
      {"3.running_mean", backprop::zeros({2})},
      {"3.running_var", backprop::zeros({2})},
      {"3.num_batches_tracked", backprop::zeros({}, backprop::i64)}};
  const std::string tree(reinterpret_cast<const char*>(data), size);
  try {
    backprop::io::build_module_tree(tree, state, "fuzz");
  } catch (const backprop::Error&) {
  }
  return 0;
}
