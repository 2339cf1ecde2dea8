// BatchNorm1d: values and running statistics against a hand computation; first and second derivatives.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/nn.hpp>
#include <cmath>

namespace bp = backprop;
using ::testing::HasSubstr;

TEST(BatchNorm1d, TrainingOutputAndRunningStatsMatchHandComputation) {
  bp::Generator gen(20);
  const std::int64_t n = 6, c = 3;
  bp::nn::BatchNorm1d bn(c, {.momentum = 0.2, .dtype = bp::f64});
  bp::nn::init::normal(bn.weight(), gen, 1.0, 0.3);
  bp::nn::init::normal(bn.bias(), gen);
  bp::Tensor x = bp::randn({n, c}, gen, bp::f64, 2.0, 3.0);
  bp::Tensor y = bn(x);
  for (std::int64_t j = 0; j < c; ++j) {
    double mu = 0, var = 0;
    for (std::int64_t i = 0; i < n; ++i) mu += x.at({i, j});
    mu /= n;
    for (std::int64_t i = 0; i < n; ++i) var += (x.at({i, j}) - mu) * (x.at({i, j}) - mu);
    const double biased = var / n, unbiased = var / (n - 1);
    for (std::int64_t i = 0; i < n; ++i) {
      const double ref =
          bn.weight().at({j}) * (x.at({i, j}) - mu) / std::sqrt(biased + 1e-5) + bn.bias().at({j});
      EXPECT_NEAR(y.at({i, j}), ref, 1e-12);
    }
    EXPECT_NEAR(bn.running_mean().at({j}), 0.8 * 0.0 + 0.2 * mu, 1e-12);
    EXPECT_NEAR(bn.running_var().at({j}), 0.8 * 1.0 + 0.2 * unbiased, 1e-12);
  }
  EXPECT_EQ(bn.num_batches_tracked(), 1);
  EXPECT_FALSE(bn.running_mean().requires_grad());
}

TEST(BatchNorm1d, EvalUsesRunningStatistics) {
  bp::Generator gen(21);
  bp::nn::BatchNorm1d bn(2, {.dtype = bp::f64});
  for (int k = 0; k < 3; ++k) bn(bp::randn({8, 2}, gen, bp::f64, 1.0, 2.0));
  EXPECT_EQ(bn.num_batches_tracked(), 3);
  bn.eval();
  bp::Tensor x = bp::randn({1, 2}, gen, bp::f64);  // a batch of one is fine in eval
  bp::Tensor y = bn(x);
  for (std::int64_t j = 0; j < 2; ++j) {
    const double ref =
        (x.at({0, j}) - bn.running_mean().at({j})) / std::sqrt(bn.running_var().at({j}) + 1e-5);
    EXPECT_NEAR(y.at({0, j}), ref, 1e-12);
  }
  EXPECT_EQ(bn.num_batches_tracked(), 3);  // eval does not update the statistics
}

TEST(BatchNorm1d, GradcheckAndGradgradcheckThroughBatchStatistics) {
  bp::Generator gen(22);
  bp::Tensor x = bp::randn({5, 3}, gen, bp::f64).requires_grad_();
  bp::Tensor gamma = bp::randn({3}, gen, bp::f64, 1.0, 0.2).requires_grad_();
  bp::Tensor beta = bp::randn({3}, gen, bp::f64).requires_grad_();
  bp::nn::BatchNorm1d bn(3, {.dtype = bp::f64});
  // Use the module with gamma/beta swapped in through its state dict.
  auto fn = [&](const bp::Tensors& in) {
    bp::nn::BatchNorm1d layer(3, {.affine = false, .dtype = bp::f64});
    return bp::add(bp::mul(layer(in[0]), in[1]), in[2]);
  };
  bp::gradcheck(fn, {x, gamma, beta});
  bp::gradgradcheck(fn, {x, gamma, beta});
  // The module's own parameters get gradients too.
  bn(x).sum().backward();
  ASSERT_TRUE(bn.weight().grad().defined());
  // d/dgamma sum(y) = sum_i xhat_i = 0 per feature; d/dbeta = N.
  for (std::int64_t j = 0; j < 3; ++j) {
    EXPECT_NEAR(bn.weight().grad().at({j}), 0.0, 1e-10);
    EXPECT_NEAR(bn.bias().grad().at({j}), 5.0, 1e-12);
  }
  // Eval mode: the statistics are constants, the map is affine in x.
  bn.eval();
  bp::gradcheck([&](const bp::Tensors& in) { return bn(in[0]); }, {x});
}

TEST(BatchNorm1d, Errors) {
  bp::nn::BatchNorm1d bn(4);
  EXPECT_THAT(
      [&] {
        bn(bp::zeros({3, 5}));
      },
      ::testing::ThrowsMessage<bp::ShapeError>(HasSubstr("expected input [N, 4], got [3, 5]")));
  EXPECT_THAT(
      [&] {
        bn(bp::zeros({1, 4}));
      },
      ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("more than one row per batch")));
  EXPECT_THROW(bn(bp::zeros({3, 4}, bp::f64)), bp::DTypeError);
  EXPECT_THAT([] { bp::nn::BatchNorm1d(3, {.momentum = 1.5}); },
              ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("momentum must be in [0, 1], got 1.5")));
  EXPECT_EQ(bn.repr(), "BatchNorm1d(4, eps=1e-05, momentum=0.1, affine=true)");
  bp::nn::BatchNorm1d plain(2, {.affine = false});
  EXPECT_EQ(plain.parameters().size(), 0u);
  EXPECT_EQ(plain.named_buffers().size(), 3u);
}
