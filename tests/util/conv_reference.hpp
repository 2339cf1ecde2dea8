// conv2d's forward and weight gradient from the definition, in plain loops over doubles, and a check of the
// library's conv2d against them for one stride-1, undilated shape: the reference behind the tests of the
// shape-chosen convolution loops (direct, broadcast).
#pragma once

#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <string>
#include <vector>

#include "kernels/conv.hpp"
#include "util/close.hpp"

namespace testutil {

/// A stride-1, undilated convolution: n samples of c channels (h x w) through o filters (kh x kw) in `groups`
/// groups, padded by ph rows and pw columns on each side.
struct ConvCase {
  std::string name;
  std::int64_t n, groups, c, h, w, o, kh, kw, ph, pw;
};

inline backprop::kernels::ConvGeom conv_geom(const ConvCase& c) {
  backprop::kernels::ConvGeom g;
  g.n = c.n, g.c = c.c, g.h = c.h, g.w = c.w, g.o = c.o, g.kh = c.kh, g.kw = c.kw, g.ph = c.ph, g.pw = c.pw,
  g.groups = c.groups;
  g.oh = c.h + 2 * c.ph - c.kh + 1;
  g.ow = c.w + 2 * c.pw - c.kw + 1;
  return g;
}

/// The input element that output (i, j) of sample s sees through tap (u, v) of input channel ch; 0 in the
/// padding.
inline double input_at(const backprop::kernels::ConvGeom& g, const std::vector<double>& x, std::int64_t s,
                       std::int64_t ch, std::int64_t i, std::int64_t j, std::int64_t u, std::int64_t v) {
  const std::int64_t r = i + u - g.ph, c = j + v - g.pw;
  return r >= 0 && r < g.h && c >= 0 && c < g.w ? x[((s * g.c + ch) * g.h + r) * g.w + c] : 0.0;
}

/// y[s, o, i, j] = b[o] + the sum over the group's channels ch and the taps of w[o, ch, u, v] x[s, ., i + u - ph,
/// j + v - pw].
inline std::vector<double> plain_conv_forward(const backprop::kernels::ConvGeom& g,
                                              const std::vector<double>& x, const std::vector<double>& w,
                                              const std::vector<double>& b) {
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

/// dw[o, ch, u, v] = the sum over samples and outputs of dy[s, o, i, j] x[s, ., i + u - ph, j + v - pw].
inline std::vector<double> plain_conv_weight_grad(const backprop::kernels::ConvGeom& g,
                                                  const std::vector<double>& x,
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

/// conv2d's output and weight gradient for case c against the plain loops, within `tolerance` (worst
/// relative error).
inline void expect_conv_equals_plain_loops(const ConvCase& c, backprop::DType dtype, double tolerance) {
  namespace bp = backprop;
  const bp::kernels::ConvGeom g = conv_geom(c);
  bp::Generator gen(11);
  const bp::Tensor x = bp::randn(g.input_shape(), gen, dtype), w = bp::randn(g.weight_shape(), gen, dtype);
  const bp::Tensor b = bp::randn({g.o}, gen, dtype), dy = bp::randn(g.output_shape(), gen, dtype);
  const std::vector<double> want_y = plain_conv_forward(g, x.to_vector(), w.to_vector(), b.to_vector());
  const std::vector<double> want_dw = plain_conv_weight_grad(g, x.to_vector(), dy.to_vector());
  const bp::Tensor y = bp::conv2d(x, w, b, 1, bp::Size2(c.ph, c.pw), 1, c.groups);
  ASSERT_EQ(y.shape(), g.output_shape());
  EXPECT_LT(worst_relative(y.to_vector(), want_y), tolerance);
  bp::Tensor wg = w.detach().requires_grad_();
  const bp::Tensor y2 = bp::conv2d(x, wg, bp::Tensor(), 1, bp::Size2(c.ph, c.pw), 1, c.groups);
  const bp::Tensors dw = bp::grad({y2}, {wg}, {.grad_outputs = {dy}});
  EXPECT_LT(worst_relative(dw[0].to_vector(), want_dw), tolerance);
}

}  // namespace testutil
