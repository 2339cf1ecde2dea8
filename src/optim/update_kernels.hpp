// Internal: the element-wise update loops of the optimisers, on raw restrict pointers over [0, n), so that
// the compiler vectorises them (every loop-invariant choice is a template parameter, not a branch in the
// loop).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

namespace backprop::optim::kernels {

template <class T>
struct SgdCoeffs {
  T lr, weight_decay, momentum, one_minus_dampening;
};

// Without momentum: w -= lr (g + wd w).
template <class T>
void sgd_plain(T* __restrict w, const T* __restrict g, std::int64_t n, SgdCoeffs<T> c) {
  for (std::int64_t j = 0; j < n; ++j) w[j] -= c.lr * (g[j] + c.weight_decay * w[j]);
}

template <class T, bool First, bool Nesterov>
void sgd_momentum(T* __restrict w, const T* __restrict g, T* __restrict buf, std::int64_t n, SgdCoeffs<T> c) {
  for (std::int64_t j = 0; j < n; ++j) {
    const T d = g[j] + c.weight_decay * w[j];
    const T b = First ? d : c.momentum * buf[j] + c.one_minus_dampening * d;
    buf[j] = b;
    w[j] -= c.lr * (Nesterov ? d + c.momentum * b : b);
  }
}

template <class T>
struct AdamCoeffs {
  T beta1, beta2, one_minus_beta1, one_minus_beta2, l2, shrink, step_size, bias2_sqrt, eps;
};

template <class T>
void adam(T* __restrict w, const T* __restrict g, T* __restrict m, T* __restrict v, std::int64_t n,
          AdamCoeffs<T> c) {
  for (std::int64_t j = 0; j < n; ++j) {
    const T d = g[j] + c.l2 * w[j];
    const T mj = c.beta1 * m[j] + c.one_minus_beta1 * d;
    const T vj = c.beta2 * v[j] + c.one_minus_beta2 * d * d;
    m[j] = mj;
    v[j] = vj;
    w[j] = w[j] * c.shrink - c.step_size * mj / (std::sqrt(vj) / c.bias2_sqrt + c.eps);
  }
}

template <class T>
struct RmspropCoeffs {
  T lr, alpha, one_minus_alpha, eps, weight_decay, momentum;
};

template <class T, bool Centered, bool Momentum>
void rmsprop(T* __restrict w, const T* __restrict g, T* __restrict sq, T* __restrict grad_avg,
             T* __restrict buf, std::int64_t n, RmspropCoeffs<T> c) {
  for (std::int64_t j = 0; j < n; ++j) {
    const T d = g[j] + c.weight_decay * w[j];
    const T s = c.alpha * sq[j] + c.one_minus_alpha * d * d;
    sq[j] = s;
    T var = s;
    if constexpr (Centered) {
      const T a = c.alpha * grad_avg[j] + c.one_minus_alpha * d;
      grad_avg[j] = a;
      var = std::max(s - a * a, T(0));  // >= 0 exactly; rounding could make it slightly negative
    }
    const T step = d / (std::sqrt(var) + c.eps);
    if constexpr (Momentum) {
      const T b = c.momentum * buf[j] + step;
      buf[j] = b;
      w[j] -= c.lr * b;
    } else {
      w[j] -= c.lr * step;
    }
  }
}

template <class T>
struct RpropCoeffs {
  T eta_plus, eta_minus, step_min, step_max;
};

// Written with selects rather than branches so that it vectorises.
template <class T>
void rprop(T* __restrict w, const T* __restrict g, T* __restrict prev, T* __restrict size, std::int64_t n,
           RpropCoeffs<T> c) {
  for (std::int64_t j = 0; j < n; ++j) {
    const T agree = g[j] * prev[j];
    const T factor = agree > T(0) ? c.eta_plus : (agree < T(0) ? c.eta_minus : T(1));
    const T s = std::min(std::max(size[j] * factor, c.step_min), c.step_max);
    const T d = agree < T(0) ? T(0) : g[j];
    size[j] = s;
    w[j] -= (d > T(0) ? s : (d < T(0) ? -s : T(0)));
    prev[j] = d;
  }
}

}  // namespace backprop::optim::kernels
