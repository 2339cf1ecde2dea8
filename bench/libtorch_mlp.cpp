// bench_libtorch — LibTorch (C++) twin of bench_mlp: the same MLP, data, optimiser and loop; one JSON object.
// Built only when Debian's libtorch-dev is installed (bench/CMakeLists.txt).
//
//   bench_libtorch --batch 128 --epochs 3 --threads 1 --hidden 256,128
//   bench_libtorch --mode infer --hidden 256,128
#include <sys/resource.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
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
  std::string mode = "train", data = "/usr/share/datasets/fashion-mnist";
  std::int64_t batch = 128, limit = 0;
  int epochs = 3, threads = 1, seed = 1;
  std::vector<std::int64_t> hidden = {256, 128};
};

std::pair<torch::Tensor, torch::Tensor> load(const Args& a, bool train) {
  const std::string prefix = a.data + (train ? "/train" : "/t10k");
  // The images stay as bytes (as backprop's benchmark keeps them); each batch is converted with `floats`.
  auto x = read_idx(prefix + "-images-idx3-ubyte.gz").reshape({-1, 784});
  auto y = read_idx(prefix + "-labels-idx1-ubyte.gz").to(torch::kInt64);
  if (train && a.limit > 0) x = x.slice(0, 0, a.limit).contiguous(), y = y.slice(0, 0, a.limit).contiguous();
  return {x, y};
}

torch::Tensor floats(const torch::Tensor& bytes) {
  return bytes.to(torch::kFloat32) / 255.0;
}

torch::nn::Sequential make_mlp(const std::vector<std::int64_t>& hidden) {
  torch::nn::Sequential net;
  std::int64_t prev = 784;
  for (auto h : hidden) {
    net->push_back(torch::nn::Linear(prev, h));
    net->push_back(torch::nn::ReLU());
    prev = h;
  }
  net->push_back(torch::nn::Linear(prev, 10));
  torch::NoGradGuard g;
  for (auto& p : net->named_parameters()) {  // He-uniform weights and zero biases, as backprop's defaults
    if (p.key().find("weight") != std::string::npos)
      torch::nn::init::kaiming_uniform_(p.value(), 0.0, torch::kFanIn, torch::kReLU);
    else
      p.value().zero_();
  }
  return net;
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

double since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

void run_train(const Args& a) {
  auto [xtr, ytr] = load(a, true);
  auto [xte, yte] = load(a, false);
  auto net = make_mlp(a.hidden);
  torch::optim::SGD opt(net->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
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
    times.push_back(since(t0));
  }
  std::vector<double> timed(times.begin() + (times.size() > 1 ? 1 : 0), times.end());
  const double epoch_s = median(timed);
  double acc;
  {
    torch::NoGradGuard g;
    std::int64_t right = 0;  // 1000 rows at a time, as backprop's benchmark
    for (std::int64_t b = 0; b < xte.size(0); b += 1000) {
      const std::int64_t e = std::min(xte.size(0), b + 1000);
      right += (net->forward(floats(xte.slice(0, b, e))).argmax(1) == yte.slice(0, b, e))
                   .sum()
                   .item<std::int64_t>();
    }
    acc = static_cast<double>(right) / static_cast<double>(xte.size(0));
  }
  std::ostringstream o, h, t;
  for (std::size_t i = 0; i < a.hidden.size(); ++i) h << (i ? "," : "") << a.hidden[i];
  for (std::size_t i = 0; i < times.size(); ++i) t << (i ? ", " : "") << times[i];
  std::cout << "{\"impl\": \"libtorch\", \"mode\": \"train\", \"batch\": " << a.batch
            << ", \"threads\": " << a.threads << ", \"hidden\": \"" << h.str() << "\", \"examples\": " << n
            << ", \"epoch_s\": " << epoch_s << ", \"epoch_times\": [" << t.str()
            << "], \"samples_per_s\": " << n / epoch_s << ", \"test_accuracy\": " << acc
            << ", \"final_loss\": " << last << ", \"peak_rss_mib\": " << peak_rss_mib() << "}\n";
}

void run_infer(const Args& a) {
  auto net = make_mlp(a.hidden);
  net->eval();
  torch::InferenceMode guard;
  const auto one = torch::rand({1, 784}), big = torch::rand({1024, 784});
  std::vector<double> lat, thr;
  for (int i = 0; i < 200; ++i) net->forward(one);
  for (int r = 0; r < 21; ++r) {
    const auto t0 = Clock::now();
    for (int i = 0; i < 200; ++i) net->forward(one);
    lat.push_back(since(t0) / 200);
  }
  for (int i = 0; i < 3; ++i) net->forward(big);
  for (int r = 0; r < 11; ++r) {
    const auto t0 = Clock::now();
    for (int i = 0; i < 5; ++i) net->forward(big);
    thr.push_back(5 * 1024 / since(t0));
  }
  std::cout << "{\"impl\": \"libtorch\", \"mode\": \"infer\", \"threads\": " << a.threads
            << ", \"latency_us\": " << median(lat) * 1e6 << ", \"batch1024_samples_per_s\": " << median(thr)
            << ", \"peak_rss_mib\": " << peak_rss_mib() << "}\n";
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Args a;
    for (int i = 1; i + 1 < argc; i += 2) {
      const std::string k = argv[i], v = argv[i + 1];
      if (k == "--mode")
        a.mode = v;
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
      else if (k == "--seed")
        a.seed = std::stoi(v);
      else if (k == "--hidden") {
        a.hidden.clear();
        std::stringstream ss(v);
        std::string item;
        while (std::getline(ss, item, ',')) a.hidden.push_back(std::stoll(item));
      } else
        throw std::runtime_error("bench_libtorch: unknown option " + k);
    }
    torch::manual_seed(a.seed);
    torch::set_num_threads(a.threads);
    if (a.mode == "infer")
      run_infer(a);
    else
      run_train(a);
  } catch (const std::exception& e) {
    std::cerr << e.what() << "\n";
    return 2;
  }
  return 0;
}
