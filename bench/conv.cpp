// bench_conv: one training step (forward, cross-entropy, backward, SGD) of a LeNet-5-like CNN or a small
// BatchNorm CNN on [batch, 1, 28, 28] inputs, timed after a warm-up; prints milliseconds per step (the median
// of the timed steps). bench/conv_vs_torch.py runs it side by side with PyTorch and reports the ratio.
// usage: bench_conv lenet|bn [--batch 128] [--threads 2] [--steps 20]
#include <algorithm>
#include <backprop/backprop.hpp>
#include <backprop/nn.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace bp = backprop;
namespace nn = backprop::nn;

int main(int argc, char** argv) {
  if (argc < 2 || (std::strcmp(argv[1], "lenet") != 0 && std::strcmp(argv[1], "bn") != 0)) {
    std::fprintf(stderr, "usage: bench_conv lenet|bn [--batch N] [--threads N] [--steps N]\n");
    return 2;
  }
  const std::string net_name = argv[1];
  int batch = 128, threads = 2, steps = 20;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const int value = std::atoi(argv[i + 1]);
    if (flag == "--batch")
      batch = value;
    else if (flag == "--threads")
      threads = value;
    else if (flag == "--steps")
      steps = value;
  }
  bp::set_num_threads(threads);
  bp::Generator gen(0);
  nn::Sequential net;
  if (net_name == "lenet") {
    net = nn::Sequential{nn::Conv2d(1, 6, 5, gen, {.padding = 2}),
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
  } else {
    net = nn::Sequential{nn::Conv2d(1, 32, 3, gen, {.padding = 1}),
                         nn::BatchNorm2d(32),
                         nn::ReLU(),
                         nn::MaxPool2d(2),
                         nn::Conv2d(32, 64, 3, gen),
                         nn::BatchNorm2d(64),
                         nn::ReLU(),
                         nn::MaxPool2d(2),
                         nn::Flatten(),
                         nn::Linear(64 * 6 * 6, 10, gen)};
  }
  const bp::Tensor x = bp::rand({batch, 1, 28, 28}, gen);
  std::vector<double> labels(static_cast<std::size_t>(batch));
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<double>(i % 10);
  const bp::Tensor y = bp::from_vector(labels, {batch});
  bp::optim::SGD opt(net.parameters(), {.lr = 0.01});
  bp::loss::CrossEntropy ce;
  std::vector<double> ms;
  for (int step = 0; step < steps + 3; ++step) {
    const auto t0 = std::chrono::steady_clock::now();
    opt.zero_grad();
    ce(net(x), y).backward();
    opt.step();
    const auto t1 = std::chrono::steady_clock::now();
    if (step >= 3) ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  std::printf("%s batch %d threads %d: %.3f ms/step (median of %d)\n", net_name.c_str(), batch, threads,
              ms[ms.size() / 2], steps);
  return 0;
}
