// The optimisers' update loops, generic (see update_kernels.hpp). Included by update_kernels.cpp once per
// instruction-set variant, inside a `#pragma GCC target` region and an anonymous namespace, after
// <algorithm>, <cmath> and update_kernels.hpp: the loops are compiled and vectorised for that variant, with
// internal linkage.

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

template <class T>
constexpr UpdateLoops<T> make_loops() {
  return {.sgd_plain = &sgd_plain<T>,
          .sgd_momentum = {{&sgd_momentum<T, false, false>, &sgd_momentum<T, false, true>},
                           {&sgd_momentum<T, true, false>, &sgd_momentum<T, true, true>}},
          .adam = &adam<T>,
          .rmsprop = {{&rmsprop<T, false, false>, &rmsprop<T, false, true>},
                      {&rmsprop<T, true, false>, &rmsprop<T, true, true>}},
          .rprop = &rprop<T>};
}
