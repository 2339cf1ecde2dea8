// Dropout and DropConnect: mask rate, scaling, eval behaviour, determinism by seed, gradients.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/nn.hpp>
#include <cmath>
#include <cstdint>
#include <vector>

namespace bp = backprop;
using ::testing::HasSubstr;

TEST(Dropout, MaskRateAndInvertedScaling) {
  bp::Generator gen(30);
  const double p = 0.3;
  bp::nn::Dropout drop(p, gen);
  bp::Tensor x = bp::ones({200, 500});
  bp::Tensor y = drop(x);
  std::int64_t kept = 0;
  for (double v : y.to_vector()) {
    if (v != 0.0) {
      ++kept;
      EXPECT_NEAR(v, 1.0 / (1.0 - p), 1e-6);
    }
  }
  const double n = 200.0 * 500.0;
  const double rate = static_cast<double>(kept) / n;
  // Binomial: sd of the rate = sqrt(0.7 * 0.3 / 1e5) ~ 0.00145; allow 5 sd.
  EXPECT_NEAR(rate, 1 - p, 5 * std::sqrt(p * (1 - p) / n));
  EXPECT_NEAR(y.mean().item(), 1.0, 0.01);  // E[y] = x
}

TEST(Dropout, GradientIsTheSameMaskAndScale) {
  bp::Generator gen(31);
  bp::nn::Dropout drop(0.5, gen);
  bp::Tensor x = bp::randn({4, 6}, gen, bp::f64).requires_grad_();
  bp::Tensor y = drop(x);
  y.sum().backward();
  for (std::int64_t i = 0; i < x.numel(); ++i) {
    const double g = x.grad().flat(i);
    EXPECT_EQ(g, y.flat(i) == 0.0 ? 0.0 : 2.0);
  }
}

TEST(Dropout, EvalIsIdentityAndSeedsReproduce) {
  bp::Generator g1(32), g2(32), g3(33);
  bp::nn::Dropout a(0.5, g1), b(0.5, g2), c(0.5, g3);
  bp::Generator data(1);
  bp::Tensor x = bp::randn({10, 10}, data);
  EXPECT_EQ(bp::max_abs_diff(a(x), b(x)), 0.0);
  EXPECT_EQ(bp::max_abs_diff(a(x), b(x)), 0.0);  // the streams stay in step
  EXPECT_GT(bp::max_abs_diff(a(x), c(x)), 0.0);
  bp::Tensor first = a(x), second = a(x);
  EXPECT_GT(bp::max_abs_diff(first, second), 0.0);  // a fresh mask per call
  a.eval();
  EXPECT_TRUE(a(x).is_same(x));
  EXPECT_EQ(a.repr(), "Dropout(p=0.5)");
}

TEST(Dropout, MaskIsOneUniformDrawPerElementInOrder) {
  // The mask of element i is uniform() < 1 - p for the i-th draw of the layer's own generator (seeded from
  // one next() of the constructor's): written out here with per-element uniform() over 2,500 elements, more
  // than two of the blocks the mask is drawn in, f32 and f64, and a keep probability whose 2^53 multiple is
  // an integer (0.5) or not (0.7).
  for (const double p : {0.3, 0.5}) {
    for (const bp::DType dt : {bp::f32, bp::f64}) {
      bp::Generator gen(35), mirror(35);
      bp::nn::Dropout drop(p, gen);
      bp::Generator ref(mirror.next());
      const bp::Tensor y = drop(bp::ones({50, 50}, dt));
      for (int call = 0; call < 2; ++call) {  // a second call continues the same stream
        const bp::Tensor z = call == 0 ? y : drop(bp::ones({50, 50}, dt));
        for (std::int64_t i = 0; i < z.numel(); ++i)
          ASSERT_EQ(z.flat(i) != 0.0, ref.uniform() < 1.0 - p)
              << "p " << p << " call " << call << " at " << i;
      }
    }
  }
}

TEST(Generator, FillIsTheStreamOfNext) {
  bp::Generator a(77), b(77);
  std::vector<std::uint64_t> bits(1500);
  a.fill(bits.data(), 1000);
  a.fill(bits.data() + 1000, 500);
  for (std::uint64_t v : bits) ASSERT_EQ(v, b.next());
  EXPECT_EQ(a.next(), b.next());  // the state moved on by exactly 1500 draws
  a.fill(bits.data(), 0);
  EXPECT_EQ(a.next(), b.next());
}

TEST(Dropout, RejectsBadP) {
  bp::Generator gen(34);
  EXPECT_THAT([&] { bp::nn::Dropout(1.0, gen); },
              ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("p must be in [0, 1), got p=1")));
  EXPECT_THAT([&] { bp::nn::Dropout(-0.1, gen); },
              ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("got p=-0.1")));
  EXPECT_THAT([&] { bp::nn::DropConnect(3, 2, 1.2, gen); },
              ::testing::ThrowsMessage<bp::ValueError>(
                  HasSubstr("DropConnect: drop probability p must be in [0, 1), got p=1.2")));
}

TEST(DropConnect, OneMaskPerCallOnTheWeightsScaled) {
  bp::Generator gen(35);
  const double p = 0.25;
  bp::nn::DropConnect dc(40, 30, p, gen, {.dtype = bp::f64});
  EXPECT_EQ(dc.named_parameters()[0].first, "weight");
  EXPECT_EQ(dc.named_parameters()[1].first, "bias");
  // Row i of an identity input reads column i of the effective weight W~ = W M / (1 - p).
  bp::Tensor eye = bp::zeros({40, 40}, bp::f64);
  for (std::int64_t i = 0; i < 40; ++i) eye.set({i, i}, 1.0);
  bp::Tensor y = dc(eye);  // [40, 30]: y[i, o] = W~[o, i] + b[o], b = 0
  std::int64_t kept = 0;
  for (std::int64_t i = 0; i < 40; ++i)
    for (std::int64_t o = 0; o < 30; ++o) {
      const double w = dc.weight().at({o, i}), v = y.at({i, o});
      if (v != 0.0) {
        ++kept;
        EXPECT_NEAR(v, w / (1 - p), 1e-12);
      }
    }
  const double n = 1200;
  EXPECT_NEAR(kept / n, 1 - p, 5 * std::sqrt(p * (1 - p) / n));
  // Gradient: dL/dW = (dL/dW~) M / (1 - p): zero exactly where the weight was dropped.
  bp::Tensor x = bp::randn({5, 40}, gen, bp::f64);
  bp::Tensor out = dc(x);
  out.sum().backward();
  std::int64_t zero_cols = 0;
  for (std::int64_t k = 0; k < dc.weight().numel(); ++k) zero_cols += dc.weight().grad().flat(k) == 0.0;
  EXPECT_NEAR(zero_cols / n, p, 5 * std::sqrt(p * (1 - p) / n));
}

TEST(DropConnect, MeanInferenceAndDeterminism) {
  bp::Generator g1(36), g2(36);
  bp::nn::DropConnect a(6, 4, 0.5, g1), b(6, 4, 0.5, g2);
  bp::Generator data(2);
  bp::Tensor x = bp::randn({3, 6}, data);
  EXPECT_EQ(bp::max_abs_diff(a(x), b(x)), 0.0);
  a.eval();
  EXPECT_LT(bp::max_abs_diff(a(x), bp::linear(x, a.weight(), a.bias())), 1e-7);
  EXPECT_EQ(a.repr(), "DropConnect(in=6, out=4, p=0.5, bias=true, inference=mean)");
  // The weights equal a Linear's built from the same seed (same initialiser, same draws).
  bp::Generator g3(36);
  bp::nn::Linear lin(6, 4, g3);
  EXPECT_EQ(bp::max_abs_diff(lin.weight(), b.weight()), 0.0);
}

// Gaussian moment matching: the average of f over samples approaches E[f(u)] for the true DropConnect u; with
// many samples it must be close to a Monte-Carlo average over real weight masks.
TEST(DropConnect, GaussianInferenceMatchesMonteCarloOverMasks) {
  bp::Generator gen(37);
  const double p = 0.5;
  bp::nn::DropConnect dc(30, 5, p, gen,
                         {.inference = bp::nn::DropConnectInference::gaussian,
                          .samples = 4000,
                          .activation = bp::nn::Nonlinearity::sigmoid,
                          .dtype = bp::f64});
  bp::Tensor x = bp::randn({2, 30}, gen, bp::f64);
  // Monte Carlo in training mode over 4000 masks.
  bp::Tensor acc = bp::zeros({2, 5}, bp::f64);
  {
    bp::NoGradGuard guard;
    for (int s = 0; s < 4000; ++s) acc = bp::add(acc, dc(x));
  }
  acc = bp::mul(acc, 1.0 / 4000);
  dc.eval();
  bp::Tensor gaussian = dc(x);
  bp::Tensor mean_net = bp::sigmoid(bp::linear(x, dc.weight(), dc.bias()));
  const double mc_vs_gauss = bp::max_abs_diff(acc, gaussian);
  EXPECT_LT(mc_vs_gauss, 0.015);
  // The sigmoid's curvature makes the mean network differ measurably from the true average; the
  // moment-matched average must be much closer (a variance off by a factor of 2 would land about halfway).
  EXPECT_LT(mc_vs_gauss, 0.35 * bp::max_abs_diff(acc, mean_net));
  EXPECT_THAT(dc.repr(), HasSubstr("inference=gaussian, activation=sigmoid"));
}
