// bench_libtorch_cnn — LibTorch (C++) twin of bench_cnn: the same CNNs, data, optimiser and loop; one JSON
// object. Built only when Debian's libtorch-dev is installed (bench/CMakeLists.txt). Weights keep LibTorch's
// default initialisation (the timing does not depend on it).
//
//   bench_libtorch_cnn --net bn --epochs 2 --limit 12800 --threads 2
#include <sys/resource.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "libtorch_idx.hpp"

namespace {

using libtorch_bench::read_idx;

using Clock = std::chrono::steady_clock;

struct Args {
  std::string net = "bn", data = "/usr/share/datasets/fashion-mnist";
  std::int64_t batch = 128, limit = 0, test_limit = 2000;
  int epochs = 2, threads = 1, seed = 1;
};

std::pair<torch::Tensor, torch::Tensor> load(const Args& a, bool train) {
  const std::string prefix = a.data + (train ? "/train" : "/t10k");
  auto x = read_idx(prefix + "-images-idx3-ubyte.gz").reshape({-1, 1, 28, 28});
  auto y = read_idx(prefix + "-labels-idx1-ubyte.gz").to(torch::kInt64);
  const std::int64_t limit = train ? a.limit : a.test_limit;
  if (limit > 0) x = x.slice(0, 0, limit).contiguous(), y = y.slice(0, 0, limit).contiguous();
  return {x, y};
}

torch::Tensor floats(const torch::Tensor& bytes) {
  return bytes.to(torch::kFloat32) / 255.0;
}

torch::nn::Sequential make_net(const std::string& name) {
  namespace tn = torch::nn;
  if (name == "lenet")
    return tn::Sequential(tn::Conv2d(tn::Conv2dOptions(1, 6, 5).padding(2)), tn::ReLU(), tn::MaxPool2d(2),
                          tn::Conv2d(6, 16, 5), tn::ReLU(), tn::MaxPool2d(2), tn::Flatten(),
                          tn::Linear(400, 120), tn::ReLU(), tn::Linear(120, 84), tn::ReLU(),
                          tn::Linear(84, 10));
  return tn::Sequential(tn::Conv2d(tn::Conv2dOptions(1, 32, 3).padding(1)), tn::BatchNorm2d(32), tn::ReLU(),
                        tn::MaxPool2d(2), tn::Conv2d(32, 64, 3), tn::BatchNorm2d(64), tn::ReLU(),
                        tn::MaxPool2d(2), tn::Flatten(), tn::Linear(64 * 6 * 6, 128), tn::ReLU(),
                        tn::Linear(128, 10));
}

double peak_rss_mib() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_maxrss) / 1024.0;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const auto n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

void run(const Args& a) {
  auto [xtr, ytr] = load(a, true);
  auto [xte, yte] = load(a, false);
  auto net = make_net(a.net);
  torch::optim::SGD opt(net->parameters(), torch::optim::SGDOptions(0.01).momentum(0.9));
  const std::int64_t n = xtr.size(0);
  std::vector<double> times;
  double last = 0;
  for (int e = 0; e < a.epochs; ++e) {
    const auto order = torch::randperm(n);
    const auto t0 = Clock::now();
    torch::Tensor loss;
    for (std::int64_t b = 0; b < n; b += a.batch) {
      const auto idx = order.slice(0, b, std::min(n, b + a.batch));
      const auto x = floats(xtr.index_select(0, idx)), y = ytr.index_select(0, idx);
      opt.zero_grad();
      loss = torch::nn::functional::cross_entropy(net->forward(x), y);
      loss.backward();
      opt.step();
    }
    last = loss.item<double>();
    times.push_back(std::chrono::duration<double>(Clock::now() - t0).count());
  }
  std::vector<double> timed(times.begin() + (times.size() > 1 ? 1 : 0), times.end());
  const double epoch_s = median(timed);
  const double rss = peak_rss_mib();  // the training's peak, before evaluation
  std::int64_t right = 0;
  {
    torch::NoGradGuard g;
    net->eval();
    for (std::int64_t b = 0; b < xte.size(0); b += 1000) {
      const std::int64_t e = std::min(xte.size(0), b + 1000);
      right += (net->forward(floats(xte.slice(0, b, e))).argmax(1) == yte.slice(0, b, e))
                   .sum()
                   .item<std::int64_t>();
    }
  }
  std::ostringstream t;
  for (std::size_t i = 0; i < times.size(); ++i) t << (i ? ", " : "") << times[i];
  std::cout << "{\"impl\": \"libtorch\", \"net\": \"" << a.net << "\", \"batch\": " << a.batch
            << ", \"threads\": " << a.threads << ", \"examples\": " << n << ", \"epoch_s\": " << epoch_s
            << ", \"epoch60k_s\": " << epoch_s * 60000.0 / static_cast<double>(n) << ", \"epoch_times\": ["
            << t.str()
            << "], \"test_accuracy\": " << static_cast<double>(right) / static_cast<double>(xte.size(0))
            << ", \"final_loss\": " << last << ", \"peak_rss_mib\": " << rss << "}\n";
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Args a;
    for (int i = 1; i < argc; i += 2) {
      const std::string k = argv[i];
      if (i + 1 >= argc) throw std::runtime_error("bench_libtorch_cnn: " + k + " needs a value");
      const std::string v = argv[i + 1];
      if (k == "--net")
        a.net = v;
      else if (k == "--data")
        a.data = v;
      else if (k == "--batch")
        a.batch = std::stoll(v);
      else if (k == "--epochs")
        a.epochs = std::stoi(v);
      else if (k == "--threads")
        a.threads = std::stoi(v);
      else if (k == "--limit")
        a.limit = std::stoll(v);
      else if (k == "--test-limit")
        a.test_limit = std::stoll(v);
      else if (k == "--seed")
        a.seed = std::stoi(v);
      else
        throw std::runtime_error("bench_libtorch_cnn: unknown option " + k);
    }
    if (a.net != "lenet" && a.net != "bn")
      throw std::runtime_error("bench_libtorch_cnn: --net must be lenet or bn");
    torch::manual_seed(a.seed);
    torch::set_num_threads(a.threads);
    run(a);
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 2;
  }
  return 0;
}
