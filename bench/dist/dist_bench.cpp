// bench_dist — data-parallel training throughput of the 784-256-128-10 MLP and the share of the step spent
// communicating, for any number of ranks and threads. Prints one JSON object (rank 0).
//
//   OMP_NUM_THREADS=2 mpirun --allow-run-as-root -np 1 bench_dist --threads 2       # 1 rank x 2 threads
//   OMP_NUM_THREADS=1 mpirun --allow-run-as-root -np 2 bench_dist --threads 1       # 2 ranks x 1 thread
//   ... --batch 128 --steps 200 --bucket-kib 256 --no-overlap
//
// The step is the one dist::fit() runs: this rank's shard of a global batch of B rows (fixed random data: the
// time does not depend on the values), forward, cross-entropy scaled by shard/B, DataParallel::backward
// (bucketed all-reduce overlapping backward), SGD step. Fields:
//   samples_per_s       global rows per second over the timed steps
//   step_ms             mean wall time of one step
//   comm_wait_fraction  time backward() waited for all-reduces after the local backward, over the step time:
//                       the communication that overlap did not hide, plus waiting for a slower rank
//   comm_fraction       allreduce_ms / step_ms: the share of the step that the all-reduce alone costs
//   allreduce_ms        one blocking MPI_Allreduce of the whole gradient (bytes below), median of 50,
//   measured
//                       alone: the communication cost with no overlap
//   grad_bytes          gradient bytes per rank per step
#include <mpi.h>

#include <algorithm>
#include <backprop/backprop.hpp>
#include <backprop/dist.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace bp = backprop;
namespace dist = backprop::dist;

namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}
}  // namespace

int main(int argc, char** argv) {
  dist::Session mpi(argc, argv);
  int threads = 1;
  std::int64_t batch = 128, steps = 200;
  bool overlap = true;
  std::int64_t bucket_kib = 1024;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "bench_dist: %s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--threads")
      threads = std::atoi(next());
    else if (a == "--batch")
      batch = std::atoll(next());
    else if (a == "--steps")
      steps = std::atoll(next());
    else if (a == "--no-overlap")
      overlap = false;
    else if (a == "--bucket-kib")
      bucket_kib = std::atoll(next());
    else {
      std::fprintf(
          stderr,
          "bench_dist: unknown argument %s (--threads N --batch B --steps S --bucket-kib K --no-overlap)\n",
          a.c_str());
      return 2;
    }
  }
  bp::set_num_threads(threads);
  const int k = dist::size();
  bp::Generator gen(1);
  bp::nn::Sequential net{bp::nn::Linear(784, 256, gen), bp::nn::ReLU(), bp::nn::Linear(256, 128, gen),
                         bp::nn::ReLU(), bp::nn::Linear(128, 10, gen)};
  bp::optim::SGD opt(net.parameters(), {.lr = 0.1, .momentum = 0.9});
  dist::DataParallel dp(net, {.bucket_bytes = bucket_kib * 1024, .overlap = overlap});
  const bp::loss::CrossEntropy ce;

  bp::Generator data_gen(2);
  const bp::Tensor x = bp::rand({batch, 784}, data_gen);
  std::vector<double> labels(static_cast<std::size_t>(batch));
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<double>(i % 10);
  const bp::data::Batch global{.features = x, .targets = bp::from_vector(labels)};
  const bp::data::Batch mine = dist::shard(global);
  const double scale = dist::shard_scale(mine.features.size(0), batch, bp::train::GradReduction::mean);

  auto step = [&] {
    opt.zero_grad();
    const bp::Tensor cost = ce(net(mine.features), mine.targets);
    dp.backward(bp::mul(cost, scale));
    opt.step();
  };
  for (int i = 0; i < 10; ++i) step();  // warm-up: caches, allocator, MPI connections
  dp.reset_stats();
  dist::barrier();
  const auto start = Clock::now();
  for (std::int64_t i = 0; i < steps; ++i) step();
  dist::barrier();
  const double seconds = since(start);
  const dist::CommStats stats = dp.stats();
  const double wait = dist::all_reduce_max(stats.wait_seconds);

  // The whole gradient in one blocking all-reduce, alone.
  std::vector<float> grad(static_cast<std::size_t>(net.num_parameters()), 1.0f);
  std::vector<double> times;
  for (int i = 0; i < 55; ++i) {
    dist::barrier();
    const auto t = Clock::now();
    MPI_Allreduce(MPI_IN_PLACE, grad.data(), static_cast<int>(grad.size()), MPI_FLOAT, MPI_SUM,
                  MPI_COMM_WORLD);
    if (i >= 5) times.push_back(since(t));
  }
  std::sort(times.begin(), times.end());
  const double allreduce = dist::all_reduce_max(times[times.size() / 2]);

  if (dist::is_root()) {
    std::printf(
        "{\"ranks\": %d, \"threads\": %d, \"batch\": %lld, \"steps\": %lld, \"overlap\": %s, \"buckets\": "
        "%lld, "
        "\"samples_per_s\": %.1f, \"step_ms\": %.3f, \"comm_wait_fraction\": %.4f, \"allreduce_ms\": %.4f, "
        "\"comm_fraction\": %.4f, \"grad_bytes\": %lld}\n",
        k, threads, static_cast<long long>(batch), static_cast<long long>(steps), overlap ? "true" : "false",
        static_cast<long long>(dp.num_buckets()), static_cast<double>(batch * steps) / seconds,
        1e3 * seconds / static_cast<double>(steps), wait / seconds, 1e3 * allreduce,
        allreduce / (seconds / static_cast<double>(steps)), static_cast<long long>(net.num_parameters() * 4));
  }
  return 0;
}
