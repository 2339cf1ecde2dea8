// backprop/nn/module.hpp — the base class of every layer and network.
//
// A Module owns named parameters (tensors that training updates), named buffers (state that is saved but not
// trained, such as BatchNorm's running mean) and named child modules. Names are registered in order, so
// named_parameters() lists "0.weight", "0.bias", "2.weight", ... in a stable, documented order that
// optimisers, checkpoints and reports can rely on. Modules are held by std::shared_ptr<Module>; copying a
// Module object is shallow (the copy shares its parameters' storage, like a Tensor handle does).
//
// Example:
//   bp::Generator gen(1);
//   auto net = std::make_shared<bp::nn::Sequential>(bp::nn::Linear(4, 3, gen), bp::nn::ReLU());
//   for (const auto& [name, p] : net->named_parameters())
//     std::cout << name << " " << bp::to_string(p.shape()) << "\n";   // 0.weight [3, 4], 0.bias [3]
//   auto saved = net->state_dict();          // name -> tensor (parameters and buffers)
//   net->load_state_dict(saved);             // strict: every name must match, shapes and dtypes too
//   net->eval();                             // dropout off, batch norm uses running statistics
#pragma once

#include <backprop/autograd.hpp>
#include <backprop/tensor.hpp>
#include <concepts>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace backprop::nn {

class Module;
using ModulePtr = std::shared_ptr<Module>;

class Module {
 public:
  Module() = default;
  Module(const Module&) = default;
  Module(Module&&) = default;
  Module& operator=(const Module&) = default;
  Module& operator=(Module&&) = default;
  virtual ~Module() = default;

  /// The layer's function. Shapes and dtypes are documented by each module.
  virtual Tensor forward(const Tensor& x) = 0;
  /// Several inputs and outputs, for modules that take more than one tensor (a gate, attention's query, key
  /// and value) or give more than one. The default takes exactly one input and returns {forward(x)}, so a
  /// one-tensor module works here too; a multi-input module overrides this (and gives its single-tensor
  /// forward a meaning of its own, or throws). Throws ValueError naming the module and the count otherwise.
  virtual Tensors forward(const Tensors& inputs);
  Tensor operator()(const Tensor& x) { return forward(x); }
  /// module(a, b, ...): forward({a, b, ...}), returning every output.
  template <class... Rest>
  requires(sizeof...(Rest) > 0 && (std::same_as<std::remove_cvref_t<Rest>, Tensor> && ...)) Tensors
  operator()(const Tensor& first, Rest&&... rest) {
    return forward(Tensors{first, std::forward<Rest>(rest)...});
  }
  Tensors operator()(const Tensors& inputs) { return forward(inputs); }
  /// One line describing the module and its options, e.g. "Linear(in=784, out=256, bias=true)". Containers
  /// print their children indented on the following lines.
  virtual std::string repr() const = 0;

  /// Every parameter of this module and its children, recursively: this module's own parameters first, in
  /// registration order, then each child's with "<child name>." prefixed. A tensor registered twice (a shared
  /// layer) is listed once, under its first name.
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  /// Every buffer, named and ordered like named_parameters(), e.g. "1.running_mean".
  std::vector<std::pair<std::string, Tensor>> named_buffers() const;
  /// The tensors of named_parameters(), in the same order.
  Tensors parameters() const;
  /// Direct children, in registration order.
  std::vector<std::pair<std::string, ModulePtr>> named_children() const;
  /// Every descendant (not this module), depth first, with dotted names: "0", "1", "1.0", ...
  std::vector<std::pair<std::string, ModulePtr>> named_modules() const;

  /// Parameters and buffers by dotted name. The tensors are the live ones (not copies); clone them to keep a
  /// snapshot that later training will not change.
  std::map<std::string, Tensor> state_dict() const;
  /// Copies `state` into the parameters and buffers. Strict: every name of state_dict() must be present, no
  /// other name may be, and each tensor must have the same shape and dtype. Everything is validated before
  /// anything is written, so on failure the module is unchanged. Throws ValueError listing the missing and
  /// unexpected names (and any shape or dtype mismatch); ShapeError or DTypeError when the names match but a
  /// shape or dtype does not (the message names the key, the expected and the given shape or dtype).
  void load_state_dict(const std::map<std::string, Tensor>& state);

  /// Training mode (the default) or evaluation mode, for this module and all its children. Dropout and
  /// DropConnect draw masks only in training; BatchNorm1d uses batch statistics in training, running ones in
  /// eval.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  /// Drops every parameter's gradient (grad() becomes undefined), so the next backward starts afresh.
  void zero_grad();
  /// Moves every parameter, gradient and buffer to `device`, in place: the tensors keep their identity (an
  /// optimiser built before still updates them) and their requires_grad; only the storage moves. Everything is
  /// copied before anything is replaced: on DeviceError or OutOfMemoryError the module is unchanged.
  Module& to(Device device);
  /// Total number of scalar parameters (sum of numel over parameters()).
  std::int64_t num_parameters() const;

  /// This module's own parameters (not its children's), in registration order.
  const std::vector<std::pair<std::string, Tensor>>& own_parameters() const { return parameters_; }
  /// Ties weights: makes this module's own parameter `name` the tensor `t` itself (not a copy), as PyTorch's
  /// `head.weight = emb.weight` does, so a write through either module is seen by both, and the tensor is
  /// listed, saved, counted and updated once. Throws ValueError when there is no such parameter or the module
  /// cannot share it, ShapeError or DTypeError when `t` differs from the parameter in shape or dtype.
  void share_parameter(const std::string& name, const Tensor& t);

 protected:
  /// Registers a trainable tensor under `name` (no dots; unique within this module) and marks it
  /// requires_grad_(). Returns the same handle. Throws ValueError on a bad or repeated name or an undefined
  /// tensor.
  Tensor register_parameter(std::string name, Tensor t);
  /// Registers saved, untrained state (running statistics, counters). Same naming rules.
  Tensor register_buffer(std::string name, Tensor t);
  /// Registers a child module. Same naming rules; throws ValueError on a null pointer.
  ModulePtr register_module(std::string name, ModulePtr m);
  /// Called by train() after the mode of this module changed; subclasses override to react.
  virtual void on_train_mode(bool /*on*/) {}
  /// Called by share_parameter() after parameter `name` became `t`: a module that keeps its own handle to
  /// the parameter (weight_) updates it and returns true. The default returns false (sharing is refused).
  virtual bool on_parameter_shared(const std::string& /*name*/, const Tensor& /*t*/) { return false; }

 private:
  void check_new_name_(const std::string& name, const char* what) const;
  void collect_(const std::string& prefix, bool buffers,
                std::vector<std::pair<std::string, Tensor>>& out) const;

  std::vector<std::pair<std::string, Tensor>> parameters_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, ModulePtr>> children_;
  std::set<std::string> names_;  // every name above, so registering n children takes O(n log n), not O(n^2)
  bool training_ = true;
};

}  // namespace backprop::nn
