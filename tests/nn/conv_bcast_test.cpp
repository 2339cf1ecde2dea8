// The broadcast loops (src/kernels/conv_loops.inl: a vector of output channels per output pixel, for several
// input channels and at least 64 bytes of output channels per group) against plain loops written from the
// definition, in f64 and f32: outputs and weight gradients of LeNet-5's and the BN CNN's second layers,
// output channels that leave part of a vector or more than one block of vectors, rows longer than a tile,
// rows of a few pixels, kernels wider than a tile's taps, one-sided padding and groups; then gradcheck and
// gradgradcheck on such a shape.
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <string>
#include <vector>

#include "kernels/conv.hpp"
#include "kernels/conv_loops.hpp"
#include "util/close.hpp"

namespace bp = backprop;

namespace {

struct BcastCase {
  std::string name;
  std::int64_t n, groups, c, h, w, o, kh, kw, ph, pw;
};

std::vector<BcastCase> cases() {
  return {
      {"lenet_second_layer", 3, 1, 6, 14, 14, 16, 5, 5, 0, 0},
      {"bn_cnn_second_layer", 2, 1, 32, 14, 14, 64, 3, 3, 0, 0},
      {"same_padding_part_vector", 2, 1, 3, 10, 11, 20, 3, 3, 1, 1},
      {"several_channel_blocks_long_rows", 2, 1, 2, 6, 45, 80, 3, 3, 1, 1},
      {"wide_kernel_pad_columns_only", 2, 1, 3, 8, 20, 16, 2, 9, 0, 4},
      {"rows_of_three_pixels", 2, 1, 4, 3, 5, 16, 3, 3, 0, 0},
      {"groups", 2, 2, 4, 7, 9, 32, 3, 3, 1, 1},
  };
}

bp::kernels::ConvGeom geom(const BcastCase& c) {
  bp::kernels::ConvGeom g;
  g.n = c.n, g.c = c.c, g.h = c.h, g.w = c.w, g.o = c.o, g.kh = c.kh, g.kw = c.kw, g.ph = c.ph, g.pw = c.pw,
  g.groups = c.groups;
  g.oh = c.h + 2 * c.ph - c.kh + 1;
  g.ow = c.w + 2 * c.pw - c.kw + 1;
  return g;
}

// The input element output (i, j) of sample s sees through tap (u, v) of input channel ch; 0 in the padding.
double input_at(const bp::kernels::ConvGeom& g, const std::vector<double>& x, std::int64_t s, std::int64_t ch,
                std::int64_t i, std::int64_t j, std::int64_t u, std::int64_t v) {
  const std::int64_t r = i + u - g.ph, c = j + v - g.pw;
  return r >= 0 && r < g.h && c >= 0 && c < g.w ? x[((s * g.c + ch) * g.h + r) * g.w + c] : 0.0;
}

// y[s, o, i, j] = b[o] + sum over the group's channels and the kernel of w[o, ch, u, v] x[s, ., i + u - ph, .].
std::vector<double> naive_forward(const bp::kernels::ConvGeom& g, const std::vector<double>& x,
                                  const std::vector<double>& w, const std::vector<double>& b) {
  const std::int64_t og = g.o / g.groups, cg = g.c / g.groups;
  std::vector<double> y(g.n * g.o * g.oh * g.ow);
  for (std::int64_t s = 0; s < g.n; ++s)
    for (std::int64_t o = 0; o < g.o; ++o)
      for (std::int64_t i = 0; i < g.oh; ++i)
        for (std::int64_t j = 0; j < g.ow; ++j) {
          double acc = b[o];
          for (std::int64_t ch = 0; ch < cg; ++ch)
            for (std::int64_t u = 0; u < g.kh; ++u)
              for (std::int64_t v = 0; v < g.kw; ++v)
                acc += w[((o * cg + ch) * g.kh + u) * g.kw + v] *
                       input_at(g, x, s, o / og * cg + ch, i, j, u, v);
          y[((s * g.o + o) * g.oh + i) * g.ow + j] = acc;
        }
  return y;
}

// dw[o, ch, u, v] = sum over samples and outputs of dy[s, o, i, j] x[s, ., i + u - ph, j + v - pw].
std::vector<double> naive_weight_grad(const bp::kernels::ConvGeom& g, const std::vector<double>& x,
                                      const std::vector<double>& dy) {
  const std::int64_t og = g.o / g.groups, cg = g.c / g.groups;
  std::vector<double> dw(g.o * cg * g.kh * g.kw, 0.0);
  for (std::int64_t s = 0; s < g.n; ++s)
    for (std::int64_t o = 0; o < g.o; ++o)
      for (std::int64_t ch = 0; ch < cg; ++ch)
        for (std::int64_t u = 0; u < g.kh; ++u)
          for (std::int64_t v = 0; v < g.kw; ++v)
            for (std::int64_t i = 0; i < g.oh; ++i)
              for (std::int64_t j = 0; j < g.ow; ++j)
                dw[((o * cg + ch) * g.kh + u) * g.kw + v] += dy[((s * g.o + o) * g.oh + i) * g.ow + j] *
                                                             input_at(g, x, s, o / og * cg + ch, i, j, u, v);
  return dw;
}

void check(const BcastCase& c, bp::DType dtype, double tolerance) {
  SCOPED_TRACE(c.name + (dtype == bp::f32 ? " f32" : " f64"));
  const bp::kernels::ConvGeom g = geom(c);
  ASSERT_TRUE(bp::kernels::bcast_conv_fits(g, bp::dtype_size(dtype)));  // the path under test
  ASSERT_FALSE(bp::kernels::direct_conv_fits(g, bp::dtype_size(dtype)));
  bp::Generator gen(13);
  const bp::Tensor x = bp::randn(g.input_shape(), gen, dtype), w = bp::randn(g.weight_shape(), gen, dtype);
  const bp::Tensor b = bp::randn({g.o}, gen, dtype), dy = bp::randn(g.output_shape(), gen, dtype);
  const std::vector<double> want_y = naive_forward(g, x.to_vector(), w.to_vector(), b.to_vector());
  const std::vector<double> want_dw = naive_weight_grad(g, x.to_vector(), dy.to_vector());
  const bp::Tensor y = bp::conv2d(x, w, b, 1, bp::Size2(c.ph, c.pw), 1, c.groups);
  ASSERT_EQ(y.shape(), g.output_shape());
  EXPECT_LT(testutil::worst_relative(y.to_vector(), want_y), tolerance);
  bp::Tensor wg = w.detach().requires_grad_();
  const bp::Tensor y2 = bp::conv2d(x, wg, bp::Tensor(), 1, bp::Size2(c.ph, c.pw), 1, c.groups);
  const bp::Tensors dw = bp::grad({y2}, {wg}, {.grad_outputs = {dy}});
  EXPECT_LT(testutil::worst_relative(dw[0].to_vector(), want_dw), tolerance);
}

TEST(Conv2dBroadcast, OutputsAndWeightGradientsEqualPlainLoopsF64) {
  for (const BcastCase& c : cases()) check(c, bp::f64, 1e-12);
}

TEST(Conv2dBroadcast, OutputsAndWeightGradientsEqualPlainLoopsF32) {
  for (const BcastCase& c : cases()) check(c, bp::f32, 2e-5);
}

TEST(Conv2dBroadcast, TakenOnlyWhereItFits) {
  BcastCase c{"", 1, 1, 6, 14, 14, 16, 5, 5, 0, 0};
  EXPECT_TRUE(bp::kernels::bcast_conv_fits(geom(c), 4));
  c.o = 12;  // 48 bytes of f32 output channels: less than a vector; 96 bytes of f64
  EXPECT_FALSE(bp::kernels::bcast_conv_fits(geom(c), 4));
  EXPECT_TRUE(bp::kernels::bcast_conv_fits(geom(c), 8));
  c = {"", 1, 1, 1, 14, 14, 16, 5, 5, 0, 0};  // one input channel: the direct loops
  EXPECT_FALSE(bp::kernels::bcast_conv_fits(geom(c), 4));
  c = {"", 1, 1, 6, 14, 14, 16, 1, 1, 0, 0};  // pointwise: the GEMM on the input itself
  EXPECT_FALSE(bp::kernels::bcast_conv_fits(geom(c), 4));
  bp::kernels::ConvGeom strided = geom({"", 1, 1, 6, 14, 14, 16, 3, 3, 1, 1});
  strided.sh = strided.sw = 2;
  EXPECT_FALSE(bp::kernels::bcast_conv_fits(strided, 4));
  EXPECT_EQ(bp::kernels::bcast_pad(20, 4), 32);
  EXPECT_EQ(bp::kernels::bcast_pad(20, 8), 24);
}

TEST(Conv2dBroadcast, GradcheckAndGradgradcheck) {
  bp::Generator gen(3);
  bp::Tensor x = bp::randn({2, 2, 4, 5}, gen, bp::f64).requires_grad_();
  bp::Tensor w = bp::randn({8, 2, 3, 2}, gen, bp::f64).requires_grad_();
  bp::Tensor b = bp::randn({8}, gen, bp::f64).requires_grad_();
  auto fn = [](const bp::Tensors& in) { return bp::conv2d(in[0], in[1], in[2], 1, bp::Size2(1, 1)); };
  ASSERT_TRUE(bp::kernels::bcast_conv_fits(
      {.n = 2, .c = 2, .h = 4, .w = 5, .o = 8, .kh = 3, .kw = 2, .ph = 1, .pw = 1, .oh = 4, .ow = 6}, 8));
  EXPECT_TRUE(bp::gradcheck(fn, {x, w, b}).ok);
  EXPECT_TRUE(bp::gradgradcheck(fn, {x, w, b}).ok);
}

}  // namespace
