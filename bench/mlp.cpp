// bench_mlp — times backprop training and inference of an MLP on Fashion-MNIST and prints one JSON object.
//
// The loop is written out (forward, cross-entropy, backward, SGD step) so the figure is the pure step time,
// with the same configuration as bench/torch_mlp.py and bench/libtorch_mlp.cpp:
//   784 - hidden... - 10, ReLU between layers, softmax cross-entropy (mean), SGD lr 0.1 momentum 0.9,
//   shuffled mini-batches (the last one may be short), He-uniform weights, zero biases.
//
//   bench_mlp --batch 128 --epochs 3 --threads 1 --hidden 256,128
//   bench_mlp --mode infer --hidden 256,128                 # single-example latency, batch-1024 throughput
//   bench_mlp --mode checkpoint --depth 32 --width 512 --batch 256 --every 4
//   bench_mlp --mode steps --steps 20 --batch 32 --hidden 64    # fixed random data, for callgrind
//   bench_mlp --isa avx2 --sgemm openblas --split-macs 4194304  # kernel configuration (kernels.hpp)
//   bench_mlp --update-split 131072 --spin-us 0                 # ... the pool's mechanisms (scripts/ablate-pool)
//
// Output fields: epoch_s (median over epochs after the first), epoch_times, samples_per_s, test_accuracy,
// peak_rss_mib, os_allocs_per_step (system allocations of tensor storage per step, after the first epoch),
// pieces_by_helpers / pieces_by_caller (split work done by the thread pool's helpers and by the caller),
// late_jobs / distrusts (split jobs whose caller waited too long for a helper; pauses of small splits).
#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <backprop/backprop.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "fashion_bytes.hpp"
#include "kernels/row_pool.hpp"  // helper participation (pieces of split work done by the pool's helpers)

namespace bp = backprop;

namespace {

using bench::ByteImages;
using bench::gather_batch;
using bench::load_bytes;

using Clock = std::chrono::steady_clock;

struct Args {
  std::string mode = "train";  // train | infer | steps | checkpoint
  std::string data = "/usr/share/datasets/fashion-mnist";
  std::int64_t batch = 128;
  int epochs = 3;
  int threads = 1;
  std::vector<std::int64_t> hidden = {256, 128};
  std::int64_t limit = 0;  // training examples used (0: all 60000)
  std::uint64_t seed = 1;
  // checkpoint mode
  int depth = 32;
  std::int64_t width = 512;
  int every = 4;
  int steps = 5;
  bp::KernelConfig kernels = bp::kernel_config();
};

bp::Isa parse_isa(const std::string& s) {
  for (bp::Isa isa : {bp::Isa::baseline, bp::Isa::avx2, bp::Isa::avx512})
    if (s == bp::isa_name(isa)) return isa;
  throw bp::ValueError("bench_mlp: --isa must be baseline, avx2 or avx512, got " + s);
}

bp::Sgemm parse_sgemm(const std::string& s) {
  if (s == "own") return bp::Sgemm::own;
  if (s == "openblas") return bp::Sgemm::openblas;
  throw bp::ValueError("bench_mlp: --sgemm must be own or openblas, got " + s);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) throw bp::ValueError("bench_mlp: " + k + " needs a value");
      return argv[++i];
    };
    if (k == "--mode")
      a.mode = next();
    else if (k == "--data")
      a.data = next();
    else if (k == "--batch")
      a.batch = std::stoll(next());
    else if (k == "--epochs")
      a.epochs = std::stoi(next());
    else if (k == "--threads")
      a.threads = std::stoi(next());
    else if (k == "--hidden")
      a.hidden = bench::parse_list(next());
    else if (k == "--limit")
      a.limit = std::stoll(next());
    else if (k == "--seed")
      a.seed = std::stoull(next());
    else if (k == "--depth")
      a.depth = std::stoi(next());
    else if (k == "--width")
      a.width = std::stoll(next());
    else if (k == "--every")
      a.every = std::stoi(next());
    else if (k == "--steps")
      a.steps = std::stoi(next());
    else if (k == "--isa")
      a.kernels.isa = parse_isa(next());
    else if (k == "--sgemm")
      a.kernels.sgemm = parse_sgemm(next());
    else if (k == "--split-macs")
      a.kernels.gemm_split_macs = std::stoll(next());
    else if (k == "--update-split")
      a.kernels.update_split_elems = std::stoll(next());
    else if (k == "--spin-us")
      a.kernels.helper_spin_us = std::stoll(next());
    else
      throw bp::ValueError("bench_mlp: unknown option " + k);
  }
  return a;
}

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

std::string json_list(const std::vector<double>& v) {
  std::ostringstream o;
  o << "[";
  for (std::size_t i = 0; i < v.size(); ++i) o << (i ? ", " : "") << v[i];
  return o.str() + "]";
}

bp::nn::Sequential make_mlp(std::int64_t in, const std::vector<std::int64_t>& hidden, std::int64_t out,
                            bp::Generator& gen) {
  bp::nn::Sequential net;
  std::int64_t prev = in;
  for (std::int64_t h : hidden) {
    net.push_back(bp::nn::Linear(prev, h, gen));
    net.push_back(bp::nn::ReLU());
    prev = h;
  }
  net.push_back(bp::nn::Linear(prev, out, gen));
  return net;
}

// Test accuracy, 1000 rows at a time (so evaluation does not raise the peak above training's).
double accuracy(bp::nn::Sequential& net, const ByteImages& test) {
  bp::NoGradGuard guard;
  net.eval();
  std::int64_t right = 0;
  for (std::int64_t b = 0; b < test.n; b += 1000) {
    const std::int64_t rows = std::min<std::int64_t>(1000, test.n - b);
    bp::Tensor x({rows, 784}, bp::f32), y({rows}, bp::f32);
    gather_batch(test, {}, b, x, y);
    const bp::Tensor logits = net(x);
    const float* p = logits.data<float>();
    for (std::int64_t i = 0; i < rows; ++i) {
      const float* row = p + i * 10;
      right += (std::max_element(row, row + 10) - row) == static_cast<std::int64_t>(y.data<float>()[i]);
    }
  }
  net.train();
  return static_cast<double>(right) / static_cast<double>(test.n);
}

int run_train(const Args& a) {
  const ByteImages train = load_bytes(a.data, true, a.limit);
  const ByteImages test = load_bytes(a.data, false, 0);
  bp::Generator gen(a.seed);
  auto net = make_mlp(784, a.hidden, 10, gen);
  bp::optim::SGD opt(net.parameters(), {.lr = 0.1, .momentum = 0.9});
  bp::loss::CrossEntropy ce;

  const std::int64_t n = train.n;
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  std::vector<double> epoch_times;
  std::uint64_t steps_after_first = 0, os_allocs_after_first = 0;
  double last_loss = 0.0;
  for (int epoch = 0; epoch < a.epochs; ++epoch) {
    for (std::int64_t i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = i;
    for (std::int64_t i = n - 1; i > 0; --i)  // Fisher-Yates from the explicit generator
      std::swap(order[static_cast<std::size_t>(i)], order[gen.below(static_cast<std::uint64_t>(i + 1))]);
    const auto t0 = Clock::now();
    for (std::int64_t b = 0; b < n; b += a.batch) {
      const std::int64_t rows = std::min(a.batch, n - b);
      bp::Tensor x({rows, 784}, bp::f32), y({rows}, bp::f32);
      gather_batch(train, order, b, x, y);
      const std::uint64_t os_before = bp::memory_stats().os_allocations;
      opt.zero_grad();
      bp::Tensor loss = ce(net(x), y);
      loss.backward();
      opt.step();
      if (epoch > 0) {
        ++steps_after_first;
        os_allocs_after_first += bp::memory_stats().os_allocations - os_before;
      }
      if (b + a.batch >= n) last_loss = loss.item();
    }
    epoch_times.push_back(seconds_since(t0));
  }
  const auto pool = bp::kernels::chunk_counts();
  std::vector<double> timed(epoch_times.begin() + (epoch_times.size() > 1 ? 1 : 0), epoch_times.end());
  const double epoch_s = bench::median(timed);
  std::cout << "{\"impl\": \"backprop\", \"mode\": \"train\", \"batch\": " << a.batch
            << ", \"threads\": " << a.threads << ", \"isa\": \"" << bp::isa_name(bp::kernel_config().isa)
            << "\", \"sgemm\": \"" << (bp::kernel_config().sgemm == bp::Sgemm::own ? "own" : "openblas")
            << "\", \"hidden\": \"" <<
      [&] {
        std::string s;
        for (auto h : a.hidden) s += (s.empty() ? "" : ",") + std::to_string(h);
        return s;
      }()
            << "\", \"examples\": " << n << ", \"epoch_s\": " << epoch_s
            << ", \"epoch_times\": " << json_list(epoch_times)
            << ", \"samples_per_s\": " << static_cast<double>(n) / epoch_s
            << ", \"test_accuracy\": " << accuracy(net, test) << ", \"final_loss\": " << last_loss
            << ", \"peak_rss_mib\": " << peak_rss_mib() << ", \"os_allocs_per_step\": "
            << (steps_after_first ? static_cast<double>(os_allocs_after_first) / steps_after_first : -1.0)
            << ", \"pieces_by_helpers\": " << pool.by_helpers << ", \"pieces_by_caller\": " << pool.by_callers
            << ", \"late_jobs\": " << pool.late_jobs << ", \"distrusts\": " << pool.distrusts
            << ", \"preempted_distrusts\": " << pool.preempted_distrusts << "}\n";
  return 0;
}

// `steps` training steps on one fixed random batch, no data loading: what callgrind counts per step
// (scripts/bench runs it with two step counts and divides the difference).
int run_steps(const Args& a) {
  bp::Generator gen(a.seed);
  auto net = make_mlp(784, a.hidden, 10, gen);
  bp::optim::SGD opt(net.parameters(), {.lr = 0.01, .momentum = 0.9});
  bp::loss::CrossEntropy ce;
  const bp::Tensor x = bp::rand({a.batch, 784}, gen);
  bp::Tensor y({a.batch}, bp::f32);
  for (std::int64_t i = 0; i < a.batch; ++i) y.data<float>()[i] = static_cast<float>(gen.below(10));
  double loss_value = 0.0;
  for (int s = 0; s < a.steps; ++s) {
    opt.zero_grad();
    bp::Tensor loss = ce(net(x), y);
    loss.backward();
    opt.step();
    loss_value = loss.item();
  }
  std::cout << "{\"impl\": \"backprop\", \"mode\": \"steps\", \"steps\": " << a.steps
            << ", \"final_loss\": " << loss_value << "}\n";
  return 0;
}

int run_infer(const Args& a) {
  bp::Generator gen(a.seed);
  auto net = make_mlp(784, a.hidden, 10, gen);
  net.eval();
  bp::NoGradGuard guard;
  const bp::Tensor one = bp::rand({1, 784}, gen);
  const bp::Tensor big = bp::rand({1024, 784}, gen);
  // single example: median over repeated calls (after warm-up)
  std::vector<double> lat;
  for (int i = 0; i < 200; ++i) (void)net(one);
  for (int rep = 0; rep < 21; ++rep) {
    const auto t0 = Clock::now();
    for (int i = 0; i < 200; ++i) (void)net(one);
    lat.push_back(seconds_since(t0) / 200.0);
  }
  std::vector<double> thr;
  for (int i = 0; i < 3; ++i) (void)net(big);
  for (int rep = 0; rep < 11; ++rep) {
    const auto t0 = Clock::now();
    for (int i = 0; i < 5; ++i) (void)net(big);
    thr.push_back(5.0 * 1024.0 / seconds_since(t0));
  }
  std::cout << "{\"impl\": \"backprop\", \"mode\": \"infer\", \"threads\": " << a.threads
            << ", \"latency_us\": " << bench::median(lat) * 1e6
            << ", \"batch1024_samples_per_s\": " << bench::median(thr)
            << ", \"peak_rss_mib\": " << peak_rss_mib() << "}\n";
  return 0;
}

// A deep, wide ReLU MLP on random data, forward + backward with or without checkpoint() every `every` layers:
// activation memory (peak tensor bytes during the step above those alive before it; *_saved_mib: the same at
// the end of the forward, i.e. what the graph keeps) and step time. Gradients are left to accumulate (no
// zero_grad) so that they exist before the step and are not counted as activations; the peak still includes
// the backward's transient gradients (dy, dx and one 512 x 512 weight gradient before it is added to .grad).
int run_checkpoint(const Args& a) {
  bp::Generator gen(a.seed);
  std::vector<std::shared_ptr<bp::nn::Linear>> layers;
  for (int i = 0; i < a.depth; ++i) layers.push_back(std::make_shared<bp::nn::Linear>(a.width, a.width, gen));
  const bp::Tensor x = bp::randn({a.batch, a.width}, gen);
  auto segment = [&](int first, int count) {
    return [&layers, first, count](const bp::Tensors& in) {
      bp::Tensor h = in[0];
      for (int i = first; i < first + count; ++i)
        h = bp::relu(layers[static_cast<std::size_t>(i)]->forward(h));
      return h;
    };
  };
  std::size_t forward_bytes = 0;  // live tensor bytes at the end of the forward (what the graph saved)
  auto step = [&](bool ckpt) {
    bp::Tensor h = x;
    for (int i = 0; i < a.depth; i += a.every) {
      const int count = std::min(a.every, a.depth - i);
      h = ckpt ? bp::checkpoint(segment(i, count), {h}) : segment(i, count)({h});
    }
    bp::Tensor loss = (h * h).mean();
    // Drop the loop's own handle on the last activation: a training loop does not hold it through the
    // backward, and in the checkpointed net nothing else needs it once the loss's backward has run (in the
    // plain net the last ReLU keeps it anyway).
    h = bp::Tensor();
    forward_bytes = bp::memory_stats().live_bytes;
    loss.backward();
  };
  std::ostringstream o;
  o << "{\"impl\": \"backprop\", \"mode\": \"checkpoint\", \"depth\": " << a.depth
    << ", \"width\": " << a.width << ", \"batch\": " << a.batch << ", \"every\": " << a.every;
  step(false);  // creates every gradient
  for (bool ckpt : {false, true}) {
    step(ckpt);  // warm-up (and fill the allocator cache)
    const std::size_t before_bytes = bp::memory_stats().live_bytes;
    bp::reset_peak_memory();
    std::vector<double> times;
    for (int s = 0; s < a.steps; ++s) {
      const auto t0 = Clock::now();
      step(ckpt);
      times.push_back(seconds_since(t0));
    }
    const double peak_mib = static_cast<double>(bp::memory_stats().peak_bytes - before_bytes) / (1 << 20);
    const double saved_mib = static_cast<double>(forward_bytes - before_bytes) / (1 << 20);
    const char* tag = ckpt ? "checkpointed" : "plain";
    o << ", \"" << tag << "_step_s\": " << bench::median(times) << ", \"" << tag
      << "_activation_mib\": " << peak_mib << ", \"" << tag << "_saved_mib\": " << saved_mib;
  }
  std::cout << o.str() << "}\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Args a = parse(argc, argv);
    bp::set_num_threads(a.threads);
    bp::set_kernel_config(a.kernels);
    if (a.mode == "train") return run_train(a);
    if (a.mode == "infer") return run_infer(a);
    if (a.mode == "steps") return run_steps(a);
    if (a.mode == "checkpoint") return run_checkpoint(a);
    throw bp::ValueError("bench_mlp: --mode must be train, infer, steps or checkpoint, got " + a.mode);
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 2;
  }
}
