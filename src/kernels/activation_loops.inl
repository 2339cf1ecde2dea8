// ReLU's loops, generic (see activation_loops.hpp). Included by activation_loops.cpp once per instruction-set
// variant, inside a `#pragma GCC target` region and an anonymous namespace: compiled and vectorised for that
// variant, with internal linkage.

template <class T>
void relu(const T* __restrict x, T* __restrict y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) y[i] = x[i] > T(0) ? x[i] : T(0);
}

template <class T>
void relu_grad(const T* __restrict dy, const T* __restrict y, T* __restrict dx, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) dx[i] = dy[i] * (y[i] > T(0) ? T(1) : T(0)) * T(1);
}

template <class T>
constexpr ActivationLoops<T> make_loops() {
  return {relu<T>, relu_grad<T>};
}
