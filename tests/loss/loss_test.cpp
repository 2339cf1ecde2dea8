// Costs: values against hand computations, first and second derivatives in f64, target validation.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/loss.hpp>
#include <cmath>

namespace bp = backprop;
using ::testing::HasSubstr;

namespace {
// -sum_c q_c log softmax(z)_c for one row, straight from the definition.
double row_cross_entropy(const std::vector<double>& z, int label, double eps) {
  double s = 0;
  for (double v : z) s += std::exp(v);
  double total = 0;
  const double c = static_cast<double>(z.size());
  for (std::size_t j = 0; j < z.size(); ++j) {
    const double q = (static_cast<int>(j) == label ? 1 - eps : 0.0) + eps / c;
    total -= q * std::log(std::exp(z[j]) / s);
  }
  return total;
}
}  // namespace

TEST(CrossEntropy, MatchesHandComputedValue) {
  // Row 0: z = (1, 2, 3), label 2: -log(e^3 / (e + e^2 + e^3)) = log(1 + e^-1 + e^-2) = 0.40760596444...
  bp::Tensor z = bp::tensor({{1, 2, 3}, {0.5, -1, 2}}, bp::f64);
  bp::Tensor y = bp::tensor({2, 0}, bp::f64);
  const double row0 = std::log(1 + std::exp(-1.0) + std::exp(-2.0));
  EXPECT_NEAR(row0, 0.4076059644443804, 1e-15);
  const double row1 = row_cross_entropy({0.5, -1, 2}, 0, 0.0);
  EXPECT_NEAR(bp::loss::CrossEntropy{}(z, y).item(), (row0 + row1) / 2, 1e-14);
  EXPECT_NEAR(bp::loss::CrossEntropy({.reduction = bp::loss::Reduction::sum})(z, y).item(), row0 + row1,
              1e-14);
  const double s0 = row_cross_entropy({1, 2, 3}, 2, 0.1), s1 = row_cross_entropy({0.5, -1, 2}, 0, 0.1);
  EXPECT_NEAR(bp::loss::CrossEntropy({.label_smoothing = 0.1})(z, y).item(), (s0 + s1) / 2, 1e-14);
  // f32 logits with f32 labels; large logits stay finite (the row maximum is subtracted).
  bp::Tensor big = bp::tensor({{1000, 0, -1000}}, bp::f32);
  EXPECT_NEAR(bp::loss::CrossEntropy{}(big, bp::tensor({0})).item(), 0.0, 1e-6);
  EXPECT_NEAR(bp::loss::CrossEntropy{}(big, bp::tensor({1})).item(), 1000.0, 1e-3);
}

TEST(CrossEntropy, FusedOpMatchesComposedVersionAndGradchecks) {
  bp::Generator gen(40);
  bp::Tensor z = bp::randn({6, 5}, gen, bp::f64, 0, 2).requires_grad_();
  bp::Tensor y = bp::tensor({0, 4, 2, 2, 1, 3}, bp::f64);
  for (double eps : {0.0, 0.2}) {
    for (auto red : {bp::loss::Reduction::mean, bp::loss::Reduction::sum}) {
      bp::loss::CrossEntropy ce({.label_smoothing = eps, .reduction = red});
      auto composed = [&](const bp::Tensor& logits) {
        bp::Tensor q = bp::add(bp::mul(bp::one_hot(y, 5, bp::f64), 1 - eps), eps / 5);
        bp::Tensor c = bp::neg(bp::sum(bp::mul(q, bp::log_softmax(logits, 1))));
        return red == bp::loss::Reduction::mean ? bp::mul(c, 1.0 / 6) : c;
      };
      EXPECT_NEAR(ce(z, y).item(), composed(z).item(), 1e-13);
      auto g_fused = bp::grad({ce(z, y)}, {z});
      auto g_comp = bp::grad({composed(z)}, {z});
      EXPECT_LT(bp::max_abs_diff(g_fused[0], g_comp[0]), 1e-13);
      bp::gradcheck([&](const bp::Tensors& in) { return ce(in[0], y); }, {z});
      bp::gradgradcheck([&](const bp::Tensors& in) { return ce(in[0], y); }, {z});
    }
  }
}

TEST(CrossEntropy, TargetValidationNamesPositionAndValue) {
  bp::Tensor z = bp::zeros({3, 4});
  EXPECT_THAT(
      [&] {
        bp::loss::CrossEntropy{}(z, bp::tensor({0, 4, 1}));
      },
      ::testing::ThrowsMessage<bp::ValueError>(
          HasSubstr("target at position 1 is 4, expected a class index in [0, 4)")));
  EXPECT_THAT(
      [&] {
        bp::loss::CrossEntropy{}(z, bp::tensor({0, 1.5, 1}));
      },
      ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("target at position 1 is 1.5")));
  EXPECT_THAT(
      [&] {
        bp::loss::CrossEntropy{}(z, bp::tensor({0, 1}));
      },
      ::testing::ThrowsMessage<bp::ShapeError>(HasSubstr("expected target [3] of class indices")));
  EXPECT_THAT([&] { bp::loss::CrossEntropy{}(bp::zeros({4}), bp::tensor({0})); },
              ::testing::ThrowsMessage<bp::ShapeError>(HasSubstr("expected scores [N, C], got [4]")));
  EXPECT_THAT(
      [&] {
        bp::loss::CrossEntropy({.label_smoothing = 2})(z, bp::tensor({0, 1, 1}));
      },
      ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("label_smoothing must be in [0, 1], got 2")));
  EXPECT_EQ(bp::loss::CrossEntropy({.label_smoothing = 0.1}).repr(),
            "CrossEntropy(label_smoothing=0.1, reduction=mean)");
}

TEST(NLL, EqualsCrossEntropyOnLogSoftmaxAndGradchecks) {
  bp::Generator gen(41);
  bp::Tensor z = bp::randn({4, 3}, gen, bp::f64).requires_grad_();
  bp::Tensor y = bp::tensor({2, 0, 1, 1});
  EXPECT_NEAR(bp::loss::NLL{}(bp::log_softmax(z, 1), y).item(), bp::loss::CrossEntropy{}(z, y).item(), 1e-14);
  bp::Tensor lp = bp::randn({4, 3}, gen, bp::f64).requires_grad_();
  const double hand = -(lp.at({0, 2}) + lp.at({1, 0}) + lp.at({2, 1}) + lp.at({3, 1}));
  EXPECT_NEAR(bp::loss::NLL({.reduction = bp::loss::Reduction::sum})(lp, y).item(), hand, 1e-14);
  bp::gradcheck([&](const bp::Tensors& in) { return bp::loss::NLL{}(bp::log_softmax(in[0], 1), y); }, {z});
  bp::gradgradcheck([&](const bp::Tensors& in) { return bp::loss::NLL{}(bp::log_softmax(in[0], 1), y); },
                    {z});
  EXPECT_THROW(bp::loss::NLL{}(lp, bp::tensor({0, 0, 0, -1})), bp::ValueError);
}

TEST(MSEAndQuadratic, ValuesAndGradients) {
  bp::Tensor a = bp::tensor({{1, 2}, {3, 5}}, bp::f64).requires_grad_();
  bp::Tensor y = bp::tensor({{0, 2}, {1, 1}}, bp::f32);  // another dtype: converted to the output's
  // Squared errors: 1, 0, 4, 16 -> sum 21.
  EXPECT_DOUBLE_EQ(bp::loss::MSE{}(a, y).item(), 21.0 / 4);
  EXPECT_DOUBLE_EQ(bp::loss::MSE({.reduction = bp::loss::Reduction::sum})(a, y).item(), 21.0);
  // Quadratic: 1/2 per-example sums (1, 20), averaged over 2 examples = 21 / 4; summed = 21 / 2.
  EXPECT_DOUBLE_EQ(bp::loss::Quadratic{}(a, y).item(), 21.0 / 4);
  EXPECT_DOUBLE_EQ(bp::loss::Quadratic({.reduction = bp::loss::Reduction::sum})(a, y).item(), 21.0 / 2);
  // dC/da = (a - y) / N for the mean quadratic cost.
  auto g = bp::grad({bp::loss::Quadratic{}(a, y)}, {a});
  EXPECT_LT(bp::max_abs_diff(g[0], bp::tensor({{0.5, 0}, {1, 2}}, bp::f64)), 1e-15);
  // 3 examples of 1 output vs 1 example of 3 outputs.
  bp::Tensor v = bp::tensor({1, 2, 3}, bp::f64), t = bp::zeros({3}, bp::f64);
  EXPECT_DOUBLE_EQ(bp::loss::Quadratic{}(v, t).item(), 14.0 / 2 / 3);
  EXPECT_DOUBLE_EQ(bp::loss::Quadratic{}(bp::reshape(v, {1, 3}), bp::reshape(t, {1, 3})).item(), 14.0 / 2);
  bp::Generator gen(42);
  bp::Tensor o = bp::randn({3, 4}, gen, bp::f64).requires_grad_();
  bp::Tensor target = bp::randn({3, 4}, gen, bp::f64).requires_grad_();
  for (auto red : {bp::loss::Reduction::mean, bp::loss::Reduction::sum}) {
    bp::gradcheck([&](const bp::Tensors& in) { return bp::loss::MSE({.reduction = red})(in[0], in[1]); },
                  {o, target});
    bp::gradgradcheck([&](const bp::Tensors& in) { return bp::loss::MSE({.reduction = red})(in[0], in[1]); },
                      {o, target});
    bp::gradcheck(
        [&](const bp::Tensors& in) { return bp::loss::Quadratic({.reduction = red})(in[0], in[1]); },
        {o, target});
    bp::gradgradcheck(
        [&](const bp::Tensors& in) { return bp::loss::Quadratic({.reduction = red})(in[0], in[1]); },
        {o, target});
  }
  EXPECT_THAT(
      [&] {
        bp::loss::MSE{}(a, bp::zeros({2, 3}));
      },
      ::testing::ThrowsMessage<bp::ShapeError>(
          HasSubstr("output [2, 2] and target [2, 3] must have the same shape")));
  EXPECT_EQ(bp::loss::Quadratic{}.repr(), "Quadratic(reduction=mean)");
}

TEST(BCEWithLogits, StableValueMatchesDefinitionAndGradchecks) {
  bp::Tensor x = bp::tensor({-3, -0.5, 0.25, 4}, bp::f64);
  bp::Tensor y = bp::tensor({0, 1, 0.3, 1}, bp::f64);
  double ref = 0;
  for (int i = 0; i < 4; ++i) {
    const double s = 1 / (1 + std::exp(-x.flat(i)));
    ref -= y.flat(i) * std::log(s) + (1 - y.flat(i)) * std::log(1 - s);
  }
  EXPECT_NEAR(bp::loss::BCEWithLogits{}(x, y).item(), ref / 4, 1e-14);
  EXPECT_NEAR(bp::loss::BCEWithLogits({.reduction = bp::loss::Reduction::sum})(x, y).item(), ref, 1e-13);
  // Extreme logits: finite, and the right limit (log(1 + e^-100) ~ 0, so the loss is 100 for a wrong label).
  EXPECT_NEAR(bp::loss::BCEWithLogits{}(bp::tensor({100.0}), bp::tensor({0.0})).item(), 100.0, 1e-4);
  EXPECT_NEAR(bp::loss::BCEWithLogits{}(bp::tensor({-100.0}), bp::tensor({0.0})).item(), 0.0, 1e-6);
  bp::Generator gen(43);
  bp::Tensor xs = bp::randn({3, 3}, gen, bp::f64, 0, 2).requires_grad_();
  bp::Tensor ys = bp::rand({3, 3}, gen, bp::f64).requires_grad_();
  bp::gradcheck([](const bp::Tensors& in) { return bp::loss::BCEWithLogits{}(in[0], in[1]); }, {xs, ys});
  bp::gradgradcheck([](const bp::Tensors& in) { return bp::loss::BCEWithLogits{}(in[0], in[1]); }, {xs, ys});
  EXPECT_THAT(
      [&] {
        bp::loss::BCEWithLogits{}(x, bp::tensor({0, 1, 2, 0}, bp::f64));
      },
      ::testing::ThrowsMessage<bp::ValueError>(
          HasSubstr("target at position 2 is 2, expected a probability")));
}

TEST(Penalties, L1AndL2WithTheirGradients) {
  bp::Tensor w1 = bp::tensor({{1, -2}, {0.5, 0}}, bp::f64).requires_grad_();
  bp::Tensor w2 = bp::tensor({-3}, bp::f64).requires_grad_();
  EXPECT_DOUBLE_EQ(bp::loss::l1_penalty({w1, w2}).item(), 6.5);
  EXPECT_DOUBLE_EQ(bp::loss::l2_penalty({w1, w2}).item(), 0.5 * (1 + 4 + 0.25 + 9));
  auto g = bp::grad({bp::loss::l2_penalty({w1, w2})}, {w1, w2});
  EXPECT_EQ(bp::max_abs_diff(g[0], w1), 0.0);  // the 1/2 makes the gradient exactly w
  EXPECT_EQ(g[1].item(), -3.0);
  auto g1 = bp::grad({bp::loss::l1_penalty({w1, w2})}, {w1});
  EXPECT_EQ(bp::max_abs_diff(g1[0], bp::tensor({{1, -1}, {1, 0}}, bp::f64)), 0.0);
  EXPECT_EQ(bp::loss::l2_penalty({}).item(), 0.0);
  bp::Generator gen(44);
  bp::Tensor a = bp::randn({2, 3}, gen, bp::f64).requires_grad_(),
             b = bp::randn({4}, gen, bp::f64).requires_grad_();
  bp::gradcheck([](const bp::Tensors& in) { return bp::loss::l2_penalty(in); }, {a, b});
  bp::gradgradcheck([](const bp::Tensors& in) { return bp::loss::l2_penalty(in); }, {a, b});
  bp::gradcheck([](const bp::Tensors& in) { return bp::loss::l1_penalty(in); }, {a, b});  // away from 0
}

TEST(Loss, UsableThroughTheBaseClass) {
  std::vector<std::unique_ptr<bp::loss::Loss>> losses;
  losses.push_back(std::make_unique<bp::loss::MSE>());
  losses.push_back(
      std::make_unique<bp::loss::CrossEntropy>(bp::loss::CrossEntropyOptions{.label_smoothing = 0.05}));
  bp::Tensor out = bp::tensor({{0.2, 0.8}}), target = bp::tensor({{0.0, 1.0}});
  EXPECT_NEAR((*losses[0])(out, target).item(), (0.04 + 0.04) / 2, 1e-7);
  EXPECT_GT((*losses[1])(out, bp::tensor({1})).item(), 0.0);
  EXPECT_EQ(losses[0]->repr(), "MSE(reduction=mean)");
}

// SoftmaxMSE = MSE(softmax(z), one_hot(y)): values and gradient equal PyTorch's
// mse_loss(softmax(z, 1), one_hot(y).double()) (values printed by torch 1.13), first and second derivatives
// gradient-checked.
TEST(SoftmaxMSE, EqualsPyTorchAndIsTwiceDifferentiable) {
  const bp::Tensor z = bp::from_vector({0.5, -1.0, 2.0, 0.1, 0.2, -0.3}, {2, 3}, bp::f64).requires_grad_();
  const bp::Tensor y = bp::from_vector({2.0, 0.0}, {2}, bp::f64);
  const bp::loss::SoftmaxMSE mean_loss;
  const bp::Tensor c = mean_loss(z, y);
  EXPECT_NEAR(c.item(), 0.11738822527453767, 1e-15);
  const auto g = bp::grad({c}, {z});
  const double torch_grad[] = {0.018199128282330317, 0.0022853527687415735, -0.02048448105107189,
                               -0.075194408629169,   0.05465659990227423,   0.020537808726894775};
  for (std::int64_t i = 0; i < 6; ++i) EXPECT_NEAR(g[0].flat(i), torch_grad[i], 1e-15) << i;
  EXPECT_NEAR(bp::loss::SoftmaxMSE({.reduction = bp::loss::Reduction::sum})(z, y).item(), 0.704329351647226,
              1e-14);
  EXPECT_TRUE(bp::gradcheck([&](const bp::Tensors& in) { return mean_loss(in[0], y); }, {z}).ok);
  EXPECT_TRUE(bp::gradgradcheck([&](const bp::Tensors& in) { return mean_loss(in[0], y); }, {z}).ok);
  EXPECT_THAT(
      [&] {
        mean_loss(z, bp::from_vector({1.0, 0.0, 2.0}, {3}, bp::f64));
      },
      testing::ThrowsMessage<bp::ShapeError>(HasSubstr("SoftmaxMSE: expected logits [N, C]")));
}
