// backprop/nn/checkpoint.hpp — a Sequential run in checkpointed segments: less activation memory for more time.
//
// checkpoint_sequential() splits a Sequential into segments and runs each through checkpoint()
// (autograd.hpp): a checkpointed segment keeps only its input between forward and backward and runs its
// modules again during the backward pass. The split is given by a count (PyTorch's checkpoint_sequential), by
// default about sqrt(n) segments, or chosen by plan_checkpoints() from a byte budget for activations.
//
// Example:
//   bp::Generator gen(0);
//   bp::nn::Sequential net;
//   for (int i = 0; i < 8; ++i) {
//     net.push_back(bp::nn::Linear(64, 64, gen));
//     net.push_back(bp::nn::ReLU());
//   }
//   const bp::Tensor x = bp::randn({32, 64}, gen);
//   bp::Tensor y = bp::nn::checkpoint_sequential(net, 4, x);    // 3 checkpointed chunks of 4, 4 plain
//   bp::Tensor z = bp::nn::checkpoint_sequential(net, x);       // round(sqrt(16)) = 4 segments
//   auto plan = bp::nn::plan_checkpoints(net, x, 80 * 1024);    // activations within 80 KiB at batch 32
//   bp::sum(bp::nn::checkpoint_sequential(net, plan, x)).backward();
//   std::cout << plan.describe() << "\n";
#pragma once

#include <backprop/nn/sequential.hpp>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace backprop::nn {

/// Modules [begin, end) of a Sequential, run under checkpoint() or plainly.
struct CheckpointSegment {
  std::size_t begin = 0;
  std::size_t end = 0;
  bool checkpointed = false;
};

/// What one module of the Sequential keeps and briefly needs at the planned batch, in tensor bytes
/// (memory_stats()), measured by plan_checkpoints() with one forward and backward of the module alone.
struct LayerMemory {
  std::size_t output_bytes = 0;     // its output
  std::size_t saved_bytes = 0;      // new bytes its recorded graph keeps (its output only if keeps_output)
  bool keeps_input = false;         // its graph keeps its input (Linear does, Tanh does not)
  bool keeps_output = false;        // its graph keeps its output (Tanh and Sigmoid do, Linear does not)
  std::size_t transient_bytes = 0;  // the most its forward or backward holds beyond that at once
  double forward_cost = 0;          // output elements + rows x parameters: the cost of running it again
};

/// How checkpoint_sequential() runs a Sequential: segments in order, covering every module once.
struct CheckpointPlan {
  std::vector<CheckpointSegment> segments;
  std::size_t budget_bytes = 0;          // the budget it was planned for (0: planned by segment count)
  std::size_t estimated_peak_bytes = 0;  // plan_checkpoints()'s bound on the activation peak (0: not planned)
  std::vector<LayerMemory> layers;       // plan_checkpoints()'s measurements, one per module

  /// Modules in checkpointed segments: those that run twice.
  std::size_t recomputed_modules() const;
  /// The segments and the estimate, as for the example above: "4 segments: [0, 5) checkpointed, [5, 6) plain,
  /// [6, 9) checkpointed, [9, 16) plain; estimated peak 72.2 KiB of 80.0 KiB".
  std::string describe() const;
};

/// PyTorch's split of `module` into `segments` (1 <= segments <= size()): segments - 1 checkpointed chunks of
/// size() / segments modules, then the remaining modules run plainly (the last chunk needs no checkpoint: its
/// backward comes first, right after its forward). One segment runs everything plainly. Throws ValueError.
CheckpointPlan even_checkpoints(const Sequential& module, std::int64_t segments);

/// Chooses the segments for a budget of `budget_bytes` of activations: the peak, over the module's forward and
/// backward, of tensor bytes alive above those alive before it (parameters, gradients that already exist, the
/// input and the output's gradient). Runs each module once, forward and backward, on activations of
/// `sample_input`'s batch, to measure its LayerMemory (buffers such as running statistics are restored after;
/// a module that draws random numbers draws them; the peak of memory_stats() is reset). Then picks, among
/// splits whose estimated peak is within the budget, one that runs the least work twice: a budget at or above
/// the plain run's needs checkpoints nothing. The estimate counts every saved tensor of a segment and the
/// largest transient at once, so it bounds the measured peak from above. Gradients that backward() creates on
/// its first call are parameter state, not activations: measure from the second step. Throws ValueError naming
/// the budget and the least this network needs at this batch when no split fits.
CheckpointPlan plan_checkpoints(Sequential& module, const Tensor& sample_input, std::size_t budget_bytes);

/// module(input) with the segments of `plan` checkpointed: the same output and the same gradients (for the
/// input and every parameter) as module(input), with less memory kept. Under NoGradGuard it is module(input).
/// A checkpointed segment runs twice, so it must be deterministic: ValueError when it holds a Dropout or
/// DropConnect in training mode (the second run would draw other masks) or a BatchNorm1d in training mode (its
/// running statistics would be updated twice), and when the plan does not cover the module's size() modules
/// in order.
Tensor checkpoint_sequential(Sequential& module, const CheckpointPlan& plan, const Tensor& input);
/// checkpoint_sequential(module, even_checkpoints(module, segments), input).
Tensor checkpoint_sequential(Sequential& module, std::int64_t segments, const Tensor& input);
/// About sqrt(n) segments: round(sqrt(size())), at least 1.
Tensor checkpoint_sequential(Sequential& module, const Tensor& input);

}  // namespace backprop::nn
