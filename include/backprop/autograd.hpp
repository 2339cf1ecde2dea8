// backprop/autograd.hpp — reverse-mode automatic differentiation over a recorded graph.
//
// Every op on tensors that require grad records a Node: its name, edges to the nodes (or leaves) of its
// inputs, and a backward function written with the same differentiable ops. backward() walks the nodes once
// each in reverse topological order, accumulating each node's incoming gradients before running it: the chain
// rule as dynamic programming. With create_graph the walk itself is recorded, so gradients can be
// differentiated again (symbol-to-symbol differentiation).
//
// Example:
//   bp::Tensor x = bp::tensor({2.0}, bp::f64).requires_grad_();
//   bp::Tensor y = bp::pow(x, 3.0);
//   auto dy = bp::grad({y}, {x}, {.create_graph = true});   // 3 x^2 = 12, itself differentiable
//   auto d2y = bp::grad({dy[0]}, {x});                       // 6 x = 12
//   { bp::NoGradGuard guard; /* nothing recorded here */ }
#pragma once

#include <backprop/tensor.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

namespace backprop {

// ---- grad mode --------------------------------------------------------------------------------------------

/// Whether ops record the graph on this thread (on by default).
struct GradMode {
  static bool is_enabled();
  static void set_enabled(bool enabled);
};

/// Turns recording off for its lifetime (inference, optimiser steps); restores the previous mode after.
class NoGradGuard {
 public:
  NoGradGuard() : previous_(GradMode::is_enabled()) { GradMode::set_enabled(false); }
  ~NoGradGuard() { GradMode::set_enabled(previous_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

/// Sets grad mode to `enabled` for its lifetime.
class GradModeGuard {
 public:
  explicit GradModeGuard(bool enabled) : previous_(GradMode::is_enabled()) { GradMode::set_enabled(enabled); }
  ~GradModeGuard() { GradMode::set_enabled(previous_); }
  GradModeGuard(const GradModeGuard&) = delete;
  GradModeGuard& operator=(const GradModeGuard&) = delete;

 private:
  bool previous_;
};

// ---- graph nodes ------------------------------------------------------------------------------------------

/// The backward of an op: given dL/dy (and y itself, when the op asked to keep its output), returns dL/dx for
/// each input, in input order (undefined for inputs that need no gradient). Written with differentiable ops.
using BackwardFn = std::function<Tensors(const Tensor& grad_output, const Tensor& output)>;

struct RecordOptions {
  /// Keep the op's output for the backward (cheaper than keeping the input for sigmoid, tanh, exp, sqrt).
  bool save_output = false;
  /// The backward reads its inputs' values: an in-place change to them before backward is an error.
  bool saves_inputs = true;
  /// Record even when no input requires grad (checkpoint(): parameters used inside still need their grads).
  bool force = false;
};

/// One recorded op. Owned by its output tensor (and by the nodes of ops that consumed that output).
class Node : public std::enable_shared_from_this<Node> {
 public:
  Node() = default;
  /// Frees the chain of nodes this one owns iteratively, so a graph of any length can be destroyed without
  /// exhausting the stack.
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  /// Where an input's gradient goes: the node that produced the input, or the leaf tensor itself.
  struct Edge {
    std::shared_ptr<Node> node;      // set when the input was produced by a recorded op
    std::weak_ptr<TensorImpl> leaf;  // set when the input is a leaf that requires grad
    bool is_leaf = false;
    Shape shape;  // the input's shape, to check the gradient handed back
    DType dtype = DType::f32;
    bool active() const { return node != nullptr || is_leaf; }
  };

  const char* name() const { return name_; }
  const std::vector<Edge>& next() const { return next_; }
  std::uint64_t sequence_nr() const { return seq_; }
  /// True once backward ran through this node without retain_graph (its saved tensors are gone).
  bool released() const { return released_; }
  /// How many times this node's backward has run (for tests of the dynamic-programming property).
  std::uint64_t times_run() const { return times_run_; }

 private:
  friend Tensor record(const char*, Tensor, const Tensors&, BackwardFn, RecordOptions);
  friend class Engine;
  const char* name_ = "";
  std::vector<Edge> next_;
  BackwardFn fn_;
  Shape out_shape_;
  DType out_dtype_ = DType::f32;
  std::uint64_t seq_ = 0;
  bool released_ = false;
  bool opaque_ = false;  // its backward may reach leaves that are not among its edges (checkpoint())
  std::uint64_t times_run_ = 0;
  std::shared_ptr<Storage> saved_output_;                                         // when the backward needs y
  std::vector<std::pair<std::weak_ptr<Storage>, std::uint64_t>> saved_versions_;  // to detect in-place edits
  std::weak_ptr<TensorImpl> retained_;                                            // set by retain_grad()
  friend class Tensor;
};

/// Records `output` as produced by op `name` from `inputs` with the given backward, when grad mode is on and
/// some input requires grad; otherwise returns `output` untouched. This is how every op joins the graph.
Tensor record(const char* name, Tensor output, const Tensors& inputs, BackwardFn backward,
              RecordOptions options = {});

/// Overload for backward functions that need only the output gradient.
template <class F>
requires std::is_invocable_r_v<Tensors, F, const Tensor&> Tensor record(const char* name, Tensor output,
                                                                        const Tensors& inputs, F backward,
                                                                        RecordOptions options = {}) {
  return record(name, std::move(output), inputs,
                BackwardFn([fn = std::move(backward)](const Tensor& dy, const Tensor&) { return fn(dy); }),
                options);
}

// ---- running backward -------------------------------------------------------------------------------------

struct BackwardOptions {
  /// Keep saved tensors so the graph can be walked again. Defaults to create_graph.
  std::optional<bool> retain_graph;
  /// Record the backward pass itself, making the gradients differentiable.
  bool create_graph = false;
};

/// Accumulates d(sum_i <grad_outputs[i], outputs[i]>)/dleaf into leaf.grad() for every leaf that requires
/// grad. A grad_output may be undefined for a scalar output (it means 1). The sum is formed in place only
/// when nothing else holds the gradient tensor, so neither grad_outputs nor a gradient handle kept by the
/// caller ever changes. Throws AutogradError: an output that does not require grad, a missing or mis-shaped
/// grad_output, a second walk through a graph freed by an earlier backward (see retain_graph), a saved tensor
/// changed in place.
void backward(const Tensors& outputs, const Tensors& grad_outputs = {}, BackwardOptions options = {});

struct GradOptions {
  /// Gradients of the outputs (undefined entries mean 1 for scalars).
  Tensors grad_outputs;
  std::optional<bool> retain_graph;
  bool create_graph = false;
  /// Return an undefined tensor, rather than throw, for an input the outputs do not depend on.
  bool allow_unused = false;
};

/// Returns d(sum_i <grad_outputs[i], outputs[i]>)/dinputs[j] without touching any .grad().
Tensors grad(const Tensors& outputs, const Tensors& inputs, GradOptions options = {});

/// Called on this thread right after backward() has added a gradient into `leaf`'s .grad() (once per
/// contribution: a leaf used twice is reported twice). grad() never calls it. Lets data-parallel training
/// start communicating a gradient while the rest of the backward pass runs.
using GradAccumulatedHook = std::function<void(const TensorImpl& leaf)>;
/// Installs `hook` (empty = none) for this thread and returns the previous one, to be restored by the caller.
GradAccumulatedHook set_grad_accumulated_hook(GradAccumulatedHook hook);

/// Counters of the most recent backward()/grad() on this thread.
struct BackwardStats {
  std::uint64_t nodes_run = 0;       // backward functions executed
  std::uint64_t nodes_in_graph = 0;  // nodes reached from the outputs
};
BackwardStats last_backward_stats();

// ---- checkpointing ----------------------------------------------------------------------------------------

/// Runs fn(inputs) without keeping its intermediate values; during backward the forward is recomputed to get
/// them. Same gradients as calling fn directly (for inputs and for parameters used inside fn), less memory,
/// one more forward. fn must be deterministic (draw no fresh random numbers). Works under backward() and
/// grad() alike (parameters used inside fn get their gradients where the enclosing call delivers them).
/// Under create_graph the recomputation and its backward are recorded, so the gradients are differentiable
/// again (Hessian-vector products, gradient penalties) like those of fn called directly; the recorded graph
/// then lives as long as the gradients do. A tensor computed outside fn by recorded ops must be passed in
/// `inputs`, not captured (leaves such as parameters may be captured). See nn/checkpoint.hpp for whole
/// Sequential networks and for choosing the segments from a memory budget.
Tensor checkpoint(const std::function<Tensor(const Tensors&)>& fn, const Tensors& inputs);

}  // namespace backprop
