// The autograd engine: reverse-mode differentiation as dynamic programming over the recorded graph.
//
// 1. Discover every node reachable from the outputs (iterative depth-first search, no recursion) and count,
//    for each node, how many edges from other discovered nodes point at it.
// 2. Seed the outputs' gradients, then repeatedly run the ready node with the highest sequence number (the
//    most recently recorded): a node is ready once every consumer has handed it its gradient, so each node runs
//    exactly once, on the sum of its incoming gradients. This is the "table filling" of the chain rule.
// 3. Pass each input gradient on: into the producer node's buffer, or into a leaf's .grad().
#include <algorithm>
#include <atomic>
#include <backprop/anomaly.hpp>
#include <backprop/autograd.hpp>
#include <backprop/ops.hpp>
#include <cmath>
#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "kernels/kernels.hpp"

namespace backprop {

namespace {
thread_local bool grad_mode_enabled = true;
thread_local BackwardStats stats;
thread_local int engine_depth = 0;                       // > 0 while a backward runs (checkpoint() nests one)
thread_local GradAccumulatedHook grad_accumulated_hook;  // see set_grad_accumulated_hook()
std::atomic<std::uint64_t> next_sequence_nr{0};
}  // namespace

namespace {
thread_local bool anomaly_mode_enabled = false;

bool has_non_finite(const Tensor& view) {
  const Tensor t = kernels::dense(view);
  return dispatch(t.dtype(), [&](auto tag) {
    const auto* p = t.data<decltype(tag)>();
    for (std::int64_t i = 0; i < t.numel(); ++i)
      if (!std::isfinite(p[i])) return true;
    return false;
  });
}
}  // namespace

bool AnomalyMode::is_enabled() {
  return anomaly_mode_enabled;
}
void AnomalyMode::set_enabled(bool enabled) {
  anomaly_mode_enabled = enabled;
}

bool GradMode::is_enabled() {
  return grad_mode_enabled;
}
void GradMode::set_enabled(bool enabled) {
  grad_mode_enabled = enabled;
}
GradAccumulatedHook set_grad_accumulated_hook(GradAccumulatedHook hook) {
  std::swap(hook, grad_accumulated_hook);
  return hook;
}

BackwardStats last_backward_stats() {
  return stats;
}

Tensor record(const char* name, Tensor output, const Tensors& inputs, BackwardFn backward,
              RecordOptions options) {
  if (!GradMode::is_enabled()) return output;
  bool any = options.force;
  for (const Tensor& in : inputs) any = any || (in.defined() && in.requires_grad());
  if (!any) return output;
  BP_CHECK(!anomaly_mode_enabled || !has_non_finite(output), DivergedError, "anomaly: op '", name,
           "' produced a non-finite value in the forward pass (output shape ", output.shape(), ")");

  auto node = std::make_shared<Node>();
  node->name_ = name;
  node->fn_ = std::move(backward);
  node->out_shape_ = output.shape();
  node->out_dtype_ = output.dtype();
  node->seq_ = next_sequence_nr.fetch_add(1, std::memory_order_relaxed);
  node->opaque_ = options.force;
  node->next_.reserve(inputs.size());
  for (const Tensor& in : inputs) {
    Node::Edge edge;
    if (in.defined()) {
      edge.shape = in.shape();
      edge.dtype = in.dtype();
      if (in.grad_fn()) {
        edge.node = in.grad_fn();
      } else if (in.requires_grad()) {
        edge.leaf = in.impl_ptr();
        edge.is_leaf = true;
      }
      if (options.saves_inputs) node->saved_versions_.emplace_back(in.storage(), in.storage()->version);
    }
    node->next_.push_back(std::move(edge));
  }
  // The output may be a view sharing storage with an input; give it its own handle so the node is not shared.
  Tensor out = output.detach();
  if (options.save_output) {
    node->saved_output_ = out.storage();
    node->saved_versions_.emplace_back(out.storage(), out.storage()->version);
  }
  out.impl()->grad_fn = std::move(node);
  return out;
}

// Each node owns its producers through its edges (and through tensors its backward captured), so letting the
// last node of a long chain go would run one destructor inside another, once per node: a 100,000-op graph
// overflows the stack. Instead, the dying node adopts the producers it owns last and strips them one at a
// time: a node is destroyed only after its own producers have been moved to this loop's stack.
Node::~Node() {
  std::vector<std::shared_ptr<Node>> pending;
  auto adopt = [&pending](Node& n) {
    for (Edge& e : n.next_)
      if (e.node) pending.push_back(std::move(e.node));
    n.fn_ = nullptr;  // captured inputs: their nodes are held by `pending` now, so nothing recurses here
  };
  adopt(*this);
  while (!pending.empty()) {
    std::shared_ptr<Node> n = std::move(pending.back());
    pending.pop_back();
    if (n.use_count() == 1) adopt(*n);  // we hold the last reference: n dies at the end of this iteration
  }
}

/// Runs one backward pass. Internal; reached through backward(), grad() and checkpoint().
class Engine {
 public:
  struct Target {
    Node* node = nullptr;        // for a non-leaf input: capture the gradient arriving at its node
    TensorImpl* leaf = nullptr;  // for a leaf input: capture the gradient arriving at the leaf
  };

  /// With stop_at_targets, the walk ends at the target nodes: their incoming gradient is captured and they
  /// are neither run nor looked through (a recorded checkpoint recomputation stops at its inputs).
  static Tensors run(const Tensors& outputs, const Tensors& grad_outputs, const std::vector<Target>& targets,
                     bool accumulate_leaves, bool create_graph, bool retain_graph,
                     bool stop_at_targets = false);

 private:
  /// One pass in progress on this thread. A checkpoint's backward starts a nested pass; gradients that reach
  /// a leaf the enclosing grad() asked for are captured for the enclosing pass.
  struct Run {
    std::unordered_map<const Node*, std::size_t> target_of_node;
    std::unordered_map<const TensorImpl*, std::size_t> target_of_leaf;
    Tensors captured;
    bool accumulate_leaves = false;
    bool create_graph = false;
    Run* parent = nullptr;
    /// The pass (this or an enclosing one) that asked for this leaf's gradient, and where to put it.
    std::pair<Run*, std::size_t> leaf_target(const TensorImpl* leaf) {
      for (Run* r = this; r; r = r->parent)
        if (auto it = r->target_of_leaf.find(leaf); it != r->target_of_leaf.end()) return {r, it->second};
      return {nullptr, 0};
    }
  };
  static thread_local Run* current_;

  static void accumulate(Tensor& slot, const Tensor& g, bool create_graph);
  static void accumulate_leaf(TensorImpl& leaf, Tensor g, bool create_graph);
  static void deliver_to_leaf(Run& run, TensorImpl& leaf, Tensor g);
  friend Tensor checkpoint(const std::function<Tensor(const Tensors&)>&, const Tensors&);
  /// The backward of a checkpoint() node (see there).
  static Tensors checkpoint_backward(const std::function<Tensor(const Tensors&)>& fn, const Tensors& inputs,
                                     const Tensor& dy);
};

thread_local Engine::Run* Engine::current_ = nullptr;

namespace {
/// True when nothing but this handle sees t's elements, so they may be changed in place. Storage and handle
/// are both counted: a backward may hand the same handle to two inputs (d(a + b) = dy for both), and a view
/// shares storage through another handle.
bool exclusive(const Tensor& t) {
  return t.impl_ptr().use_count() == 1 && t.storage().use_count() == 1;
}
}  // namespace

void Engine::accumulate(Tensor& slot, const Tensor& g, bool create_graph) {
  if (!slot.defined()) {
    slot = g;
  } else if (create_graph) {
    slot = add(slot, g);
  } else if (exclusive(slot) && slot.is_contiguous() && !slot.requires_grad()) {
    kernels::axpy(slot, g, 1.0);  // the buffer is ours alone: add in place
  } else {
    slot = kernels::binary(kernels::Binary::add, slot, g);
  }
}

void Engine::accumulate_leaf(TensorImpl& leaf, Tensor g, bool create_graph) {
  BP_CHECK(g.shape() == leaf.shape && g.dtype() == leaf.dtype, AutogradError, "backward: gradient of shape ",
           g.shape(), " ", g.dtype(), " for a leaf of shape ", leaf.shape, " ", leaf.dtype);
  if (create_graph) {
    leaf.grad = leaf.grad.defined() ? add(leaf.grad, g) : g;
    return;
  }
  if (!leaf.grad.defined()) {
    // Take the gradient over when nothing else sees it (the caller moved its handle in); otherwise keep a
    // private copy, so a later in-place accumulation cannot change a tensor someone else holds.
    leaf.grad = exclusive(g) && g.is_contiguous() ? g.detach() : kernels::convert(g, g.dtype());
    return;
  }
  if (leaf.grad.requires_grad() || !exclusive(leaf.grad) || !leaf.grad.is_contiguous()) {
    leaf.grad = kernels::binary(kernels::Binary::add, leaf.grad.detach(), g);
    return;
  }
  ++leaf.grad.storage()->version;
  kernels::axpy(leaf.grad, g, 1.0);
}

void Engine::deliver_to_leaf(Run& run, TensorImpl& leaf, Tensor g) {
  if (auto [owner, index] = run.leaf_target(&leaf); owner)
    accumulate(owner->captured[index], g, owner->create_graph);
  if (!run.accumulate_leaves) return;
  accumulate_leaf(leaf, std::move(g), run.create_graph);
  if (grad_accumulated_hook) grad_accumulated_hook(leaf);
}

Tensors Engine::run(const Tensors& outputs, const Tensors& grad_outputs, const std::vector<Target>& targets,
                    bool accumulate_leaves, bool create_graph, bool retain_graph, bool stop_at_targets) {
  if (engine_depth == 0) stats = {};
  struct Depth {
    Depth() { ++engine_depth; }
    ~Depth() { --engine_depth; }
  } depth;
  BP_CHECK(grad_outputs.empty() || grad_outputs.size() == outputs.size(), AutogradError,
           "backward: ", outputs.size(), " outputs but ", grad_outputs.size(), " output gradients");
  GradModeGuard mode(create_graph);

  Run run;
  run.accumulate_leaves = accumulate_leaves;
  run.create_graph = create_graph;
  run.parent = current_;
  struct Current {
    Run* previous;
    explicit Current(Run* r) : previous(current_) { current_ = r; }
    ~Current() { current_ = previous; }
  } current(&run);
  for (std::size_t i = 0; i < targets.size(); ++i) {
    if (targets[i].node) run.target_of_node.emplace(targets[i].node, i);
    if (targets[i].leaf) run.target_of_leaf.emplace(targets[i].leaf, i);
  }
  run.captured.resize(targets.size());

  // Seed gradients.
  std::unordered_map<const Node*, Tensor> buffer;
  std::vector<std::shared_ptr<Node>> roots;
  for (std::size_t i = 0; i < outputs.size(); ++i) {
    const Tensor& y = outputs[i];
    BP_CHECK(y.defined(), AutogradError, "backward: output ", i, " is undefined");
    BP_CHECK(
        y.requires_grad(), AutogradError, "backward: output ", i, " (shape ", y.shape(),
        ") does not require grad and has no grad_fn; did you forget requires_grad_() on an input, or run "
        "the forward under NoGradGuard?");
    Tensor g = grad_outputs.empty() ? Tensor() : grad_outputs[i];
    if (!g.defined()) {
      BP_CHECK(y.numel() == 1, AutogradError, "backward: output ", i, " has shape ", y.shape(),
               "; a gradient can be implied only for a one-element output, so pass grad_outputs");
      g = ones(y.shape(), y.dtype());
    }
    BP_CHECK(g.shape() == y.shape() && g.dtype() == y.dtype(), AutogradError,
             "backward: gradient for output ", i, " has shape ", g.shape(), " ", g.dtype(),
             " but the output is ", y.shape(), " ", y.dtype());
    if (!y.grad_fn()) {  // a leaf as output
      deliver_to_leaf(run, *y.impl(), std::move(g));
      continue;
    }
    accumulate(buffer[y.grad_fn().get()], g, create_graph);
    roots.push_back(y.grad_fn());
  }

  auto is_stop = [&](const Node* n) { return stop_at_targets && run.target_of_node.count(n) > 0; };

  // Discover the graph: iterative DFS; `order` ends up in post-order (inputs before their consumers).
  std::unordered_map<const Node*, int> dependencies;
  std::vector<Node*> order;
  {
    std::unordered_set<const Node*> seen;
    std::vector<std::pair<Node*, std::size_t>> stack;
    for (const auto& r : roots)
      if (seen.insert(r.get()).second) stack.emplace_back(r.get(), 0);
    while (!stack.empty()) {
      auto& [node, child] = stack.back();
      if (child < node->next_.size() && !is_stop(node)) {
        Node* c = node->next_[child++].node.get();
        if (c) {
          ++dependencies[c];
          if (seen.insert(c).second) stack.emplace_back(c, 0);
        }
      } else {
        order.push_back(node);
        stack.pop_back();
      }
    }
  }
  stats.nodes_in_graph += order.size();

  // Which nodes must run: all of them for backward(); for grad(), those on a path to a requested input (a
  // checkpoint may hide such a path inside its recomputation, so it always runs).
  std::unordered_map<const Node*, bool> needed;
  for (Node* n : run.accumulate_leaves ? std::vector<Node*>{} : order) {  // post-order: children first
    bool need = n->opaque_;
    for (const auto& e : n->next_) {
      if (need) break;
      if (e.node)
        need = needed[e.node.get()] || run.target_of_node.count(e.node.get()) > 0;
      else if (e.is_leaf)
        need = run.leaf_target(e.leaf.lock().get()).first != nullptr;
    }
    needed[n] = need;
  }

  auto later = [](const Node* a, const Node* b) { return a->seq_ < b->seq_; };
  std::priority_queue<Node*, std::vector<Node*>, decltype(later)> ready(later);
  for (const auto& r : roots)
    if (dependencies[r.get()] == 0) {
      dependencies[r.get()] = -1;  // queued
      ready.push(r.get());
    }

  while (!ready.empty()) {
    Node* node = ready.top();
    ready.pop();
    Tensor g;
    if (auto it = buffer.find(node); it != buffer.end()) {
      g = std::move(it->second);
      buffer.erase(it);
    }
    if (auto t = run.target_of_node.find(node); t != run.target_of_node.end() && g.defined())
      accumulate(run.captured[t->second], g, create_graph);
    if (auto keep = node->retained_.lock(); keep && g.defined()) {
      keep->grad =
          keep->grad.defined() ? kernels::binary(kernels::Binary::add, keep->grad, g.detach()) : g.detach();
    }
    if (is_stop(node)) continue;

    Tensors input_grads;
    if (g.defined() && (run.accumulate_leaves || needed[node])) {
      BP_CHECK(!node->released_, AutogradError,
               "backward: trying to backward through the graph a second time "
               "(op '",
               node->name_,
               "'); its saved tensors were freed after the first backward. Pass "
               "retain_graph = true to the first backward if you need to walk the graph again.");
      for (const auto& [weak, version] : node->saved_versions_) {
        auto s = weak.lock();
        BP_CHECK(!s || s->version == version, AutogradError, "backward: a tensor saved by op '", node->name_,
                 "' was modified in place after it was saved (version ", version, " -> ", s ? s->version : 0,
                 "); the gradient would be wrong. Clone the tensor before changing it.");
      }
      Tensor y;
      if (node->saved_output_) {
        y = Tensor(node->saved_output_, node->out_shape_, node->out_dtype_);
        if (create_graph) y.impl()->grad_fn = node->shared_from_this();
      }
      input_grads = node->fn_(g, y);
      ++node->times_run_;
      ++stats.nodes_run;
      BP_CHECK(input_grads.size() == node->next_.size(), AutogradError, "backward of op '", node->name_,
               "' returned ", input_grads.size(), " gradients for ", node->next_.size(), " inputs");
      if (anomaly_mode_enabled) {
        for (std::size_t i = 0; i < input_grads.size(); ++i)
          BP_CHECK(!input_grads[i].defined() || !has_non_finite(input_grads[i]), DivergedError,
                   "anomaly: the backward of op '", node->name_,
                   "' produced a non-finite gradient for input ", i, " (shape ", input_grads[i].shape(), ")");
      }
      if (!retain_graph) {
        node->fn_ = nullptr;
        node->saved_output_.reset();
        node->released_ = true;
      }
    }
    g = Tensor();  // a gradient passed through unchanged is then held only by input_grads: it may be reused

    for (std::size_t i = 0; i < node->next_.size(); ++i) {
      const Node::Edge& e = node->next_[i];
      Tensor gi = i < input_grads.size() ? std::move(input_grads[i]) : Tensor();
      if (gi.defined() && e.active()) {
        BP_CHECK(gi.shape() == e.shape, AutogradError, "backward of op '", node->name_,
                 "' returned a gradient of shape ", gi.shape(), " for input ", i, " of shape ", e.shape);
      }
      if (e.node) {
        if (gi.defined()) accumulate(buffer[e.node.get()], gi, create_graph);
        if (--dependencies[e.node.get()] == 0) {
          dependencies[e.node.get()] = -1;
          ready.push(e.node.get());
        }
      } else if (e.is_leaf && gi.defined()) {
        if (auto leaf = e.leaf.lock()) deliver_to_leaf(run, *leaf, std::move(gi));
      }
    }
  }
  return std::move(run.captured);
}

namespace {
std::vector<Engine::Target> targets_of(const Tensors& inputs) {
  std::vector<Engine::Target> targets;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    BP_CHECK(x.defined() && x.requires_grad(), AutogradError, "grad: input ", i,
             " does not require grad; mark it with requires_grad_() before the forward pass");
    Engine::Target t;
    if (x.grad_fn())
      t.node = x.grad_fn().get();
    else
      t.leaf = x.impl();
    targets.push_back(t);
  }
  return targets;
}
}  // namespace

void backward(const Tensors& outputs, const Tensors& grad_outputs, BackwardOptions options) {
  Engine::run(outputs, grad_outputs, {}, true, options.create_graph,
              options.retain_graph.value_or(options.create_graph));
}

Tensors grad(const Tensors& outputs, const Tensors& inputs, GradOptions options) {
  Tensors result = Engine::run(outputs, options.grad_outputs, targets_of(inputs), false, options.create_graph,
                               options.retain_graph.value_or(options.create_graph));
  for (std::size_t i = 0; i < result.size(); ++i) {
    BP_CHECK(result[i].defined() || options.allow_unused, AutogradError, "grad: input ", i, " (shape ",
             inputs[i].shape(),
             ") was not used to compute the outputs; pass allow_unused = true if that is expected");
    // Without create_graph the gradients are plain values; make sure none aliases a buffer of the graph.
    if (result[i].defined() && !options.create_graph) result[i] = result[i].detach();
  }
  return result;
}

// The forward runs under no-grad, so the node keeps only fn and its inputs. Its backward runs fn again with
// recording on and backpropagates through that fresh graph in a nested pass: the inputs' gradients come back as
// this node's input gradients; parameters used inside fn receive theirs directly from the nested pass, as the
// enclosing pass would have delivered them (into .grad() for backward(), captured for grad()).
//
// Without create_graph (grad mode off in the backward) fn reruns on detached copies of the inputs and the
// nested pass records nothing. Under create_graph the rerun and the nested pass are recorded, so the gradients
// it hands on are functions of the inputs, the parameters and dy, as PyTorch's non-reentrant checkpoint's are:
// fn reruns on the inputs themselves, each behind an identity node at which the nested pass stops (the walk
// on into the graph that produced the inputs belongs to the enclosing pass, with the gradients returned here).
Tensors Engine::checkpoint_backward(const std::function<Tensor(const Tensors&)>& fn, const Tensors& inputs,
                                    const Tensor& dy) {
  const bool create_graph = GradMode::is_enabled();
  Tensors rerun_inputs;
  std::vector<Target> targets;
  for (const Tensor& x : inputs) {
    Tensor r;
    if (x.defined() && x.requires_grad() && create_graph) {
      r = record("checkpoint_input", x, {x}, [](const Tensor& g) { return Tensors{g}; },
                 {.saves_inputs = false});
      targets.push_back({.node = r.grad_fn().get(), .leaf = nullptr});
    } else if (x.defined() && x.requires_grad()) {
      r = x.detach().requires_grad_();
      targets.push_back({.node = nullptr, .leaf = r.impl()});
    } else {
      r = x.defined() ? x.detach() : Tensor();
    }
    rerun_inputs.push_back(r);
  }
  Tensor y;
  {
    GradModeGuard recompute(true);
    y = fn(rerun_inputs);
  }
  const bool accumulate = current_ == nullptr || current_->accumulate_leaves;
  Tensors grads;
  if (y.requires_grad())
    grads = run({y}, {dy}, targets, accumulate, create_graph, /*retain_graph=*/create_graph,
                /*stop_at_targets=*/create_graph);
  Tensors result(inputs.size());
  std::size_t k = 0;
  for (std::size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].defined() && inputs[i].requires_grad())
      result[i] = k < grads.size() ? grads[k++] : Tensor();
  return result;
}

Tensor checkpoint(const std::function<Tensor(const Tensors&)>& fn, const Tensors& inputs) {
  if (!GradMode::is_enabled()) return fn(inputs);
  Tensor out;
  {
    NoGradGuard no_grad;  // nothing inside fn is kept
    out = fn(inputs);
  }
  return record("checkpoint", out, inputs,
                [fn, inputs](const Tensor& dy) { return Engine::checkpoint_backward(fn, inputs, dy); },
                {.saves_inputs = true, .force = true});
}

}  // namespace backprop
