// checkpoint_sequential: a Sequential in checkpointed segments, split by count or planned from a byte budget.
//
// The planner's memory model, per segment in backward order (the last segment's backward runs first):
//   a checkpointed segment [a, b) keeps its input (the output of module a - 1) from its forward on; while its
//   backward runs it also holds what its modules save, its recomputed output, that output's gradient and the
//   largest transient of its modules;
//   a plain module keeps what it saves (and its input, if it keeps that) from its forward on and, during its
//   backward, its transient.
// Everything kept before it is alive at the same time, and so is the Sequential's output (held by the caller).
// The peak is the largest of these sums. A dynamic programme over (module, bytes kept so far) finds the split
// within the budget that recomputes the least work.
#include <algorithm>
#include <backprop/memory.hpp>
#include <backprop/nn/batchnorm.hpp>
#include <backprop/nn/checkpoint.hpp>
#include <backprop/nn/dropout.hpp>
#include <backprop/ops.hpp>
#include <cmath>
#include <iomanip>
#include <limits>
#include <sstream>

namespace backprop::nn {

namespace {

double mib(std::size_t bytes) {
  return static_cast<double>(bytes) / (1 << 20);
}

/// "1.50 MiB", or "96.0 KiB" below a MiB.
std::string human(std::size_t bytes) {
  std::ostringstream o;
  o << std::fixed;
  if (bytes < (1u << 20))
    o << std::setprecision(1) << static_cast<double>(bytes) / 1024 << " KiB";
  else
    o << std::setprecision(2) << mib(bytes) << " MiB";
  return o.str();
}

/// Throws ValueError when running `m` (module `index`) twice would not repeat the first run.
void check_recomputable(const Module& m, std::size_t index) {
  auto check = [index](const Module& mod) {
    const bool random = dynamic_cast<const Dropout*>(&mod) || dynamic_cast<const DropConnect*>(&mod);
    BP_CHECK(!(random && mod.is_training()), ValueError, "checkpoint_sequential: module ", index, " (",
             mod.repr(),
             ") draws random numbers in training mode, so running it again in the backward pass would draw "
             "other masks; keep it in a plain segment or call eval()");
    BP_CHECK(!(dynamic_cast<const BatchNorm1d*>(&mod) && mod.is_training()), ValueError,
             "checkpoint_sequential: module ", index, " (", mod.repr(),
             ") updates its running statistics in training mode, so running it again in the backward pass "
             "would update them twice; keep it in a plain segment or call eval()");
  };
  check(m);
  for (const auto& [name, child] : m.named_modules()) check(*child);
}

void check_plan(const Sequential& module, const CheckpointPlan& plan) {
  std::size_t next = 0;
  for (std::size_t s = 0; s < plan.segments.size(); ++s) {
    const CheckpointSegment& seg = plan.segments[s];
    BP_CHECK(seg.begin == next && seg.end > seg.begin && seg.end <= module.size(), ValueError,
             "checkpoint_sequential: segment ", s, " is [", seg.begin, ", ", seg.end, ") but must start at ",
             next, ", be non-empty and end by ", module.size(),
             " (the plan must cover the modules in order)");
    next = seg.end;
  }
  BP_CHECK(next == module.size(), ValueError, "checkpoint_sequential: the plan covers ", next, " of ",
           module.size(), " modules");
}

/// One forward and backward of `m` alone on a private copy of `input`; `output` receives its (detached) output.
LayerMemory measure(Module& m, const Tensor& input, std::int64_t rows, Tensor& output) {
  Tensor x = input.detach().clone().requires_grad_();  // held by nothing else: shows whether m keeps it
  Tensors wrt = {x};
  for (const Tensor& p : m.parameters())
    if (p.requires_grad()) wrt.push_back(p);
  LayerMemory r;
  const auto live = [] { return memory_stats().live_bytes; };
  const std::size_t base = live();
  reset_peak_memory();
  Tensor y;
  {
    GradModeGuard record(true);
    y = m.forward(x);
  }
  const std::size_t with_output = live() - base;
  const std::size_t forward_extra = memory_stats().peak_bytes - base - with_output;
  const std::size_t before_dy = live();
  Tensor dy = ones_like(y);
  r.output_bytes = live() - before_dy;
  std::size_t backward_peak = 0;
  if (y.requires_grad()) {
    const std::size_t before = live();
    reset_peak_memory();
    { const Tensors g = grad({y}, wrt, {.grad_outputs = {dy}, .retain_graph = true, .allow_unused = true}); }
    backward_peak = memory_stats().peak_bytes - before;
  }
  dy = Tensor();
  // In the chain the output's gradient arrives as a fresh tensor: count it with the backward's own.
  r.transient_bytes = std::max(forward_extra, r.output_bytes + backward_peak);
  r.forward_cost = static_cast<double>(y.numel()) + static_cast<double>(rows) * m.num_parameters();
  output = y.detach().clone();  // the next module's input, on storage of its own
  // Drop every handle but the graph's own and see what stays alive.
  const std::shared_ptr<Node> graph = y.grad_fn();
  const std::size_t before_output = live();
  y = Tensor();
  r.keeps_output = graph && live() == before_output;
  r.saved_bytes = with_output - (before_output - live());
  const std::size_t before_input = live();
  wrt.clear();
  x = Tensor();
  r.keeps_input = graph && live() == before_input;
  return r;
}

/// The planner's model (see the top of this file) for one split.
struct Model {
  const std::vector<LayerMemory>& layers;
  std::size_t output;  // the module's output, held by the caller throughout

  /// Bytes of module k's input kept by a consumer that keeps its input (`keeps`), unless module k - 1, run
  /// plainly just before (`after_plain`), already keeps it as its output.
  std::size_t input_kept(std::size_t k, bool keeps, bool after_plain) const {
    if (k == 0 || !keeps || (after_plain && layers[k - 1].keeps_output)) return 0;
    return layers[k - 1].output_bytes;
  }
  /// Peak while the backward of checkpointed segment [a, b) runs, `kept` bytes being kept by everything up to
  /// and including its input: the recomputed graph, its output and that output's gradient, one transient.
  std::size_t checkpoint_phase(std::size_t kept, std::size_t a, std::size_t b) const {
    Recomputed r;
    for (std::size_t k = a; k < b; ++k) r.add(*this, a, k);
    return kept + r.phase(*this, b);
  }
  /// What a checkpointed segment's recomputation holds, grown one module at a time (the search extends a
  /// segment module by module without summing it again).
  struct Recomputed {
    std::size_t saved = 0, transient = 0;
    void add(const Model& m, std::size_t a, std::size_t k) {
      saved += m.layers[k].saved_bytes + (k > a ? m.input_kept(k, m.layers[k].keeps_input, true) : 0);
      transient = std::max(transient, m.layers[k].transient_bytes);
    }
    /// The phase's bytes beyond those kept, for the segment ending before module b.
    std::size_t phase(const Model& m, std::size_t b) const {
      return saved + 2 * m.layers[b - 1].output_bytes + transient + m.output;
    }
  };
  /// Peak while plain module k's backward runs, `kept` bytes being kept by everything up to and including it.
  std::size_t plain_phase(std::size_t kept, std::size_t k) const {
    return kept + layers[k].transient_bytes + output;
  }

  std::size_t peak(const std::vector<CheckpointSegment>& segments) const {
    std::size_t kept = 0, worst = 0;
    bool after_plain = false;
    for (const CheckpointSegment& s : segments) {
      if (s.checkpointed) {
        kept += input_kept(s.begin, true, after_plain);
        worst = std::max(worst, checkpoint_phase(kept, s.begin, s.end));
        after_plain = false;
        continue;
      }
      for (std::size_t k = s.begin; k < s.end; ++k) {
        kept += layers[k].saved_bytes + input_kept(k, layers[k].keeps_input, after_plain);
        worst = std::max(worst, plain_phase(kept, k));
        after_plain = true;
      }
    }
    return worst;
  }

  /// The split within `budget` that recomputes the least forward cost (ties: the fewest bytes kept); empty
  /// when none fits. States at module j: (bytes kept so far, cost so far, whether module j - 1 ran plainly),
  /// keeping only those no other state beats on both numbers.
  std::vector<CheckpointSegment> best_within(std::size_t budget) const {
    struct State {
      std::size_t kept;
      double cost;
      bool after_plain;
      std::size_t from, from_state;  // the previous module index and its state's position
    };
    const std::size_t n = layers.size();
    std::vector<std::vector<State>> states(n + 1);
    states[0].push_back({0, 0.0, false, 0, 0});
    constexpr std::size_t kMaxStates = 256;  // per flag: keeps the search quadratic in n on long networks
    for (std::size_t j = 0; j < n; ++j) {
      auto& here = states[j];
      std::sort(here.begin(), here.end(), [](const State& a, const State& b) {
        if (a.after_plain != b.after_plain) return a.after_plain < b.after_plain;
        return a.kept != b.kept ? a.kept < b.kept : a.cost < b.cost;
      });
      std::vector<State> front;  // per flag: increasing kept, decreasing cost
      for (std::size_t i = 0; i < here.size(); ++i) {
        const bool first_of_flag = i == 0 || here[i].after_plain != here[i - 1].after_plain;
        if (first_of_flag || here[i].cost < front.back().cost) front.push_back(here[i]);
      }
      if (front.size() > 2 * kMaxStates) {
        std::vector<State> thinned;
        for (std::size_t i = 0; i < 2 * kMaxStates; ++i)
          thinned.push_back(front[i * front.size() / (2 * kMaxStates)]);
        front = std::move(thinned);
      }
      here = std::move(front);
      for (std::size_t si = 0; si < here.size(); ++si) {
        const State s = here[si];
        const std::size_t plain_kept =
            s.kept + layers[j].saved_bytes + input_kept(j, layers[j].keeps_input, s.after_plain);
        if (plain_phase(plain_kept, j) <= budget) states[j + 1].push_back({plain_kept, s.cost, true, j, si});
        const std::size_t kept = s.kept + input_kept(j, true, s.after_plain);
        double cost = s.cost;
        Recomputed segment;
        for (std::size_t b = j + 1; b <= n; ++b) {
          cost += layers[b - 1].forward_cost;
          segment.add(*this, j, b - 1);
          if (kept + segment.phase(*this, b) <= budget) states[b].push_back({kept, cost, false, j, si});
        }
      }
    }
    if (states[n].empty()) return {};
    const State* best = &states[n][0];
    for (const State& s : states[n])
      if (s.cost < best->cost || (s.cost == best->cost && s.kept < best->kept)) best = &s;
    std::vector<CheckpointSegment> segments;
    std::size_t end = n;
    for (const State* s = best; end > 0;) {
      const bool checkpointed = !s->after_plain;
      if (!checkpointed && !segments.empty() && !segments.back().checkpointed)
        segments.back().begin = s->from;  // adjacent plain modules form one segment
      else
        segments.push_back({s->from, end, checkpointed});
      end = s->from;
      s = &states[s->from][s->from_state];
    }
    std::reverse(segments.begin(), segments.end());
    return segments;
  }
};

}  // namespace

std::size_t CheckpointPlan::recomputed_modules() const {
  std::size_t n = 0;
  for (const CheckpointSegment& s : segments)
    if (s.checkpointed) n += s.end - s.begin;
  return n;
}

std::string CheckpointPlan::describe() const {
  std::ostringstream o;
  o << segments.size() << (segments.size() == 1 ? " segment: " : " segments: ");
  for (std::size_t i = 0; i < segments.size(); ++i)
    o << (i ? ", " : "") << "[" << segments[i].begin << ", " << segments[i].end << ") "
      << (segments[i].checkpointed ? "checkpointed" : "plain");
  if (budget_bytes > 0)
    o << "; estimated peak " << human(estimated_peak_bytes) << " of " << human(budget_bytes);
  return o.str();
}

CheckpointPlan even_checkpoints(const Sequential& module, std::int64_t segments) {
  const auto n = static_cast<std::int64_t>(module.size());
  BP_CHECK(segments >= 1 && segments <= n, ValueError, "checkpoint_sequential: segments must be in [1, ", n,
           "] for a Sequential of ", n, " modules, got ", segments);
  const std::int64_t size = n / segments;
  CheckpointPlan plan;
  for (std::int64_t s = 0; s + 1 < segments; ++s)
    plan.segments.push_back(
        {static_cast<std::size_t>(s * size), static_cast<std::size_t>((s + 1) * size), true});
  plan.segments.push_back(
      {static_cast<std::size_t>((segments - 1) * size), static_cast<std::size_t>(n), false});
  return plan;
}

CheckpointPlan plan_checkpoints(Sequential& module, const Tensor& sample_input, std::size_t budget_bytes) {
  BP_CHECK(module.size() > 0, ValueError, "plan_checkpoints: the Sequential is empty");
  BP_CHECK(budget_bytes > 0, ValueError, "plan_checkpoints: the budget must be positive, got 0 bytes");
  CheckpointPlan plan;
  plan.budget_bytes = budget_bytes;
  {
    // Measuring runs every module once: put its buffers (running statistics) back afterwards.
    std::vector<std::pair<Tensor, Tensor>> buffers;
    for (const auto& [name, b] : module.named_buffers()) buffers.emplace_back(b, b.clone());
    const std::int64_t rows = sample_input.dim() > 0 ? sample_input.shape()[0] : 1;
    Tensor h = sample_input.detach();
    for (std::size_t i = 0; i < module.size(); ++i) {
      Tensor next;
      plan.layers.push_back(measure(*module[i], h, rows, next));
      h = next;
    }
    NoGradGuard no_grad;
    for (auto& [live, saved] : buffers) live.copy_(saved);
  }
  const Model model{plan.layers, plan.layers.back().output_bytes};
  plan.segments = model.best_within(budget_bytes);
  if (plan.segments.empty()) {
    // The least budget any split fits: bisect between nothing and the plain run's needs (which always fit).
    std::size_t lo = 0, hi = model.peak({{0, module.size(), false}});
    while (hi - lo > 1) {
      const std::size_t mid = lo + (hi - lo) / 2;
      (model.best_within(mid).empty() ? lo : hi) = mid;
    }
    std::ostringstream o;
    o << "plan_checkpoints: a budget of " << budget_bytes << " bytes (" << human(budget_bytes)
      << ") for activations cannot be met: at batch "
      << (sample_input.dim() > 0 ? sample_input.shape()[0] : 1) << " this network needs at least " << hi
      << " bytes (" << human(hi) << ") with the best split into checkpointed segments";
    throw ValueError(o.str());
  }
  plan.estimated_peak_bytes = model.peak(plan.segments);
  return plan;
}

Tensor checkpoint_sequential(Sequential& module, const CheckpointPlan& plan, const Tensor& input) {
  check_plan(module, plan);
  if (!GradMode::is_enabled()) return module.forward(input);
  Tensor h = input;
  for (const CheckpointSegment& seg : plan.segments) {
    std::vector<ModulePtr> modules;
    for (std::size_t k = seg.begin; k < seg.end; ++k) {
      modules.push_back(module[k]);
      if (seg.checkpointed) check_recomputable(*modules.back(), k);
    }
    auto run = [modules](const Tensors& in) {
      Tensor t = in[0];
      for (const ModulePtr& m : modules) t = m->forward(t);
      return t;
    };
    h = seg.checkpointed ? checkpoint(run, {h}) : run({h});
  }
  return h;
}

Tensor checkpoint_sequential(Sequential& module, std::int64_t segments, const Tensor& input) {
  return checkpoint_sequential(module, even_checkpoints(module, segments), input);
}

Tensor checkpoint_sequential(Sequential& module, const Tensor& input) {
  if (module.size() == 0) return module.forward(input);
  const auto segments =
      std::max<std::int64_t>(1, std::llround(std::sqrt(static_cast<double>(module.size()))));
  return checkpoint_sequential(module, segments, input);
}

}  // namespace backprop::nn
