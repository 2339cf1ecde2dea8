// Learning on real data: Fashion-MNIST subsets. The vanishing-gradient claims are asserted on measured
// gradient norms, not described.
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/train.hpp>
#include <chrono>
#include <cmath>
#include <filesystem>

#include "util/require.hpp"
#include "util/two_threads.hpp"

namespace bp = backprop;

namespace {

const char* kDir = bp::data::FashionMNIST::default_dir;

bool have_data() {
  return std::filesystem::exists(std::string(kDir) + "/train-images-idx3-ubyte.gz");
}

const bp::data::TensorDataset& train_5000() {
  static const auto d = bp::data::FashionMNIST::load(kDir, bp::data::Split::train, 5000);
  return d;
}
const bp::data::TensorDataset& test_all() {
  static const auto d = bp::data::FashionMNIST::load(kDir, bp::data::Split::test);
  return d;
}

enum class Kind { sigmoid, relu_he, sigmoid_batchnorm };

/// 784 -> 10 hidden layers of 64 -> 10.
bp::nn::Sequential deep_net(Kind kind, std::uint64_t seed) {
  bp::Generator gen(seed);
  bp::nn::Sequential net;
  std::int64_t in = 784;
  for (int i = 0; i < 10; ++i) {
    if (kind == Kind::relu_he) {
      net.push_back(bp::nn::Linear(in, 64, gen, {.init = bp::nn::Init::kaiming_normal}));
      net.push_back(bp::nn::ReLU());
    } else {
      net.push_back(bp::nn::Linear(
          in, 64, gen,
          {.init = bp::nn::Init::xavier_uniform, .nonlinearity = bp::nn::Nonlinearity::sigmoid}));
      if (kind == Kind::sigmoid_batchnorm) net.push_back(bp::nn::BatchNorm1d(64));
      net.push_back(bp::nn::Sigmoid());
    }
    in = 64;
  }
  net.push_back(bp::nn::Linear(
      in, 10, gen, {.init = bp::nn::Init::xavier_uniform, .nonlinearity = bp::nn::Nonlinearity::linear}));
  return net;
}

struct FlowResult {
  double first_over_last = 0;  // ||dC/dW_1|| / ||dC/dW_last hidden||, averaged over the first updates
  double accuracy = 0;         // test accuracy after training
};

FlowResult run(Kind kind) {
  auto net = deep_net(kind, 1);
  bp::optim::SGD opt(net.parameters(), {.lr = 0.01, .momentum = 0.9});
  const auto train = train_5000().head(3000);
  const auto h = bp::train::fit(net, bp::loss::CrossEntropy{}, opt, train,
                                {.epochs = 3, .batch_size = 64, .seed = 2, .grad_flow_every = 1});
  FlowResult r;
  // the first 20 updates ("early in training"): first hidden layer vs the last hidden layer
  double ratio_sum = 0;
  int count = 0;
  for (const auto& rec : h.grad_flow) {
    if (rec.step > 20) break;
    const auto& layers = rec.layers;
    ratio_sum += layers.front().grad_norm / layers[layers.size() - 2].grad_norm;
    ++count;
  }
  r.first_over_last = ratio_sum / count;
  r.accuracy = bp::train::evaluate(net, bp::loss::CrossEntropy{}, test_all()).accuracy;
  std::cout << "[ measured ] first/last hidden-layer gradient norm " << r.first_over_last
            << ", test accuracy after 3 epochs on 3000 images " << r.accuracy << "\n";
  return r;
}

}  // namespace

TEST(FashionMNIST, MlpReaches80PercentOnTheTestSetFrom5000TrainingImages) {
  REQUIRE_INSTALLED(have_data(), "dataset-fashion-mnist", std::string("Fashion-MNIST under ") + kDir);
  const auto start = std::chrono::steady_clock::now();
  bp::Generator gen(42);
  bp::nn::Sequential net{bp::nn::Linear(784, 128, gen), bp::nn::ReLU(), bp::nn::Linear(128, 10, gen)};
  bp::optim::SGD opt(net.parameters(), {.lr = 0.01, .momentum = 0.9});
  bp::train::fit(net, bp::loss::CrossEntropy{}, opt, train_5000(),
                 {.epochs = 8, .batch_size = 64, .seed = 1});
  const auto e = bp::train::evaluate(net, bp::loss::CrossEntropy{}, test_all());
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // Reported, not asserted: timings are not tests on a shared machine.
  std::cout << "[ measured ] test accuracy " << e.accuracy << " on 10000 test images, " << seconds << " s\n";
  EXPECT_GE(e.accuracy, 0.80);
}

TEST(FashionMNIST, SigmoidStacksVanishReluHeAndBatchNormDoNot) {
  REQUIRE_INSTALLED(have_data(), "dataset-fashion-mnist", std::string("Fashion-MNIST under ") + kDir);
  const FlowResult sigmoid = run(Kind::sigmoid);
  const FlowResult relu = run(Kind::relu_he);
  const FlowResult batchnorm = run(Kind::sigmoid_batchnorm);
  // Vanishing: the first layer's gradient is at least 100x smaller than the last hidden layer's ...
  EXPECT_LT(sigmoid.first_over_last, 1.0 / 100);
  // ... and training stalls (chance is 10%).
  EXPECT_LT(sigmoid.accuracy, 0.3);
  // The fixes keep the ratio within ~10x and train.
  EXPECT_GT(relu.first_over_last, 1.0 / 10);
  EXPECT_LT(relu.first_over_last, 10.0);
  EXPECT_GT(batchnorm.first_over_last, 1.0 / 10);
  EXPECT_LT(batchnorm.first_over_last, 10.0);
  // At lr 0.01 three epochs of the 10-layer ReLU net reach 0.72-0.76 over seeds 1-3, with the own AVX-512
  // kernels, with OpenBLAS and in the sanitizer build (at lr 0.02 the sanitizer build's rounding gave 0.59).
  EXPECT_GT(relu.accuracy, 0.6);
  EXPECT_GT(batchnorm.accuracy, 0.6);
}

TEST(FashionMNIST, TrainingIsBitIdenticalAcrossThreadCounts) {
  SKIP_WITHOUT_TWO_CPUS();
  REQUIRE_INSTALLED(have_data(), "dataset-fashion-mnist", std::string("Fashion-MNIST under ") + kDir);
  auto run_with = [](int threads) {
    bp::set_num_threads(threads);
    bp::Generator gen(5);
    bp::nn::Sequential net{bp::nn::Linear(784, 256, gen), bp::nn::ReLU(), bp::nn::Dropout(0.2, gen),
                           bp::nn::Linear(256, 10, gen)};
    bp::optim::SGD opt(net.parameters(), {.lr = 0.05, .momentum = 0.9});
    bp::train::fit(net, bp::loss::CrossEntropy{}, opt, train_5000().head(2048),
                   {.epochs = 1, .batch_size = 256, .seed = 3});
    std::vector<double> w;
    for (const auto& p : net.parameters())
      for (double v : p.to_vector()) w.push_back(v);
    return w;
  };
  const auto one = run_with(1);
  const auto one_again = run_with(1);
  EXPECT_EQ(one, one_again) << "same seed, same threads";
  EXPECT_TRUE(
      testutil::on_two_threads([&] { EXPECT_EQ(one, run_with(2)) << "same seed, 1 vs 2 threads"; }, 5));
  bp::set_num_threads(2);
}
