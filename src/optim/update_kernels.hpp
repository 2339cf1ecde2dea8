// Internal: the element-wise update loops of the optimisers, compiled for each instruction-set variant
// (update_loops.inl, included per variant by update_kernels.cpp) and chosen by kernel_config().isa, so that
// the compiler vectorises them for the CPU (every loop-invariant choice is a template parameter, not a branch
// in the loop). The variants give the same results up to rounding (AVX2 and AVX-512 may fuse a multiply and
// an add where the baseline rounds twice).
//
//   const auto& loops = optim::kernels::update_loops<float>();
//   loops.adam(w, g, m, v, n, coeffs);
#pragma once

#include <cstdint>

namespace backprop::optim::kernels {

template <class T>
struct SgdCoeffs {
  T lr, weight_decay, momentum, one_minus_dampening;
};

template <class T>
struct AdamCoeffs {
  T beta1, beta2, one_minus_beta1, one_minus_beta2, l2, shrink, step_size, bias2_sqrt, eps;
};

template <class T>
struct RmspropCoeffs {
  T lr, alpha, one_minus_alpha, eps, weight_decay, momentum;
};

template <class T>
struct RpropCoeffs {
  T eta_plus, eta_minus, step_min, step_max;
};

/// The update loops of one variant, on raw restrict pointers over [0, n).
template <class T>
struct UpdateLoops {
  // Without momentum: w -= lr (g + wd w).
  void (*sgd_plain)(T* w, const T* g, std::int64_t n, SgdCoeffs<T> c);
  // [first][nesterov]: with momentum, the first step (buf = d) or a later one.
  void (*sgd_momentum[2][2])(T* w, const T* g, T* buf, std::int64_t n, SgdCoeffs<T> c);
  void (*adam)(T* w, const T* g, T* m, T* v, std::int64_t n, AdamCoeffs<T> c);
  // [centered][momentum]
  void (*rmsprop[2][2])(T* w, const T* g, T* sq, T* grad_avg, T* buf, std::int64_t n, RmspropCoeffs<T> c);
  void (*rprop)(T* w, const T* g, T* prev, T* size, std::int64_t n, RpropCoeffs<T> c);
};

/// The loops of the variant kernel_config().isa names (float and double).
template <class T>
const UpdateLoops<T>& update_loops();
template <>
const UpdateLoops<float>& update_loops<float>();
template <>
const UpdateLoops<double>& update_loops<double>();

}  // namespace backprop::optim::kernels
