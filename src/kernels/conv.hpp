// Internal CPU kernels of convolution and pooling on NCHW tensors (no autograd; src/ops/conv.cpp records them).
#pragma once

#include <backprop/tensor.hpp>
#include <cstdint>
#include <vector>

namespace backprop::kernels {

/// The geometry of one 2-D convolution: input [n, c, h, w], weight [o, c / groups, kh, kw], output
/// [n, o, oh, ow]. oh and ow are stored, not derived, so a transposed convolution with output_padding (an
/// input a few rows larger than the output reaches) uses the same geometry.
struct ConvGeom {
  std::int64_t n = 0, c = 0, h = 0, w = 0;
  std::int64_t o = 0, kh = 1, kw = 1;
  std::int64_t sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1, groups = 1;
  std::int64_t oh = 0, ow = 0;
  Shape input_shape() const { return {n, c, h, w}; }
  Shape weight_shape() const { return {o, c / groups, kh, kw}; }
  Shape output_shape() const { return {n, o, oh, ow}; }
};

/// y = conv(x, weight) + bias (bias may be undefined), y of geom.output_shape().
Tensor conv2d_forward(const Tensor& x, const Tensor& weight, const Tensor& bias, const ConvGeom& geom);
/// The adjoint in the input: dx [n, c, h, w] from dy [n, o, oh, ow] (a transposed convolution).
Tensor conv2d_input_grad(const Tensor& dy, const Tensor& weight, const ConvGeom& geom);
/// The adjoint in the weight: dw [o, c / groups, kh, kw] = the correlation of x with dy. Summed in a fixed
/// order of sample blocks, so the result does not depend on the thread count.
Tensor conv2d_weight_grad(const Tensor& x, const Tensor& dy, const ConvGeom& geom);

/// A max pooling's geometry on [n*c planes of h x w] -> oh x ow.
struct PoolGeom {
  std::int64_t planes = 0, h = 0, w = 0, oh = 0, ow = 0;
  std::int64_t kh = 1, kw = 1, sh = 1, sw = 1, ph = 0, pw = 0, dh = 1, dw = 1;
};
/// Values (x's dtype) and flat in-plane indices (f64) of each window's maximum; y and indices have the
/// output shape `out`.
void max_pool2d(const Tensor& x, const PoolGeom& geom, const Shape& out, Tensor& values, Tensor& indices);
/// dx [in_shape] zero but for dy added at the planes' `indices` (max pooling's backward).
Tensor pool_scatter(const Tensor& dy, const Tensor& indices, const Shape& in_shape);
/// y[i] = x's plane at indices[i] (the adjoint of pool_scatter); y has indices' shape.
Tensor pool_gather(const Tensor& x, const Tensor& indices);

/// One averaging window along a dim: input positions [begin, end), and the window's share of the divisor.
struct Window {
  std::int64_t begin = 0, end = 0, count = 1;
};
/// Averaging windows of every output row and column; the divisor of output (i, j) is rows[i].count *
/// cols[j].count.
struct AvgGeom {
  std::int64_t h = 0, w = 0;
  std::vector<Window> rows, cols;
};
/// y [planes..., rows, cols] = the mean of each window of x [planes..., h, w].
Tensor avg_pool2d(const Tensor& x, const AvgGeom& geom);
/// The adjoint: dx [planes..., h, w] with dy / divisor added over each window.
Tensor avg_pool2d_adjoint(const Tensor& dy, const AvgGeom& geom);

/// What a training-mode batch normalisation's kernels apply after it: nothing, a ReLU, or a ReLU and then a
/// 2x2, stride-2 max pool without padding (floor: an odd last row or column is in no window).
enum class BnEpilogue { none, relu, relu_max_pool };

/// Training-mode batch normalisation of x [N, C, H, W] with the statistics of each channel over N, H and W:
/// y = (x - mean) invstd gamma + beta (gamma and beta may be undefined: 1 and 0). mean, var (biased) and
/// invstd = 1 / sqrt(var + eps) come back as f64 [C], summed in f64 whatever x's dtype. With `after`, the
/// output is max(y, 0), or max_pool2d(max(y, 0), 2) of shape [N, C, H / 2, W / 2] (H, W >= 2).
Tensor batch_norm_forward(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps, Tensor& mean,
                          Tensor& var, Tensor& invstd, BnEpilogue after = BnEpilogue::none);
/// Its gradients in two passes: dx = gamma invstd (dy - mean(dy) - xhat mean(dy xhat)), dgamma = sum(dy xhat),
/// dbeta = sum(dy) (sums and means per channel over N, H, W; xhat = (x - mean) invstd). `after` is the
/// forward's: with relu, dy is the ReLU's output gradient and dy (relu_out > 0) (relu_out: the forward's
/// output) goes into the formulas; with relu_max_pool, dy is the pooled gradient [N, C, H / 2, W / 2], each
/// window's ReLU values are recomputed from x, gamma and beta as the forward formed them, and dy goes to the
/// window's first maximum where that is positive (max_pool2d's and relu's backward), zero elsewhere.
void batch_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& gamma, const Tensor& beta,
                         const Tensor& mean, const Tensor& invstd, Tensor& dx, Tensor& dgamma, Tensor& dbeta,
                         BnEpilogue after = BnEpilogue::none, const Tensor& relu_out = Tensor());

}  // namespace backprop::kernels
