// bench_cnn — times backprop training of the two CNNs on Fashion-MNIST and prints one JSON object;
// bench/libtorch_cnn.cpp and bench/torch_cnn.py are its twins (same nets, data, optimiser and loop).
//
//   lenet: conv5x5 6 pad 2, ReLU, maxpool 2, conv5x5 16, ReLU, maxpool 2, 120, 84, 10 (ReLU between)
//   bn:    conv3x3 32 pad 1, BN, ReLU, maxpool 2, conv3x3 64, BN, ReLU, maxpool 2, 128, ReLU, 10
//   batch 128 (the last one may be short), softmax cross-entropy, SGD lr 0.01 momentum 0.9, shuffled.
//
//   bench_cnn --net bn --epochs 2 --limit 12800 --threads 2
//
// Output fields: epoch_s (median over epochs after the first, over `examples` training examples),
// epoch60k_s (the same scaled to 60,000 examples), test_accuracy (on the first --test-limit test images);
// at the end of training (before evaluation and the conv timing): peak_rss_mib, peak_tensor_mib (the caching
// allocator's peak of live tensor bytes) and cached_mib (its cache); os_allocs_per_step (system allocations of
// tensor storage per step after the first epoch); and the conv layers alone: conv_step_s (forward + weight
// and input gradients of every conv layer at batch `batch`, the median of --conv-reps timed repetitions, the
// first layer without an input gradient, as in training), conv_gflop_per_step (2 flops a multiply-add; bias
// and padding zeros not counted) and their quotient conv_gflops.
#include <sys/resource.h>

#include <algorithm>
#include <backprop/backprop.hpp>
#include <backprop/nn.hpp>
#include <chrono>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.hpp"
#include "fashion_bytes.hpp"

namespace bp = backprop;
namespace nn = backprop::nn;

namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  std::string net = "bn", data = "/usr/share/datasets/fashion-mnist";
  std::int64_t batch = 128, limit = 0, test_limit = 2000;
  int epochs = 2, threads = 1, conv_reps = 10;
  std::uint64_t seed = 1;
};

/// One conv layer of a net: input [batch, c, h, h], kernel k, padding p, o output channels.
struct ConvShape {
  std::int64_t c, h, o, k, p;
};

std::vector<ConvShape> conv_shapes(const std::string& net) {
  if (net == "lenet") return {{1, 28, 6, 5, 2}, {6, 14, 16, 5, 0}};
  return {{1, 28, 32, 3, 1}, {32, 14, 64, 3, 0}};
}

nn::Sequential make_net(const std::string& net, bp::Generator& gen) {
  if (net == "lenet")
    return nn::Sequential{nn::Conv2d(1, 6, 5, gen, {.padding = 2}),
                          nn::ReLU(),
                          nn::MaxPool2d(2),
                          nn::Conv2d(6, 16, 5, gen),
                          nn::ReLU(),
                          nn::MaxPool2d(2),
                          nn::Flatten(),
                          nn::Linear(16 * 5 * 5, 120, gen),
                          nn::ReLU(),
                          nn::Linear(120, 84, gen),
                          nn::ReLU(),
                          nn::Linear(84, 10, gen)};
  return nn::Sequential{nn::Conv2d(1, 32, 3, gen, {.padding = 1}),
                        nn::BatchNorm2d(32),
                        nn::ReLU(),
                        nn::MaxPool2d(2),
                        nn::Conv2d(32, 64, 3, gen),
                        nn::BatchNorm2d(64),
                        nn::ReLU(),
                        nn::MaxPool2d(2),
                        nn::Flatten(),
                        nn::Linear(64 * 6 * 6, 128, gen),
                        nn::ReLU(),
                        nn::Linear(128, 10, gen)};
}

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double accuracy(nn::Sequential& net, const bench::ByteImages& test) {
  bp::NoGradGuard guard;
  net.eval();
  std::int64_t right = 0;
  for (std::int64_t b = 0; b < test.n; b += 1000) {
    const std::int64_t rows = std::min<std::int64_t>(1000, test.n - b);
    bp::Tensor x({rows, 1, 28, 28}, bp::f32), y({rows}, bp::f32);
    bench::gather_batch(test, {}, b, x, y);
    const bp::Tensor logits = net(x);
    const float* p = logits.data<float>();
    for (std::int64_t i = 0; i < rows; ++i)
      right += (std::max_element(p + i * 10, p + i * 10 + 10) - (p + i * 10)) ==
               static_cast<std::int64_t>(y.data<float>()[i]);
  }
  net.train();
  return static_cast<double>(right) / static_cast<double>(test.n);
}

/// The conv layers alone, as a training step runs them: seconds per step (median) and GFLOP per step.
std::pair<double, double> time_convs(const Args& a, bp::Generator& gen) {
  struct Layer {
    bp::Tensor x, w, b, gy;
    std::int64_t pad;
  };
  std::vector<Layer> layers;
  double flop = 0;
  for (std::size_t i = 0; const ConvShape& s : conv_shapes(a.net)) {
    const std::int64_t oh = s.h + 2 * s.p - s.k + 1;
    Layer l{bp::rand({a.batch, s.c, s.h, s.h}, gen), bp::randn({s.o, s.c, s.k, s.k}, gen).requires_grad_(),
            bp::zeros({s.o}).requires_grad_(), bp::randn({a.batch, s.o, oh, oh}, gen), s.p};
    if (i++ > 0) l.x.requires_grad_();  // the first layer's input is the data: no input gradient
    const double macs = static_cast<double>(a.batch * s.o * oh * oh * s.c * s.k * s.k);
    flop += macs * (l.x.requires_grad() ? 6 : 4);
    layers.push_back(l);
  }
  std::vector<double> times;
  for (int r = 0; r < a.conv_reps + 2; ++r) {
    const auto t0 = Clock::now();
    for (Layer& l : layers) bp::conv2d(l.x, l.w, l.b, 1, l.pad).backward(l.gy);
    if (r >= 2) times.push_back(seconds_since(t0));
  }
  return {bench::median(times), flop / 1e9};
}

int run(const Args& a) {
  const bench::ByteImages train = bench::load_bytes(a.data, true, a.limit);
  const bench::ByteImages test = bench::load_bytes(a.data, false, a.test_limit);
  bp::Generator gen(a.seed);
  nn::Sequential net = make_net(a.net, gen);
  bp::optim::SGD opt(net.parameters(), {.lr = 0.01, .momentum = 0.9});
  bp::loss::CrossEntropy ce;
  const std::int64_t n = train.n;
  std::vector<std::int64_t> order(static_cast<std::size_t>(n));
  std::vector<double> epoch_times;
  std::uint64_t steps_after_first = 0, os_allocs_after_first = 0;
  double last_loss = 0;
  for (int epoch = 0; epoch < a.epochs; ++epoch) {
    for (std::int64_t i = 0; i < n; ++i) order[static_cast<std::size_t>(i)] = i;
    for (std::int64_t i = n - 1; i > 0; --i)
      std::swap(order[static_cast<std::size_t>(i)], order[gen.below(static_cast<std::uint64_t>(i + 1))]);
    const auto t0 = Clock::now();
    for (std::int64_t b = 0; b < n; b += a.batch) {
      const std::int64_t rows = std::min(a.batch, n - b);
      bp::Tensor x({rows, 1, 28, 28}, bp::f32), y({rows}, bp::f32);
      bench::gather_batch(train, order, b, x, y);
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
  std::vector<double> timed(epoch_times.begin() + (epoch_times.size() > 1 ? 1 : 0), epoch_times.end());
  const double epoch_s = bench::median(timed);
  const double rss = peak_rss_mib();  // the training's peak, before evaluation (as the twins measure it)
  const bp::MemoryStats mem = bp::memory_stats();
  const double acc = accuracy(net, test);
  const auto [conv_s, conv_gflop] = time_convs(a, gen);
  std::ostringstream t;
  for (std::size_t i = 0; i < epoch_times.size(); ++i) t << (i ? ", " : "") << epoch_times[i];
  std::cout << "{\"impl\": \"backprop\", \"net\": \"" << a.net << "\", \"batch\": " << a.batch
            << ", \"threads\": " << a.threads << ", \"examples\": " << n << ", \"epoch_s\": " << epoch_s
            << ", \"epoch60k_s\": " << epoch_s * 60000.0 / static_cast<double>(n) << ", \"epoch_times\": ["
            << t.str() << "], \"test_accuracy\": " << acc << ", \"final_loss\": " << last_loss
            << ", \"peak_rss_mib\": " << rss
            << ", \"peak_tensor_mib\": " << static_cast<double>(mem.peak_bytes) / (1 << 20)
            << ", \"cached_mib\": " << static_cast<double>(mem.cached_bytes) / (1 << 20)
            << ", \"os_allocs_per_step\": "
            << (steps_after_first ? static_cast<double>(os_allocs_after_first) / steps_after_first : -1.0)
            << ", \"conv_step_s\": " << conv_s << ", \"conv_gflop_per_step\": " << conv_gflop
            << ", \"conv_gflops\": " << conv_gflop / conv_s << "}\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Args a;
    bench::parse_options(argc, argv, "bench_cnn",
                         {{"--net", [&](const std::string& v) { a.net = v; }},
                          {"--data", [&](const std::string& v) { a.data = v; }},
                          {"--batch", [&](const std::string& v) { a.batch = std::stoll(v); }},
                          {"--epochs", [&](const std::string& v) { a.epochs = std::stoi(v); }},
                          {"--threads", [&](const std::string& v) { a.threads = std::stoi(v); }},
                          {"--limit", [&](const std::string& v) { a.limit = std::stoll(v); }},
                          {"--test-limit", [&](const std::string& v) { a.test_limit = std::stoll(v); }},
                          {"--conv-reps", [&](const std::string& v) { a.conv_reps = std::stoi(v); }},
                          {"--seed", [&](const std::string& v) { a.seed = std::stoull(v); }}});
    if (a.net != "lenet" && a.net != "bn") throw bp::ValueError("bench_cnn: --net must be lenet or bn");
    bp::set_num_threads(a.threads);
    return run(a);
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 2;
  }
}
