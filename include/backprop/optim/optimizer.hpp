// backprop/optim/optimizer.hpp — the base of every optimiser, and gradient clipping.
//
// An optimiser holds the leaf tensors it updates (in a fixed order) and, per tensor, named state buffers
// (momentum, Adam's moments, ...) created on the first step that sees a gradient. step() applies one update
// from the current .grad() values, under NoGradGuard, in place, as one fused loop per tensor over its raw
// data (no temporary tensors after the first step); a tensor whose grad() is undefined is skipped. state()
// returns everything needed to resume bit-exactly; load_state() restores it.
//
// Example:
//   bp::optim::SGD opt(net.parameters(), {.lr = 0.1, .momentum = 0.9});
//   for (int step = 0; step < 100; ++step) {
//     opt.zero_grad();
//     loss_fn(net(x), y).backward();
//     bp::optim::clip_grad_norm(opt.params(), 5.0);
//     opt.step();
//   }
//   auto saved = opt.state();   // "step", "lr", "0.momentum_buffer", "1.momentum_buffer", ...
#pragma once

#include <backprop/tensor.hpp>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace backprop::optim {

class Optimizer {
 public:
  /// `params`: the leaf tensors to update (f32 or f64, each defined). Throws ValueError on an undefined
  /// tensor.
  explicit Optimizer(Tensors params);
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  /// One update from the current gradients. Throws ShapeError / DTypeError when a gradient does not match its
  /// tensor (naming the tensor's index).
  virtual void step() = 0;
  /// Drops every parameter's gradient (grad() becomes undefined).
  void zero_grad();
  double lr() const { return lr_; }
  /// Throws ValueError on a negative or non-finite lr.
  void set_lr(double lr);
  /// Updates done so far.
  std::int64_t steps() const { return steps_; }

  /// "step" and "lr" (0-d f64) and "<i>.<buffer>" for every created buffer of parameter i (clones, so later
  /// steps do not change them).
  virtual std::map<std::string, Tensor> state() const;
  /// Restores a state() map. Validates everything first (the optimiser is unchanged on failure): "step" must
  /// be present; every other key must be "lr" or "<i>.<buffer>" with i < params().size() and a buffer name of
  /// this optimiser, with the shape (and dtype) the buffer has. Buffers missing from the map are treated as
  /// not created yet. Throws ValueError listing unknown keys, ShapeError / DTypeError naming the key.
  virtual void load_state(const std::map<std::string, Tensor>& state);

  const Tensors& params() const { return params_; }
  /// "SGD(lr=0.1, momentum=0.9, dampening=0, nesterov=false, weight_decay=0)"
  virtual std::string repr() const = 0;

 protected:
  /// A per-parameter buffer: named `name`, shaped like its parameter or (scalar) 0-d f64.
  struct BufferSpec {
    std::string name;
    bool scalar = false;
  };
  Optimizer(Tensors params, double lr, std::vector<BufferSpec> buffers);
  /// Buffer k of parameter i (undefined until created with make_buffer).
  Tensor& buffer(std::size_t i, std::size_t k) { return buffers_[i][k]; }
  /// Creates buffer k of parameter i filled with `value` (once; later calls return the existing one).
  Tensor& make_buffer(std::size_t i, std::size_t k, double value = 0.0);
  /// Checks param i's gradient (defined, shape, dtype); returns false when it is undefined (skip the tensor).
  bool has_grad(std::size_t i) const;
  /// Called by step() implementations after updating every tensor.
  void count_step() { ++steps_; }

 private:
  Tensors params_;
  double lr_ = 0.0;
  std::int64_t steps_ = 0;
  std::vector<BufferSpec> specs_;
  std::vector<std::vector<Tensor>> buffers_;
};

/// Rescales the gradients of `params` so that their global L2 norm sqrt(sum_k ||g_k||^2) is at most max_norm:
/// when the norm exceeds max_norm every gradient is multiplied by max_norm / (norm + 1e-6). Tensors without a
/// gradient are ignored. Returns the norm before clipping; when it is NaN or infinite the gradients are left
/// as they are (so the caller can detect divergence). Throws ValueError when max_norm <= 0.
double clip_grad_norm(const Tensors& params, double max_norm);

}  // namespace backprop::optim
