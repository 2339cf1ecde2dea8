// Internal: the loops of a CNN's layers (convolution's unrolling and direct loops, BatchNorm2d's per-channel
// loops, the 2x2 max pool, ReLU), compiled for each instruction-set variant (conv_loops.inl, included per
// variant by conv_loops.cpp) and chosen by kernel_config().isa, so that the compiler vectorises them for the
// CPU. The variants give the same results up to rounding (AVX2 and AVX-512 may fuse a multiply and an add where
// the baseline rounds twice); ReLU's and the max pool's, which round nothing, give the same bits.
//
//   const auto& loops = kernels::conv_loops<float>();
//   loops.im2col(x, channels, geom, col);
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/conv.hpp"

namespace backprop::kernels {

/// BatchNorm2d's forward coefficients of one channel (see bn_apply).
template <class T>
struct BnCoeffs {
  T m, scale, shift;
};

/// BatchNorm2d's input-gradient coefficients of one channel (see bn_grad_apply).
template <class T>
struct BnGradCoeffs {
  T k, a, m, iv, b;
};

template <class T>
struct ConvLoops {
  /// col [cg * kh * kw, oh * ow] from the cg channels at x (each h x w), zero where a window leaves the input.
  void (*im2col)(const T* x, std::int64_t cg, const ConvGeom& g, T* col);
  /// The adjoint of im2col: adds each column entry back to the input position it was read from.
  void (*col2im)(const T* col, std::int64_t cg, const ConvGeom& g, T* x);
  /// BatchNorm2d's loops, over the channels [c0, c1) of p [n, c, hw], sample by sample; sums in f64, arrays
  /// indexed by the channel. out[ch] = sum of channel ch.
  void (*channel_sums)(const T* p, std::int64_t n, std::int64_t c, std::int64_t hw, std::int64_t c0,
                       std::int64_t c1, double* out);
  /// out[ch] = sum of (x - mu[ch])^2 over channel ch.
  void (*channel_sq_devs)(const T* p, std::int64_t n, std::int64_t c, std::int64_t hw, std::int64_t c0,
                          std::int64_t c1, const double* mu, double* out);
  /// sdy[ch] = sum of dy, sdyx[ch] = sum of dy (x - mu[ch]) over channel ch (d is dy, p is x). With r (the
  /// output of a ReLU fused after the BatchNorm2d; null: none), dy (r > 0) in place of dy.
  void (*channel_dy_sums)(const T* d, const T* r, const T* p, std::int64_t n, std::int64_t c, std::int64_t hw,
                          std::int64_t c0, std::int64_t c1, const double* mu, double* sdy, double* sdyx);
  /// q = (p - m) scale + shift with channel ch's k[ch]; with relu, max(q, 0).
  void (*bn_apply)(const T* p, T* q, std::int64_t n, std::int64_t c, std::int64_t hw, std::int64_t c0,
                   std::int64_t c1, const BnCoeffs<T>* k, bool relu);
  /// q = k (d - a - (p - m) iv b) with channel ch's k[ch]; with r, d (r > 0) in place of d.
  void (*bn_grad_apply)(const T* p, const T* d, const T* r, T* q, std::int64_t n, std::int64_t c,
                        std::int64_t hw, std::int64_t c0, std::int64_t c1, const BnGradCoeffs<T>* k);
  /// One output row of the 2x2, stride-2 max pool without padding: values and flat in-plane indices.
  void (*max_pool_2x2_row)(const T* r0, std::int64_t w, std::int64_t ow, T base, T* values, double* indices);
  /// BatchNorm2d -> ReLU -> 2x2, stride-2 max pool (floor) in one, over channels [c0, c1) of p [n, c, h, w]:
  /// y [n, c, h / 2, w / 2] with channel ch's k[ch] as in bn_apply.
  void (*bn_relu_pool)(const T* p, T* y, std::int64_t n, std::int64_t c, std::int64_t h, std::int64_t w,
                       std::int64_t c0, std::int64_t c1, const BnCoeffs<T>* k);
  /// Its backward's sums: channel_dy_sums of the full-size gradient g, which is the pooled gradient d at each
  /// window's first maximum where that is positive and zero elsewhere (recomputed from p and k).
  void (*bn_relu_pool_dy_sums)(const T* d, const T* p, std::int64_t n, std::int64_t c, std::int64_t h,
                               std::int64_t w, std::int64_t c0, std::int64_t c1, const BnCoeffs<T>* k,
                               const double* mu, double* sdy, double* sdyx);
  /// q = gk (g - a - (p - m) iv b) as bn_grad_apply, with g routed from d as in bn_relu_pool_dy_sums.
  void (*bn_relu_pool_grad)(const T* p, const T* d, T* q, std::int64_t n, std::int64_t c, std::int64_t h,
                            std::int64_t w, std::int64_t c0, std::int64_t c1, const BnCoeffs<T>* k,
                            const BnGradCoeffs<T>* gk);
  /// A stride-1, undilated convolution of groups with one input channel each (direct_conv_fits), without
  /// unrolling: y [samples][og, oh, ow] (y_stride apart) from one input plane per sample (x_stride apart), og
  /// filters w [og, 1, kh, kw] and their bias b (null: none). `scratch`: direct_scratch(g, og) elements.
  void (*direct_conv)(const T* x, std::int64_t x_stride, const T* w, const T* b, std::int64_t samples,
                      std::int64_t og, const ConvGeom& g, T* y, std::int64_t y_stride, T* scratch);
  /// Its weight gradient: dw [og, 1, kh, kw] += sum over the samples of the correlation of the input plane
  /// with the og output gradients dy (dy_stride apart). `scratch`: direct_scratch(g, og) elements.
  void (*direct_wgrad)(const T* x, std::int64_t x_stride, const T* dy, std::int64_t dy_stride,
                       std::int64_t samples, std::int64_t og, const ConvGeom& g, T* dw, T* scratch);
  /// A stride-1, undilated convolution with the output channels of each pixel in vectors (bcast_conv_fits):
  /// out [oh * ow][opad] (pixel-major) from one sample's cg channels x (h x w each), the packed weight
  /// wp [cg * kh * kw][opad] (zero past the group's channels) and bias [opad]. opad: bcast_pad(og).
  /// `scratch`: bcast_scratch(g, cg) elements.
  void (*bcast_conv)(const T* x, std::int64_t cg, const ConvGeom& g, const T* wp, std::int64_t opad,
                     const T* bias, T* out, T* scratch);
  /// Its weight gradient: acc [cg * kh * kw][opad] += one sample's dyT [oh * ow][opad] (the output gradient,
  /// pixel-major) times the input windows.
  void (*bcast_wgrad)(const T* x, std::int64_t cg, const ConvGeom& g, const T* dyT, std::int64_t opad, T* acc,
                      T* scratch);
  /// ReLU (also an MLP's): y[i] = x[i] > 0 ? x[i] : 0 over n elements.
  void (*relu)(const T* x, T* y, std::int64_t n);
  /// Its backward: dx[i] = dy[i] * (y[i] > 0 ? 1 : 0) * 1, as masked_scale(dy, relu_mask(y), 1) computes it
  /// (NaN and infinite gradients times a zero mask give NaN, as in the composed ops).
  void (*relu_grad)(const T* dy, const T* y, T* dx, std::int64_t n);
};

/// Whether the direct loops compute the forward: one input channel per group, stride 1, dilation 1, and output
/// rows of at least 64 bytes (shorter rows leave most of a vector idle; the GEMM measured faster there).
inline bool direct_conv_fits(const ConvGeom& g, std::size_t elem_bytes) {
  return g.c == g.groups && g.sh == 1 && g.sw == 1 && g.dh == 1 && g.dw == 1 &&
         g.ow * static_cast<std::int64_t>(elem_bytes) >= 64;
}

/// Whether they compute the weight gradient too: up to 8 filters per group (depthwise, a first layer of a
/// few filters); with more, the GEMM over the unrolled input measured faster.
inline bool direct_wgrad_fits(const ConvGeom& g, std::size_t elem_bytes) {
  return direct_conv_fits(g, elem_bytes) && g.o / g.groups <= 8;
}

/// Whether the broadcast loops compute the forward and the weight gradient: stride 1, undilated, several input
/// channels and at least 64 bytes of output channels per group (a vector's worth for every variant), and a
/// kernel larger than 1 x 1 (a pointwise convolution multiplies the input itself).
inline bool bcast_conv_fits(const ConvGeom& g, std::size_t elem_bytes) {
  const std::int64_t cg = g.c / g.groups, og = g.o / g.groups;
  return cg > 1 && og * static_cast<std::int64_t>(elem_bytes) >= 64 && g.sh == 1 && g.sw == 1 && g.dh == 1 &&
         g.dw == 1 && g.kh * g.kw > 1;
}

/// The output channels of a group padded to a multiple of 64 bytes: the broadcast loops' row length.
inline std::int64_t bcast_pad(std::int64_t og, std::size_t elem_bytes) {
  const auto per = 64 / static_cast<std::int64_t>(elem_bytes);
  return (og + per - 1) / per * per;
}

/// Scratch elements of the broadcast loops: cg padded planes (none without padding).
inline std::int64_t bcast_scratch(const ConvGeom& g, std::int64_t cg) {
  return g.ph == 0 && g.pw == 0 ? 0 : cg * (g.oh + g.kh - 1) * (g.ow + g.kw - 1);
}

/// Scratch elements of the direct loops for og channels, for any variant's vector width (up to 64 bytes).
template <class T>
std::int64_t direct_scratch(const ConvGeom& g, std::int64_t og) {
  constexpr std::int64_t lanes = 64 / sizeof(T);
  const std::int64_t row = (g.ow + lanes - 1) / lanes * lanes;
  return (g.oh + g.kh - 1) * (row + g.kw - 1) + og * g.oh * row + og * g.kh * g.kw * lanes;
}

/// The loops of kernel_config().isa.
template <class T>
const ConvLoops<T>& conv_loops();

}  // namespace backprop::kernels
