// LayerNorm: values and gradients against PyTorch 1.13, gradcheck and gradgradcheck, shapes and errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/nn.hpp>

#include "nn/torch_compare.hpp"
#include "util/require.hpp"

namespace bp = backprop;
using ::testing::HasSubstr;

namespace {
void expect_close(const bp::Tensor& t, const std::vector<double>& ref, const std::string& what) {
  const auto v = t.to_vector();
  ASSERT_EQ(v.size(), ref.size()) << what;
  for (std::size_t i = 0; i < v.size(); ++i) EXPECT_NEAR(v[i], ref[i], 1e-12) << what << " element " << i;
}
}  // namespace

TEST(LayerNorm, MatchesPyTorchValuesAndGradients) {
  REQUIRE_INSTALLED(torchcmp::have_torch(), "python3-torch", "/usr/bin/python3 with torch");
  std::string err;
  const auto ref = torchcmp::run_torch("layernorm", err);
  ASSERT_FALSE(ref.empty()) << err;
  for (const auto& [tag, shape, normalized] :
       {std::tuple<std::string, bp::Shape, bp::Shape>{"last", {5, 4}, {4}}, {"two", {3, 2, 4}, {2, 4}}}) {
    bp::nn::LayerNorm ln(normalized, {.dtype = bp::f64});
    {
      bp::NoGradGuard guard;
      bp::Tensor(ln.weight()).copy_(torchcmp::filled(normalized, 1.0));
      bp::Tensor(ln.bias()).copy_(torchcmp::filled(normalized, 2.0));
    }
    bp::Tensor x = torchcmp::filled(shape, 3.0).requires_grad_();
    bp::Tensor y = ln(x);
    ASSERT_EQ(y.shape(), shape);
    bp::sum(bp::mul(y, torchcmp::filled(shape, 4.0))).backward();
    expect_close(y, ref.at(tag + ".y"), tag + ".y");
    expect_close(x.grad(), ref.at(tag + ".dx"), tag + ".dx");
    expect_close(ln.weight().grad(), ref.at(tag + ".dweight"), tag + ".dweight");
    expect_close(ln.bias().grad(), ref.at(tag + ".dbias"), tag + ".dbias");
  }
}

TEST(LayerNorm, EachRowHasMeanZeroAndVarianceOne) {
  bp::Generator gen(3);
  bp::nn::LayerNorm ln(6, {.dtype = bp::f64});
  bp::Tensor x = bp::add(bp::mul(bp::randn({4, 6}, gen, bp::f64), 5.0), 3.0);
  bp::Tensor y = ln(x);
  for (std::int64_t i = 0; i < 4; ++i) {
    double m = 0, s = 0;
    for (std::int64_t f = 0; f < 6; ++f) m += y.at({i, f});
    m /= 6;
    for (std::int64_t f = 0; f < 6; ++f) s += (y.at({i, f}) - m) * (y.at({i, f}) - m);
    EXPECT_NEAR(m, 0.0, 1e-12);
    EXPECT_NEAR(s / 6, 1.0, 1e-5);  // var / (var + eps) with var about 25
  }
  // Training and eval compute the same (no running statistics), and a single row works.
  ln.eval();
  EXPECT_LT(bp::max_abs_diff(ln(x), y), 1e-15);
  EXPECT_EQ(ln(bp::narrow(x, 0, 1)).shape(), (bp::Shape{1, 6}));
}

TEST(LayerNorm, GradcheckAndGradgradcheckInF64) {
  bp::Generator gen(4);
  bp::Tensor x = bp::randn({2, 2, 3}, gen, bp::f64).requires_grad_();
  bp::Tensor gamma = bp::randn({2, 3}, gen, bp::f64, 1.0, 0.2).requires_grad_();
  bp::Tensor beta = bp::randn({2, 3}, gen, bp::f64).requires_grad_();
  // The layer without affine, then gamma and beta as inputs, so that all three are checked.
  auto fn = [&](const bp::Tensors& in) {
    bp::nn::LayerNorm layer({2, 3}, {.elementwise_affine = false, .dtype = bp::f64});
    return bp::add(bp::mul(layer(in[0]), in[1]), in[2]);
  };
  bp::gradcheck(fn, {x, gamma, beta});
  bp::gradgradcheck(fn, {x, gamma, beta});
  // And through the module's own (affine) parameters, normalising the last dimension only.
  bp::nn::LayerNorm ln(3, {.dtype = bp::f64});
  bp::nn::init::normal(ln.weight(), gen);
  bp::gradcheck([&](const bp::Tensors& in) { return ln(in[0]); }, {x});
  bp::gradgradcheck([&](const bp::Tensors& in) { return ln(in[0]); }, {x});
}

TEST(LayerNorm, F32AgreesWithF64) {
  bp::Generator gen(5);
  bp::Tensor x = bp::randn({7, 5}, gen, bp::f64);
  bp::nn::LayerNorm l64(5, {.dtype = bp::f64});
  bp::nn::LayerNorm l32(5);
  EXPECT_LT(bp::max_abs_diff(l32(bp::to_dtype(x, bp::f32)).to(bp::f64), l64(x)), 1e-5);
}

TEST(LayerNorm, ReprAndErrors) {
  bp::nn::LayerNorm ln({4, 8});
  EXPECT_EQ(ln.repr(), "LayerNorm([4, 8], eps=1e-05, elementwise_affine=true)");
  EXPECT_EQ(ln.weight().shape(), (bp::Shape{4, 8}));
  EXPECT_EQ(ln.named_parameters()[1].first, "bias");
  bp::nn::LayerNorm plain(8, {.elementwise_affine = false});
  EXPECT_TRUE(plain.parameters().empty());
  EXPECT_THAT(
      [&] {
        ln(bp::zeros({2, 8, 4}));
      },
      ::testing::ThrowsMessage<bp::ShapeError>(
          HasSubstr("LayerNorm([4, 8]): expected an input whose last dimensions are [4, 8], got [2, 8, 4]")));
  EXPECT_THAT(
      [&] {
        ln(bp::zeros({4, 8}, bp::f64));
      },
      ::testing::ThrowsMessage<bp::DTypeError>(HasSubstr("input is f64 but the layer is f32")));
  EXPECT_THAT([] { bp::nn::LayerNorm(bp::Shape{}); },
              ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("at least one dimension")));
  EXPECT_THAT(
      [] {
        bp::nn::LayerNorm(bp::Shape{3, 0});
      },
      ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("must be positive, got [3, 0]")));
  EXPECT_THAT([] { bp::nn::LayerNorm(3, {.eps = -1}); },
              ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("eps must be >= 0")));
}
