// The direct loops of single-channel groups (src/kernels/conv_loops.inl: a first layer on images, depthwise
// convolutions) against plain loops written from the definition, in f64 and f32: outputs and weight
// gradients for the shapes that take them (rows of at least 64 bytes), several channel blocks, kernels wider
// than tall, paddings on one side only, and groups; then gradcheck and gradgradcheck on such a shape.
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <cmath>
#include <string>
#include <vector>

#include "kernels/conv.hpp"
#include "kernels/conv_loops.hpp"
#include "util/close.hpp"

namespace bp = backprop;

namespace {

struct DirectCase {
  std::string name;
  std::int64_t n, groups, h, w, o, kh, kw, ph, pw;
};

std::vector<DirectCase> cases() {
  return {
      {"lenet_first_layer", 2, 1, 28, 28, 6, 5, 5, 2, 2},
      {"many_filters_two_channel_blocks", 2, 1, 20, 33, 20, 3, 3, 1, 1},
      {"wide_kernel_pad_columns_only", 3, 1, 9, 40, 3, 2, 7, 0, 3},
      {"depthwise", 2, 3, 17, 19, 3, 3, 3, 1, 1},
      {"two_filters_per_group_row_of_one_vector", 2, 2, 6, 16, 4, 3, 1, 0, 0},
  };
}

bp::kernels::ConvGeom geom(const DirectCase& c) {
  bp::kernels::ConvGeom g;
  g.n = c.n, g.c = c.groups, g.h = c.h, g.w = c.w, g.o = c.o, g.kh = c.kh, g.kw = c.kw, g.ph = c.ph,
  g.pw = c.pw, g.groups = c.groups;
  g.oh = c.h + 2 * c.ph - c.kh + 1;
  g.ow = c.w + 2 * c.pw - c.kw + 1;
  return g;
}

// y[s, o, i, j] = b[o] + sum over the kernel of w[o, 0, u, v] x[s, o / og, i + u - ph, j + v - pw].
std::vector<double> naive_forward(const bp::kernels::ConvGeom& g, const std::vector<double>& x,
                                  const std::vector<double>& w, const std::vector<double>& b) {
  const std::int64_t og = g.o / g.groups;
  std::vector<double> y(g.n * g.o * g.oh * g.ow);
  for (std::int64_t s = 0; s < g.n; ++s)
    for (std::int64_t o = 0; o < g.o; ++o)
      for (std::int64_t i = 0; i < g.oh; ++i)
        for (std::int64_t j = 0; j < g.ow; ++j) {
          double acc = b[o];
          for (std::int64_t u = 0; u < g.kh; ++u)
            for (std::int64_t v = 0; v < g.kw; ++v) {
              const std::int64_t r = i + u - g.ph, c = j + v - g.pw;
              if (r >= 0 && r < g.h && c >= 0 && c < g.w)
                acc += w[(o * g.kh + u) * g.kw + v] * x[((s * g.c + o / og) * g.h + r) * g.w + c];
            }
          y[((s * g.o + o) * g.oh + i) * g.ow + j] = acc;
        }
  return y;
}

// dw[o, 0, u, v] = sum over samples and outputs of dy[s, o, i, j] x[s, o / og, i + u - ph, j + v - pw].
std::vector<double> naive_weight_grad(const bp::kernels::ConvGeom& g, const std::vector<double>& x,
                                      const std::vector<double>& dy) {
  const std::int64_t og = g.o / g.groups;
  std::vector<double> dw(g.o * g.kh * g.kw, 0.0);
  for (std::int64_t s = 0; s < g.n; ++s)
    for (std::int64_t o = 0; o < g.o; ++o)
      for (std::int64_t u = 0; u < g.kh; ++u)
        for (std::int64_t v = 0; v < g.kw; ++v)
          for (std::int64_t i = 0; i < g.oh; ++i)
            for (std::int64_t j = 0; j < g.ow; ++j) {
              const std::int64_t r = i + u - g.ph, c = j + v - g.pw;
              if (r >= 0 && r < g.h && c >= 0 && c < g.w)
                dw[(o * g.kh + u) * g.kw + v] +=
                    dy[((s * g.o + o) * g.oh + i) * g.ow + j] * x[((s * g.c + o / og) * g.h + r) * g.w + c];
            }
  return dw;
}

void check(const DirectCase& c, bp::DType dtype, double tolerance) {
  SCOPED_TRACE(c.name + (dtype == bp::f32 ? " f32" : " f64"));
  const bp::kernels::ConvGeom g = geom(c);
  ASSERT_TRUE(bp::kernels::direct_conv_fits(g, bp::dtype_size(dtype)));  // the path under test
  bp::Generator gen(11);
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

TEST(Conv2dDirect, OutputsAndWeightGradientsEqualPlainLoopsF64) {
  for (const DirectCase& c : cases()) check(c, bp::f64, 1e-13);
}

TEST(Conv2dDirect, OutputsAndWeightGradientsEqualPlainLoopsF32) {
  for (const DirectCase& c : cases()) check(c, bp::f32, 1e-5);
}

TEST(Conv2dDirect, TakenOnlyWhereItFits) {
  DirectCase c{"", 1, 1, 8, 28, 6, 5, 5, 2, 2};
  EXPECT_TRUE(bp::kernels::direct_conv_fits(geom(c), 4));
  EXPECT_TRUE(bp::kernels::direct_wgrad_fits(geom(c), 4));
  c.o = 32;  // many filters: the weight gradient takes the GEMM
  EXPECT_TRUE(bp::kernels::direct_conv_fits(geom(c), 4));
  EXPECT_FALSE(bp::kernels::direct_wgrad_fits(geom(c), 4));
  c.w = 12;  // rows of 48 bytes in f32, 96 in f64
  EXPECT_FALSE(bp::kernels::direct_conv_fits(geom(c), 4));
  EXPECT_TRUE(bp::kernels::direct_conv_fits(geom(c), 8));
  bp::kernels::ConvGeom two_channels = geom({"", 1, 1, 8, 28, 6, 5, 5, 2, 2});
  two_channels.c = 2;
  EXPECT_FALSE(bp::kernels::direct_conv_fits(two_channels, 4));
}

TEST(Conv2dDirect, GradcheckAndGradgradcheck) {
  bp::Generator gen(2);
  bp::Tensor x = bp::randn({1, 2, 3, 8}, gen, bp::f64).requires_grad_();
  bp::Tensor w = bp::randn({4, 1, 3, 2}, gen, bp::f64).requires_grad_();
  bp::Tensor b = bp::randn({4}, gen, bp::f64).requires_grad_();
  auto fn = [](const bp::Tensors& in) { return bp::conv2d(in[0], in[1], in[2], 1, bp::Size2(1, 1), 1, 2); };
  ASSERT_TRUE(bp::kernels::direct_wgrad_fits({.n = 1,
                                              .c = 2,
                                              .h = 3,
                                              .w = 8,
                                              .o = 4,
                                              .kh = 3,
                                              .kw = 2,
                                              .ph = 1,
                                              .pw = 1,
                                              .groups = 2,
                                              .oh = 3,
                                              .ow = 9},
                                             8));
  EXPECT_TRUE(bp::gradcheck(fn, {x, w, b}).ok);
  EXPECT_TRUE(bp::gradgradcheck(fn, {x, w, b}).ok);
}

}  // namespace
