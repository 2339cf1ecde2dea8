// Linear, activations and initialisers.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/nn.hpp>
#include <cmath>

namespace bp = backprop;
using ::testing::HasSubstr;

namespace {
double sample_std(const bp::Tensor& t) {
  const auto v = t.to_vector();
  double m = 0, s = 0;
  for (double x : v) m += x;
  m /= static_cast<double>(v.size());
  for (double x : v) s += (x - m) * (x - m);
  return std::sqrt(s / static_cast<double>(v.size() - 1));
}
double max_abs(const bp::Tensor& t) {
  double m = 0;
  for (double x : t.to_vector()) m = std::max(m, std::abs(x));
  return m;
}
}  // namespace

TEST(Linear, MatchesManualMatmulPlusBias) {
  bp::Generator gen(10);
  bp::nn::Linear fc(5, 3, gen, {.dtype = bp::f64});
  bp::nn::init::normal(fc.bias(), gen);
  bp::Tensor x = bp::randn({4, 5}, gen, bp::f64);
  bp::Tensor y = fc(x);
  ASSERT_EQ(y.shape(), (bp::Shape{4, 3}));
  for (std::int64_t i = 0; i < 4; ++i)
    for (std::int64_t o = 0; o < 3; ++o) {
      double ref = fc.bias().at({o});
      for (std::int64_t k = 0; k < 5; ++k) ref += x.at({i, k}) * fc.weight().at({o, k});
      EXPECT_NEAR(y.at({i, o}), ref, 1e-12);
    }
  EXPECT_EQ(fc.repr(), "Linear(in=5, out=3, bias=true)");
}

// The delta rule: dC/dW = delta^T a, dC/db = sum_i delta_i, for C = sum(y * r) (so delta = r).
TEST(Linear, GradientsAreTheDeltaRule) {
  bp::Generator gen(11);
  bp::nn::Linear fc(3, 2, gen, {.dtype = bp::f64});
  bp::Tensor a = bp::randn({4, 3}, gen, bp::f64);
  bp::Tensor r = bp::randn({4, 2}, gen, bp::f64);
  bp::mul(fc(a), r).sum().backward();
  EXPECT_LT(bp::max_abs_diff(fc.weight().grad(), bp::matmul(bp::transpose(r), a)), 1e-12);
  EXPECT_LT(bp::max_abs_diff(fc.bias().grad(), bp::sum(r, 0)), 1e-12);
  bp::gradcheck([&](const bp::Tensors& in) { return bp::linear(in[0], in[1], in[2]); },
                {a.requires_grad_(), fc.weight(), fc.bias()});
}

TEST(Linear, NoBiasAndErrors) {
  bp::Generator gen(12);
  bp::nn::Linear fc(4, 2, gen, {.bias = false});
  EXPECT_FALSE(fc.bias().defined());
  EXPECT_EQ(fc.parameters().size(), 1u);
  EXPECT_EQ(fc.repr(), "Linear(in=4, out=2, bias=false)");
  EXPECT_THAT(
      [&] {
        fc(bp::zeros({3, 5}));
      },
      ::testing::ThrowsMessage<bp::ShapeError>(HasSubstr("expected input [N, 4], got [3, 5]")));
  EXPECT_THAT(
      [&] {
        fc(bp::zeros({3, 4}, bp::f64));
      },
      ::testing::ThrowsMessage<bp::DTypeError>(HasSubstr("input is f64 but the layer is f32")));
  EXPECT_THAT([&] { bp::nn::Linear(0, 2, gen); },
              ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("got in=0, out=2")));
}

TEST(Linear, DefaultInitIsHeUniformWithZeroBias) {
  bp::Generator gen(13);
  bp::nn::Linear fc(400, 300, gen);
  const double bound = std::sqrt(6.0 / 400.0);
  EXPECT_LE(max_abs(fc.weight()), bound);
  EXPECT_GT(max_abs(fc.weight()), 0.99 * bound);
  EXPECT_NEAR(sample_std(fc.weight()), bound / std::sqrt(3.0), 0.02 * bound / std::sqrt(3.0));
  EXPECT_EQ(max_abs(fc.bias()), 0.0);
  // Same seed, same weights.
  bp::Generator again(13);
  bp::nn::Linear fc2(400, 300, again);
  EXPECT_EQ(bp::max_abs_diff(fc.weight(), fc2.weight()), 0.0);
}

struct InitCase {
  const char* name;
  std::function<void(bp::Tensor, bp::Generator&)> fn;
  double expected_std;
  double bound;  // 0: unbounded (normal)
};

TEST(Init, StandardDeviationsMatchTheFormulas) {
  const std::int64_t out = 500, in = 400;
  const double fan_avg = 2.0 / (out + in);
  const std::vector<InitCase> cases = {
      {"xavier_uniform", [](bp::Tensor w, bp::Generator& g) { bp::nn::init::xavier_uniform(w, g); },
       std::sqrt(fan_avg), std::sqrt(3 * fan_avg)},
      {"xavier_normal tanh",
       [](bp::Tensor w, bp::Generator& g) {
         bp::nn::init::xavier_normal(w, g, bp::nn::init::gain(bp::nn::Nonlinearity::tanh));
       },
       5.0 / 3.0 * std::sqrt(fan_avg), 0},
      {"kaiming_uniform relu", [](bp::Tensor w, bp::Generator& g) { bp::nn::init::kaiming_uniform(w, g); },
       std::sqrt(2.0 / in), std::sqrt(6.0 / in)},
      {"kaiming_normal fan_out",
       [](bp::Tensor w, bp::Generator& g) {
         bp::nn::init::kaiming_normal(w, g, {.mode = bp::nn::init::FanMode::fan_out});
       },
       std::sqrt(2.0 / out), 0},
      {"kaiming_normal leaky 0.2",
       [](bp::Tensor w, bp::Generator& g) {
         bp::nn::init::kaiming_normal(w, g, {.nonlinearity = bp::nn::Nonlinearity::leaky_relu, .slope = 0.2});
       },
       std::sqrt(2.0 / (1 + 0.04)) / std::sqrt(in), 0},
      {"kaiming_uniform linear",
       [](bp::Tensor w, bp::Generator& g) {
         bp::nn::init::kaiming_uniform(w, g, {.nonlinearity = bp::nn::Nonlinearity::linear});
       },
       1.0 / std::sqrt(in), std::sqrt(3.0 / in)},
      {"normal(1, 0.5)", [](bp::Tensor w, bp::Generator& g) { bp::nn::init::normal(w, g, 1.0, 0.5); }, 0.5,
       0},
      {"uniform(-2, 2)", [](bp::Tensor w, bp::Generator& g) { bp::nn::init::uniform(w, g, -2, 2); },
       4.0 / std::sqrt(12.0), 2.0},
  };
  for (const auto& c : cases) {
    for (bp::DType dt : {bp::f32, bp::f64}) {
      bp::Generator gen(99);
      bp::Tensor w = bp::empty({out, in}, dt);
      c.fn(w, gen);
      // 200000 samples: the sample std is within ~0.3% of the true one (5 sigma ~ 0.8%); allow 1.5%.
      EXPECT_NEAR(sample_std(w), c.expected_std, 0.015 * c.expected_std) << c.name;
      if (c.bound > 0) {
        EXPECT_LE(max_abs(w), c.bound * (1 + 1e-6)) << c.name;
      }
    }
  }
}

TEST(Init, GainsFansAndFillers) {
  EXPECT_DOUBLE_EQ(bp::nn::init::gain(bp::nn::Nonlinearity::relu), std::sqrt(2.0));
  EXPECT_DOUBLE_EQ(bp::nn::init::gain(bp::nn::Nonlinearity::tanh), 5.0 / 3.0);
  EXPECT_DOUBLE_EQ(bp::nn::init::gain(bp::nn::Nonlinearity::sigmoid), 1.0);
  EXPECT_DOUBLE_EQ(bp::nn::init::gain(bp::nn::Nonlinearity::leaky_relu, 0.5), std::sqrt(2.0 / 1.25));
  const auto f = bp::nn::init::fans(bp::zeros({7, 3}));
  EXPECT_EQ(f.fan_in, 3);
  EXPECT_EQ(f.fan_out, 7);
  EXPECT_THAT(
      [] { bp::nn::init::fans(bp::zeros({7})); },
      ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("at least 2 dimensions [out, in, ...], got [7]")));
  bp::Tensor w = bp::ones({2, 2}).requires_grad_();
  bp::nn::init::constant(w, 3.5);  // in place on a parameter: allowed (NoGradGuard inside)
  EXPECT_EQ(w.at({1, 1}), 3.5);
  bp::nn::init::zeros(w);
  EXPECT_EQ(max_abs(w), 0.0);
  bp::Generator gen(1);
  EXPECT_THROW(bp::nn::init::uniform(w, gen, 1, 0), bp::ValueError);
  EXPECT_THROW(bp::nn::init::normal(w, gen, 0, -1), bp::ValueError);
}

TEST(Activations, ForwardMatchesTheOpsAndReprs) {
  bp::Generator gen(14);
  bp::Tensor x = bp::randn({3, 4}, gen, bp::f64);
  EXPECT_EQ(bp::max_abs_diff(bp::nn::Sigmoid()(x), bp::sigmoid(x)), 0.0);
  EXPECT_EQ(bp::max_abs_diff(bp::nn::Tanh()(x), bp::tanh(x)), 0.0);
  EXPECT_EQ(bp::max_abs_diff(bp::nn::ReLU()(x), bp::relu(x)), 0.0);
  EXPECT_EQ(bp::max_abs_diff(bp::nn::LeakyReLU(0.2)(x), bp::leaky_relu(x, 0.2)), 0.0);
  EXPECT_EQ(bp::max_abs_diff(bp::nn::Softmax(0)(x), bp::softmax(x, 0)), 0.0);
  EXPECT_EQ(bp::max_abs_diff(bp::nn::LogSoftmax()(x), bp::log_softmax(x, 1)), 0.0);
  EXPECT_TRUE(bp::nn::Identity()(x).is_same(x));
  EXPECT_EQ(bp::nn::LeakyReLU(0.2).repr(), "LeakyReLU(slope=0.2)");
  EXPECT_EQ(bp::nn::Softmax().repr(), "Softmax(axis=-1)");
  EXPECT_EQ(bp::nn::LogSoftmax(1).repr(), "LogSoftmax(axis=1)");
  EXPECT_EQ(bp::nn::ReLU().repr(), "ReLU()");
  // The leaky slope is visible in the output.
  bp::Tensor neg = bp::tensor({-2.0}, bp::f64);
  EXPECT_DOUBLE_EQ(bp::nn::LeakyReLU()(neg).item(), -0.02);
  EXPECT_THROW(bp::nn::Softmax(3)(x), bp::IndexError);
}
