// DataParallel: sums parameter gradients over ranks in buckets whose all-reduce starts during backward.
//
// Before backward we count, by walking the recorded graph, how many gradient contributions each parameter
// will receive (a weight used twice, or penalised by l2, receives two). The engine reports every contribution
// (set_grad_accumulated_hook); when a parameter has received all of them its gradient is final, and when
// every parameter of a bucket is final the bucket is copied into a flat buffer and MPI_Iallreduce starts on
// it while backward goes on with earlier layers. Every rank records the same graph, so buckets start in the
// same order on every rank, as MPI requires of collectives on one communicator.
#include <backprop/autograd.hpp>
#include <chrono>
#include <cstring>
#include <limits>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "dist/mpi_util.hpp"

namespace backprop::dist {

namespace {
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}
}  // namespace

struct DataParallel::State {
  struct Bucket {
    std::vector<std::size_t> params;  // indices into State::params
    DType dtype = DType::f32;
    std::int64_t numel = 0;
    std::vector<double> storage;  // flat buffer (f32 elements use the front half as floats)
    MPI_Request request = MPI_REQUEST_NULL;
    std::size_t pending = 0;  // parameters whose gradient is not final yet
    bool launched = false;
  };
  Tensors params;
  std::vector<std::size_t> bucket_of;  // parameter -> bucket
  std::vector<std::int64_t> expected, received;
  std::unordered_map<const TensorImpl*, std::size_t> index_of;
  std::vector<Bucket> buckets;
  bool late = false;  // a contribution arrived after its bucket had started
  bool overlap = true;

  void* buffer(Bucket& b) { return b.storage.data(); }

  void launch(Bucket& b) {
    std::size_t elem = b.dtype == DType::f32 ? sizeof(float) : sizeof(double);
    auto* out = static_cast<unsigned char*>(buffer(b));
    for (std::size_t i : b.params) {
      const Tensor g = params[i].grad();
      const std::size_t bytes = static_cast<std::size_t>(params[i].numel()) * elem;
      if (g.defined()) {
        std::memcpy(out, g.raw_data(), bytes);
      } else {
        std::memset(out, 0, bytes);
      }
      out += bytes;
    }
    detail::check(
        MPI_Iallreduce(MPI_IN_PLACE, buffer(b), static_cast<int>(b.numel),
                       detail::mpi_type(b.dtype, "DataParallel"), MPI_SUM, MPI_COMM_WORLD, &b.request),
        "MPI_Iallreduce");
    b.launched = true;
  }

  // Nudges outstanding all-reduces along (MPI progresses non-blocking collectives inside MPI calls).
  void progress() {
    for (Bucket& b : buckets) {
      if (b.request == MPI_REQUEST_NULL) continue;
      int done = 0;
      detail::check(MPI_Test(&b.request, &done, MPI_STATUS_IGNORE), "MPI_Test");
    }
  }

  // Waits for every started all-reduce. Polls and yields the core between polls rather than spinning inside
  // MPI_Wait: when ranks share cores (2 ranks on a 2-core machine) a spinning rank steals the time the rank
  // it waits for needs.
  void wait_all() {
    for (Bucket& b : buckets) {
      int done = 0;
      while (true) {
        detail::check(MPI_Test(&b.request, &done, MPI_STATUS_IGNORE), "MPI_Test");
        if (done) break;
        std::this_thread::yield();
      }
    }
  }

  void on_gradient(const TensorImpl& leaf) {
    auto it = index_of.find(&leaf);
    if (it == index_of.end()) return;
    const std::size_t i = it->second;
    Bucket& b = buckets[bucket_of[i]];
    if (b.launched) {
      late = true;
      return;
    }
    if (++received[i] != expected[i]) return;
    if (--b.pending == 0) launch(b);
    progress();
  }

  // How many gradient contributions each parameter will receive from backward through `root`.
  void count_contributions(const Tensor& objective) {
    std::fill(expected.begin(), expected.end(), 0);
    std::fill(received.begin(), received.end(), 0);
    if (!objective.grad_fn()) {
      if (auto it = index_of.find(objective.impl()); it != index_of.end()) expected[it->second] = 1;
      return;
    }
    std::vector<const Node*> stack{objective.grad_fn().get()};
    std::unordered_set<const Node*> seen{stack.back()};
    while (!stack.empty()) {
      const Node* n = stack.back();
      stack.pop_back();
      for (const Node::Edge& e : n->next()) {
        if (e.node) {
          if (seen.insert(e.node.get()).second) stack.push_back(e.node.get());
        } else if (e.is_leaf) {
          if (auto leaf = e.leaf.lock())
            if (auto it = index_of.find(leaf.get()); it != index_of.end()) ++expected[it->second];
        }
      }
    }
  }
};

DataParallel::DataParallel(nn::Module& model, DataParallelOptions options)
    : model_(model), state_(std::make_unique<State>()) {
  detail::require_init("DataParallel");
  BP_CHECK(options.bucket_bytes >= 1, ValueError, "DataParallel: bucket_bytes must be >= 1, got ",
           options.bucket_bytes);
  State& s = *state_;
  s.overlap = options.overlap;
  s.params = model.parameters();
  BP_CHECK(!s.params.empty(), ValueError, "DataParallel: the model has no parameters to synchronise");
  if (options.broadcast) broadcast_state(model);
  s.bucket_of.assign(s.params.size(), 0);
  s.expected.assign(s.params.size(), 0);
  s.received.assign(s.params.size(), 0);
  // Reverse registration order: backward reaches the last layer first.
  std::int64_t bytes = 0;
  for (std::size_t k = s.params.size(); k-- > 0;) {
    const Tensor& p = s.params[k];
    detail::mpi_type(p.dtype(), "DataParallel");
    s.index_of[p.impl()] = k;
    const std::int64_t elem = p.dtype() == DType::f32 ? 4 : 8;
    const std::int64_t add = p.numel() * elem;
    if (s.buckets.empty() || s.buckets.back().dtype != p.dtype() || bytes + add > options.bucket_bytes) {
      s.buckets.push_back({.dtype = p.dtype()});
      bytes = 0;
    }
    State::Bucket& b = s.buckets.back();
    b.params.push_back(k);
    b.numel += p.numel();
    bytes += add;
    s.bucket_of[k] = s.buckets.size() - 1;
  }
  for (State::Bucket& b : s.buckets) {
    const std::int64_t elem = b.dtype == DType::f32 ? 4 : 8;
    b.storage.resize(static_cast<std::size_t>((b.numel * elem + 7) / 8));
    BP_CHECK(b.numel <= std::numeric_limits<int>::max(), ValueError, "DataParallel: a parameter of ", b.numel,
             " elements is more than one MPI call can reduce (", std::numeric_limits<int>::max(), ")");
  }
}

DataParallel::~DataParallel() = default;

std::int64_t DataParallel::num_buckets() const {
  return static_cast<std::int64_t>(state_->buckets.size());
}

void DataParallel::backward(const Tensor& objective) {
  BP_CHECK(objective.defined() && objective.numel() == 1, ShapeError,
           "DataParallel::backward: expected a scalar objective, got ",
           objective.defined() ? objective.shape() : Shape{});
  const auto start = Clock::now();
  State& s = *state_;
  s.late = false;
  for (State::Bucket& b : s.buckets) {
    b.launched = false;
    b.pending = b.params.size();
    b.request = MPI_REQUEST_NULL;
  }
  if (s.overlap) {
    s.count_contributions(objective);
    // Parameters the graph does not reach are final already.
    for (std::size_t i = 0; i < s.params.size(); ++i)
      if (s.expected[i] == 0) --s.buckets[s.bucket_of[i]].pending;
    for (State::Bucket& b : s.buckets)
      if (b.pending == 0) s.launch(b);
  }
  {
    GradAccumulatedHook previous = set_grad_accumulated_hook(
        s.overlap ? GradAccumulatedHook([&s](const TensorImpl& leaf) { s.on_gradient(leaf); })
                  : GradAccumulatedHook());
    struct Restore {
      GradAccumulatedHook& previous;
      ~Restore() { set_grad_accumulated_hook(std::move(previous)); }
    } restore{previous};
    objective.backward();
  }
  const auto local_end = Clock::now();
  for (const State::Bucket& b : s.buckets) stats_.overlapped += b.launched;
  // Buckets not started yet (no overlap, or contributions the graph walk could not see: checkpoint()), in
  // bucket order, which is the same on every rank.
  for (State::Bucket& b : s.buckets)
    if (!b.launched) s.launch(b);
  s.wait_all();
  if (s.late) {
    // A gradient grew after its bucket had been sent: send every bucket again, now that all are final.
    for (State::Bucket& b : s.buckets) s.launch(b);
    s.wait_all();
  }
  for (State::Bucket& b : s.buckets) {
    const std::size_t elem = b.dtype == DType::f32 ? sizeof(float) : sizeof(double);
    const auto* in = reinterpret_cast<const unsigned char*>(b.storage.data());
    for (std::size_t i : b.params) {
      const std::size_t bytes = static_cast<std::size_t>(s.params[i].numel()) * elem;
      Tensor g = s.params[i].grad();
      if (g.defined()) {
        ++g.storage()->version;
        std::memcpy(g.raw_data(), in, bytes);
      }
      in += bytes;
    }
    stats_.bytes += b.numel * static_cast<std::int64_t>(elem);
  }
  stats_.wait_seconds += seconds_since(local_end);
  stats_.backward_seconds += seconds_since(start);
  stats_.buckets = static_cast<std::int64_t>(s.buckets.size());
  ++stats_.calls;
}

}  // namespace backprop::dist
