// Internal: convolution's unrolling (im2col, col2im), BatchNorm2d's per-channel loops and the 2x2 max pool,
// compiled for each instruction-set variant (conv_loops.inl, included per variant by conv_loops.cpp) and
// chosen by kernel_config().isa, so that the compiler vectorises them for the CPU. The variants give the same
// results up to rounding (AVX2 and AVX-512 may fuse a multiply and an add where the baseline rounds twice).
//
//   const auto& loops = kernels::conv_loops<float>();
//   loops.im2col(x, channels, geom, col);
#pragma once

#include <cstdint>

#include "kernels/conv.hpp"

namespace backprop::kernels {

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
  /// Over one channel: n planes of hw elements at p, p + stride, ...; sums in f64.
  double (*channel_sum)(const T* p, std::int64_t n, std::int64_t stride, std::int64_t hw);
  double (*channel_sq_dev)(const T* p, std::int64_t n, std::int64_t stride, std::int64_t hw, double mu);
  void (*channel_dy_sums)(const T* d, const T* p, std::int64_t n, std::int64_t stride, std::int64_t hw,
                          double mu, double& sdy, double& sdyx);
  void (*bn_apply)(const T* p, T* q, std::int64_t n, std::int64_t stride, std::int64_t hw, T m, T scale,
                   T shift);
  void (*bn_grad_apply)(const T* p, const T* d, T* q, std::int64_t n, std::int64_t stride, std::int64_t hw,
                        BnGradCoeffs<T> c);
  /// One output row of the 2x2, stride-2 max pool without padding: values and flat in-plane indices.
  void (*max_pool_2x2_row)(const T* r0, std::int64_t w, std::int64_t ow, T base, T* values, double* indices);
};

/// The loops of kernel_config().isa.
template <class T>
const ConvLoops<T>& conv_loops();

}  // namespace backprop::kernels
