// fit(): the three gradient-descent modes, mean vs sum reduction, learning small problems, early stopping,
// determinism, divergence.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/train.hpp>
#include <cmath>
#include <cstdio>

#include "util/two_threads.hpp"

namespace bp = backprop;
using ::testing::HasSubstr;

namespace {

/// A small classification set: two Gaussian blobs in 4-D with class = sign of the first coordinate sum.
bp::data::TensorDataset blobs(std::int64_t n, std::uint64_t seed) {
  bp::Generator gen(seed);
  bp::Tensor x = bp::randn({n, 4}, gen);
  std::vector<double> y(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i)
    y[static_cast<std::size_t>(i)] = x.at({i, 0}) + 0.5 * x.at({i, 1}) > 0 ? 1 : 0;
  bp::data::TensorDataset d;
  d.features = x;
  d.targets = bp::from_vector(y);
  d.task = bp::data::Task::classification;
  d.num_classes = 2;
  d.class_names = {"neg", "pos"};
  return d;
}

bp::nn::Sequential small_net(std::uint64_t seed, bp::DType dtype = bp::f32) {
  bp::Generator gen(seed);
  return bp::nn::Sequential{bp::nn::Linear(4, 8, gen, {.dtype = dtype}), bp::nn::Tanh(),
                            bp::nn::Linear(8, 2, gen, {.dtype = dtype})};
}

bp::data::TensorDataset to_f64(bp::data::TensorDataset d) {
  d.features = d.features.to(bp::f64);
  d.targets = d.targets.to(bp::f64);
  return d;
}

}  // namespace

TEST(Fit, UpdatesPerEpochFollowTheDescentMode) {
  const auto data = blobs(50, 1);
  struct Case {
    std::int64_t batch;
    bool full;
    std::int64_t expected;
  };
  for (const Case c : {Case{1, false, 50}, Case{16, false, 4}, Case{50, false, 1}, Case{1000, false, 1},
                       Case{16, true, 1}}) {
    auto net = small_net(2);
    bp::optim::SGD opt(net.parameters(), {.lr = 0.01});
    const auto h = bp::train::fit(net, bp::loss::CrossEntropy{}, opt, data,
                                  {.epochs = 2, .batch_size = c.batch, .full_batch = c.full});
    ASSERT_EQ(h.epochs.size(), 2u);
    EXPECT_EQ(h.epochs[0].updates, c.expected) << "batch " << c.batch << " full " << c.full;
    EXPECT_EQ(h.total_updates, 2 * c.expected);
    EXPECT_EQ(opt.steps(), 2 * c.expected);
  }
}

// One full-batch step with mean reduction equals one step on the batch-size weighted average of the
// mini-batch gradients of the same examples.
TEST(Fit, FullBatchStepEqualsWeightedAccumulatedMiniBatchGradients) {
  const auto data = to_f64(blobs(37, 3));
  const double lr = 0.5;
  auto full = small_net(4, bp::f64);
  bp::optim::SGD opt_full(full.parameters(), {.lr = lr});
  bp::train::fit(full, bp::loss::CrossEntropy{}, opt_full, data, {.epochs = 1, .full_batch = true});

  auto acc = small_net(4, bp::f64);
  const bp::Tensors params = acc.parameters();
  std::vector<bp::Tensor> sum;
  for (const auto& p : params) sum.push_back(bp::zeros_like(p));
  bp::data::DataLoader loader(data, {.batch_size = 10, .shuffle = false});
  for (std::int64_t b = 0; b < loader.num_batches(); ++b) {
    const auto batch = loader.batch(b);
    acc.zero_grad();
    bp::loss::CrossEntropy{}(acc(batch.features), batch.targets).backward();
    const double weight = static_cast<double>(batch.features.size(0)) / static_cast<double>(data.size());
    bp::NoGradGuard guard;
    for (std::size_t i = 0; i < params.size(); ++i) sum[i].add_(params[i].grad(), weight);
  }
  bp::NoGradGuard guard;
  for (std::size_t i = 0; i < params.size(); ++i) {
    bp::Tensor expected = params[i].detach().clone();
    expected.add_(sum[i], -lr);
    EXPECT_LT(bp::max_abs_diff(expected, full.parameters()[i]), 1e-12) << "parameter " << i;
  }
}

// Summing instead of averaging multiplies the gradient by the batch size B, so lr / B gives the same step.
TEST(Fit, SumReductionWithLrOverBatchSizeEqualsMeanReduction) {
  const auto data = to_f64(blobs(32, 5));
  auto mean_net = small_net(6, bp::f64);
  auto sum_net = small_net(6, bp::f64);
  bp::optim::SGD opt_mean(mean_net.parameters(), {.lr = 0.4});
  bp::optim::SGD opt_sum(sum_net.parameters(), {.lr = 0.4 / 8});
  bp::train::fit(mean_net, bp::loss::CrossEntropy{}, opt_mean, data,
                 {.epochs = 3, .batch_size = 8, .seed = 9});
  bp::train::fit(sum_net, bp::loss::CrossEntropy{}, opt_sum, data,
                 {.epochs = 3, .batch_size = 8, .grad_reduction = bp::train::GradReduction::sum, .seed = 9});
  for (std::size_t i = 0; i < mean_net.parameters().size(); ++i)
    EXPECT_LT(bp::max_abs_diff(mean_net.parameters()[i], sum_net.parameters()[i]), 1e-12);
}

TEST(Fit, XorIsLearnedByA221SigmoidNetWithQuadraticCost) {
  bp::data::TensorDataset xor_data;
  xor_data.features = bp::tensor({{0, 0}, {0, 1}, {1, 0}, {1, 1}}, bp::f64);
  xor_data.targets = bp::from_vector({0.0, 1.0, 1.0, 0.0}, {4, 1}, bp::f64);
  xor_data.task = bp::data::Task::regression;
  bp::Generator gen(7);
  bp::nn::Sequential net{bp::nn::Linear(2, 2, gen,
                                        {.init = bp::nn::Init::xavier_normal,
                                         .nonlinearity = bp::nn::Nonlinearity::sigmoid,
                                         .dtype = bp::f64}),
                         bp::nn::Sigmoid(),
                         bp::nn::Linear(2, 1, gen,
                                        {.init = bp::nn::Init::xavier_normal,
                                         .nonlinearity = bp::nn::Nonlinearity::sigmoid,
                                         .dtype = bp::f64}),
                         bp::nn::Sigmoid()};
  bp::optim::SGD opt(net.parameters(), {.lr = 2.0, .momentum = 0.9});
  const auto h = bp::train::fit(net, bp::loss::MSE{}, opt, xor_data, {.epochs = 2000, .full_batch = true});
  EXPECT_LT(h.epochs.back().train_loss, 0.01);
  const bp::Tensor out = bp::train::predict(net, xor_data.features);
  for (std::int64_t i = 0; i < 4; ++i)
    EXPECT_EQ(out.at({i, 0}) > 0.5, xor_data.targets.at({i, 0}) > 0.5)
        << "input " << i << ": " << out.at({i, 0});
}

TEST(Fit, RegressionWithMseFitsAKnownFunction) {
  // y = sin(2x) + 0.5 x on [-2, 2]
  bp::Generator gen(11);
  const std::int64_t n = 256;
  bp::Tensor x = bp::rand({n, 1}, gen, bp::f32, -2.0, 2.0);
  std::vector<double> y;
  for (std::int64_t i = 0; i < n; ++i) y.push_back(std::sin(2 * x.at({i, 0})) + 0.5 * x.at({i, 0}));
  bp::data::TensorDataset d;
  d.features = x;
  d.targets = bp::from_vector(y, {n, 1});
  d.task = bp::data::Task::regression;
  bp::nn::Sequential net{bp::nn::Linear(1, 32, gen), bp::nn::Tanh(), bp::nn::Linear(32, 32, gen),
                         bp::nn::Tanh(), bp::nn::Linear(32, 1, gen)};
  bp::optim::Adam opt(net.parameters(), {.lr = 0.01});
  const auto h = bp::train::fit(net, bp::loss::MSE{}, opt, d, {.epochs = 150, .batch_size = 32, .seed = 1});
  const auto first = h.epochs.front().train_loss;
  // Judged on 101 evenly spaced points of [-2, 2], not the random ones it trained on.
  std::vector<double> gx, gy;
  for (int i = 0; i <= 100; ++i) {
    gx.push_back(-2.0 + 0.04 * i);
    gy.push_back(std::sin(2 * gx.back()) + 0.5 * gx.back());
  }
  bp::data::TensorDataset grid;
  grid.features = bp::from_vector(gx, {101, 1});
  grid.targets = bp::from_vector(gy, {101, 1});
  grid.task = bp::data::Task::regression;
  const auto e = bp::train::evaluate(net, bp::loss::MSE{}, grid);
  std::printf("[ measured ] MSE on the grid %.5f (last epoch's training loss %.5f)\n", e.loss,
              h.epochs.back().train_loss);
  EXPECT_LT(e.loss, 0.01) << "first-epoch loss " << first;
  EXPECT_TRUE(std::isnan(e.accuracy));
}

TEST(Fit, EarlyStoppingStopsAndRestoresTheBestWeights) {
  // A tiny training set and a large network overfit quickly; validation loss then rises.
  const auto all = blobs(400, 13);
  const auto [train, val] = bp::data::train_validation_split(all, 0.5, 1);
  const auto small = train.head(12);
  bp::Generator gen(1);
  bp::nn::Sequential net{bp::nn::Linear(4, 128, gen), bp::nn::ReLU(), bp::nn::Linear(128, 2, gen)};
  bp::optim::Adam opt(net.parameters(), {.lr = 0.05});
  const auto h =
      bp::train::fit(net, bp::loss::CrossEntropy{}, opt, small,
                     {.epochs = 300, .batch_size = 12, .validation = &val, .early_stopping_patience = 5});
  EXPECT_TRUE(h.stopped_early);
  EXPECT_LT(h.epochs.size(), 300u);
  EXPECT_EQ(static_cast<std::int64_t>(h.epochs.size()), h.best_epoch + 5);
  const auto e = bp::train::evaluate(net, bp::loss::CrossEntropy{}, val);
  EXPECT_NEAR(e.loss, h.epochs[static_cast<std::size_t>(h.best_epoch - 1)].val_loss, 1e-6);
}

TEST(Fit, SameSeedGivesBitIdenticalWeights) {
  SKIP_WITHOUT_TWO_CPUS();
  const auto data = blobs(200, 17);
  auto run = [&](int threads) {
    bp::set_num_threads(threads);
    bp::Generator gen(3);
    // 4096 hidden units: the batches of 100 give activations of 409,600 elements, which the element-wise
    // kernels split between threads.
    bp::nn::Sequential net{bp::nn::Linear(4, 4096, gen), bp::nn::ReLU(), bp::nn::Dropout(0.3, gen),
                           bp::nn::Linear(4096, 2, gen)};
    bp::optim::Adam opt(net.parameters(), {.lr = 0.01});
    bp::train::fit(net, bp::loss::CrossEntropy{}, opt, data, {.epochs = 3, .batch_size = 100, .seed = 5});
    std::vector<double> w;
    for (const auto& p : net.parameters())
      for (double v : p.to_vector()) w.push_back(v);
    return w;
  };
  const auto a = run(1), b = run(1);
  EXPECT_EQ(a, b);
  // The same bits whatever the thread count, with a second thread confirmed to have done part of the work.
  EXPECT_TRUE(testutil::on_two_threads([&] { EXPECT_EQ(a, run(2)); }));
  bp::set_num_threads(2);
}

TEST(Fit, DivergenceStopsWithEpochAndStep) {
  auto data = blobs(64, 19);
  data.features = bp::mul(data.features, 1e3);
  data.task = bp::data::Task::regression;
  data.targets = bp::zeros({64, 2});
  auto net = small_net(20);
  bp::optim::SGD opt(net.parameters(), {.lr = 1e6});
  try {
    bp::train::fit(net, bp::loss::MSE{}, opt, data, {.epochs = 50, .batch_size = 8});
    FAIL() << "expected DivergedError";
  } catch (const bp::DivergedError& e) {
    EXPECT_THAT(e.what(), HasSubstr("training diverged"));
    EXPECT_THAT(e.what(), HasSubstr("at epoch "));
    EXPECT_THAT(e.what(), HasSubstr("step "));
  }
  for (const auto& p : net.parameters())
    for (double v : p.to_vector()) EXPECT_TRUE(std::isfinite(v)) << "weights must stay finite";
}

TEST(Fit, RejectsBadOptionsWithClearMessages) {
  const auto data = blobs(8, 1);
  auto net = small_net(1);
  bp::optim::SGD opt(net.parameters(), {.lr = 0.1});
  EXPECT_THROW(
      {
        try {
          bp::train::fit(net, bp::loss::CrossEntropy{}, opt, data, {.batch_size = 0});
        } catch (const bp::ValueError& e) {
          EXPECT_THAT(e.what(), HasSubstr("batch_size must be >= 1, got 0"));
          throw;
        }
      },
      bp::ValueError);
  EXPECT_THROW(bp::train::fit(net, bp::loss::CrossEntropy{}, opt, data, {.early_stopping_patience = 3}),
               bp::ValueError);
}

TEST(Evaluate, ConfusionMatrixCountsEveryExample) {
  const auto data = blobs(100, 23);
  auto net = small_net(24);
  bp::optim::Adam opt(net.parameters(), {.lr = 0.05});
  bp::train::fit(net, bp::loss::CrossEntropy{}, opt, data, {.epochs = 20, .batch_size = 20});
  const auto held_out = blobs(100, 25);  // the same rule, examples not trained on
  const auto e = bp::train::evaluate(net, bp::loss::CrossEntropy{}, held_out, 7);
  ASSERT_EQ(e.confusion.size(), 2u);
  std::int64_t total = 0, diagonal = 0;
  for (std::size_t i = 0; i < 2; ++i)
    for (std::size_t j = 0; j < 2; ++j) {
      total += e.confusion[i][j];
      if (i == j) diagonal += e.confusion[i][j];
    }
  EXPECT_EQ(total, 100);
  EXPECT_DOUBLE_EQ(e.accuracy, static_cast<double>(diagonal) / 100.0);
  EXPECT_GT(e.accuracy, 0.9);
  EXPECT_EQ(bp::train::predict(net, held_out.features, 33).shape(), (bp::Shape{100, 2}));
}
