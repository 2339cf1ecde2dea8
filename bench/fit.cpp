// bench_fit — times train::fit() on Fashion-MNIST with bench_mlp's configuration and prints one JSON object,
// so that scripts/bench can compare the library's training loop with bench_mlp's written-out loop:
//   784 - hidden... - 10, ReLU between layers, softmax cross-entropy (mean), SGD lr 0.1 momentum 0.9,
//   shuffled mini-batches (the last one may be short), no validation, no gradient-flow records.
//
//   bench_fit --batch 128 --epochs 4 --threads 2 --hidden 256,128 [--prefetch 1]
//
// Output fields: epoch_s (median over epochs after the first, from History's per-epoch seconds),
// epoch_times, train_accuracy (last epoch), test_accuracy.
#include <algorithm>
#include <backprop/backprop.hpp>
#include <backprop/train.hpp>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "bench_util.hpp"

namespace bp = backprop;

namespace {

struct Args {
  std::string data = bp::data::FashionMNIST::default_dir;
  std::int64_t batch = 128;
  std::int64_t epochs = 3;
  int threads = 1;
  std::vector<std::int64_t> hidden = {256, 128};
  std::int64_t limit = 0;  // training examples used (0: all 60000)
  std::uint64_t seed = 1;
  bool prefetch = false;  // --prefetch 1: a loader thread prepares the next batch (for the comparison)
};

Args parse(int argc, char** argv) {
  Args a;
  bench::parse_options(argc, argv, "bench_fit",
                       {{"--data", [&](const std::string& v) { a.data = v; }},
                        {"--batch", [&](const std::string& v) { a.batch = std::stoll(v); }},
                        {"--epochs", [&](const std::string& v) { a.epochs = std::stoll(v); }},
                        {"--threads", [&](const std::string& v) { a.threads = std::stoi(v); }},
                        {"--hidden", [&](const std::string& v) { a.hidden = bench::parse_list(v); }},
                        {"--limit", [&](const std::string& v) { a.limit = std::stoll(v); }},
                        {"--seed", [&](const std::string& v) { a.seed = std::stoull(v); }},
                        {"--prefetch", [&](const std::string& v) { a.prefetch = v != "0"; }}});
  return a;
}

}  // namespace

int main(int argc, char** argv) try {
  const Args a = parse(argc, argv);
  bp::set_num_threads(a.threads);
  const bp::data::TensorDataset train = bp::data::FashionMNIST::load(a.data, bp::data::Split::train, a.limit);
  const bp::data::TensorDataset test = bp::data::FashionMNIST::load(a.data, bp::data::Split::test);
  bp::Generator gen(a.seed);
  bp::nn::Sequential net;
  std::int64_t prev = train.num_features();
  for (std::int64_t h : a.hidden) {
    net.push_back(bp::nn::Linear(prev, h, gen));
    net.push_back(bp::nn::ReLU());
    prev = h;
  }
  net.push_back(bp::nn::Linear(prev, 10, gen));
  bp::optim::SGD opt(net.parameters(), {.lr = 0.1, .momentum = 0.9});
  const bp::loss::CrossEntropy ce;
  const bp::train::History h =
      bp::train::fit(net, ce, opt, train,
                     {.epochs = a.epochs, .batch_size = a.batch, .seed = a.seed, .prefetch = a.prefetch});
  std::vector<double> times;
  for (const auto& e : h.epochs) times.push_back(e.seconds);
  const std::vector<double> timed(times.begin() + (times.size() > 1 ? 1 : 0), times.end());
  const bp::train::Evaluation t = bp::train::evaluate(net, ce, test);
  std::ostringstream list;
  for (std::size_t i = 0; i < times.size(); ++i) list << (i ? ", " : "") << times[i];
  std::string hidden;
  for (auto w : a.hidden) hidden += (hidden.empty() ? "" : ",") + std::to_string(w);
  std::cout << "{\"impl\": \"backprop-fit\", \"mode\": \"train\", \"batch\": " << a.batch
            << ", \"threads\": " << a.threads << ", \"prefetch\": " << a.prefetch << ", \"hidden\": \""
            << hidden << "\", \"examples\": " << train.size() << ", \"epoch_s\": " << bench::median(timed)
            << ", \"epoch_times\": [" << list.str()
            << "], \"train_accuracy\": " << (h.epochs.empty() ? 0.0 : h.epochs.back().train_accuracy)
            << ", \"test_accuracy\": " << t.accuracy << "}\n";
  return 0;
} catch (const std::exception& e) {
  std::cerr << "bench_fit: " << e.what() << "\n";
  return 1;
}
