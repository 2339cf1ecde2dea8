// bench_checkpoint — the memory/time curve of checkpoint_sequential on a deep ReLU MLP: for the plain run, for
// segment counts (PyTorch's split) and for byte budgets (plan_checkpoints), the peak of activation memory and
// the median step time (forward + backward), each as a ratio to the plain run. Prints a Markdown table.
//
//   bench_checkpoint --depth 32 --width 512 --batch 256 --steps 5 --threads 1
//
// Peak: memory_stats() tensor bytes during the step above those alive before it (parameters, their gradients,
// the input and the output gradient). Budgets are fractions of the plain peak, down to the first that no split
// can meet (plan_checkpoints' error, printed, names the least). Steps are timed in interleaved rounds.
#include <algorithm>
#include <backprop/backprop.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include "bench_util.hpp"

namespace bp = backprop;
namespace nn = backprop::nn;

namespace {

struct Args {
  int depth = 32;  // Linear + ReLU pairs
  std::int64_t width = 512;
  std::int64_t batch = 256;
  int steps = 5;
  int threads = 1;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    if (i + 1 >= argc) throw bp::ValueError("bench_checkpoint: " + k + " needs a value");
    const std::string v = argv[++i];
    if (k == "--depth")
      a.depth = std::stoi(v);
    else if (k == "--width")
      a.width = std::stoll(v);
    else if (k == "--batch")
      a.batch = std::stoll(v);
    else if (k == "--steps")
      a.steps = std::stoi(v);
    else if (k == "--threads")
      a.threads = std::stoi(v);
    else
      throw bp::ValueError("bench_checkpoint: unknown option " + k);
  }
  return a;
}

/// One way to run the network: its name, the modules it runs twice and its forward.
struct Config {
  std::string name;
  std::size_t recomputed = 0;
  std::function<bp::Tensor()> forward;
  double peak_mib = 0;
  std::vector<double> times;
};

/// The peak of one step (after a warm-up step) above what was alive before it.
double peak_mib(const Config& c, const bp::Tensor& dy) {
  bp::backward({c.forward()}, {dy});
  const std::size_t before = bp::memory_stats().live_bytes;
  bp::reset_peak_memory();
  bp::backward({c.forward()}, {dy});
  return static_cast<double>(bp::memory_stats().peak_bytes - before) / (1 << 20);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Args a = parse(argc, argv);
    bp::set_num_threads(a.threads);
    bp::Generator gen(1);
    nn::Sequential net;
    for (int i = 0; i < a.depth; ++i) {
      net.push_back(nn::Linear(a.width, a.width, gen));
      net.push_back(nn::ReLU());
    }
    const bp::Tensor x = bp::randn({a.batch, a.width}, gen), dy = bp::randn({a.batch, a.width}, gen);
    std::printf(
        "deep MLP: %d x (Linear(%lld, %lld) + ReLU), batch %lld, f32, %d thread(s), median of %d steps\n\n",
        a.depth, static_cast<long long>(a.width), static_cast<long long>(a.width),
        static_cast<long long>(a.batch), a.threads, a.steps);
    std::vector<Config> configs;
    configs.push_back({"plain", 0, [&] { return net(x); }});
    const auto n = static_cast<std::int64_t>(net.size());
    const auto root = static_cast<std::int64_t>(std::llround(std::sqrt(static_cast<double>(n))));
    std::vector<std::int64_t> counts = {2, 4, root, 16, n / 2, n};
    std::sort(counts.begin(), counts.end());
    counts.erase(std::unique(counts.begin(), counts.end()), counts.end());
    for (std::int64_t segments : counts) {
      if (segments < 2 || segments > n) continue;
      const nn::CheckpointPlan plan = nn::even_checkpoints(net, segments);
      configs.push_back(
          {std::to_string(segments) + " segments" + (segments == root ? " (sqrt n, the default)" : ""),
           plan.recomputed_modules(), [&net, &x, plan] { return nn::checkpoint_sequential(net, plan, x); }});
    }
    configs[0].peak_mib = peak_mib(configs[0], dy);
    const auto plain_bytes = static_cast<std::size_t>(configs[0].peak_mib * (1 << 20));
    std::string refused;
    for (double fraction : {0.9, 0.75, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1}) {
      const auto budget = static_cast<std::size_t>(fraction * static_cast<double>(plain_bytes));
      nn::CheckpointPlan plan;
      try {
        plan = nn::plan_checkpoints(net, x, budget);
      } catch (const bp::ValueError& e) {
        char head[32];
        std::snprintf(head, sizeof head, "%.2f of plain: ", fraction);
        refused = head + std::string(e.what());
        break;
      }
      char name[96];
      std::snprintf(name, sizeof name, "budget %.2f MiB (%.2f of plain): %zu segments",
                    static_cast<double>(budget) / (1 << 20), fraction, plan.segments.size());
      configs.push_back({name, plan.recomputed_modules(),
                         [&net, &x, plan] { return nn::checkpoint_sequential(net, plan, x); }});
    }
    for (Config& c : configs) c.peak_mib = peak_mib(c, dy);
    // Timed in interleaved rounds, so that a change in the machine's load touches every configuration alike.
    for (int s = 0; s < a.steps; ++s) {
      for (Config& c : configs) {
        const auto t0 = std::chrono::steady_clock::now();
        bp::backward({c.forward()}, {dy});
        c.times.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
    }
    const double plain_ms = bench::median(configs[0].times) * 1e3;
    std::printf("| split | modules run twice | peak MiB | step ms | peak / plain | time / plain |\n");
    std::printf("|---|---|---|---|---|---|\n");
    for (const Config& c : configs) {
      const double ms = bench::median(c.times) * 1e3;
      std::printf("| %s | %zu | %.2f | %.1f | %.2f | %.2f |\n", c.name.c_str(), c.recomputed, c.peak_mib, ms,
                  c.peak_mib / configs[0].peak_mib, ms / plain_ms);
    }
    if (!refused.empty()) std::printf("\n%s\n", refused.c_str());
    return 0;
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 2;
  }
}
