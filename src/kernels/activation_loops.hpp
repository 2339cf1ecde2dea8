// Internal: ReLU's forward and backward loops, compiled for each instruction-set variant (activation_loops.inl,
// included per variant by activation_loops.cpp) and chosen by kernel_config().isa, as conv_loops.hpp's are.
// They stream a network's largest activations; the portable build would otherwise vectorise them for SSE2
// only. Every variant gives the same bits (a comparison and a multiplication by 0 or 1 round nothing).
//
//   kernels::activation_loops<float>().relu_grad(dy, y, dx, n);
#pragma once

#include <cstdint>

namespace backprop::kernels {

template <class T>
struct ActivationLoops {
  /// y[i] = x[i] > 0 ? x[i] : 0.
  void (*relu)(const T* x, T* y, std::int64_t n);
  /// dx[i] = dy[i] * (y[i] > 0 ? 1 : 0) * 1, as masked_scale(dy, relu_mask(y), 1) computes it (NaN and
  /// infinite gradients times a zero mask give NaN, as in the composed ops).
  void (*relu_grad)(const T* dy, const T* y, T* dx, std::int64_t n);
};

/// The loops of kernel_config().isa.
template <class T>
const ActivationLoops<T>& activation_loops();

}  // namespace backprop::kernels
