// Three-input broadcasting kernels: where (select by a condition) and clamp with tensor bounds, with the 0/1
// masks of the clamp's derivative.
#include <algorithm>

#include "kernels/kernels.hpp"
#include "kernels/parallel.hpp"

namespace backprop::kernels {
namespace {

/// Strides of a contiguous `shape` right-aligned to `out`, 0 along dims it is broadcast over.
std::vector<std::int64_t> strides_in(const Shape& shape, const Shape& out) {
  std::vector<std::int64_t> strides(out.size(), 0);
  std::int64_t s = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    strides[i + out.size() - shape.size()] = shape[i] == 1 ? 0 : s;
    s *= shape[i];
  }
  return strides;
}

/// out[i] = f(a[i], b[i], c[i]) with a, b, c broadcast to out's shape, one row of the last dim at a time.
template <class T, class F>
void ternary_typed(const Tensor& a_in, const Tensor& b_in, const Tensor& c_in, Tensor& out, F f) {
  const Tensor a = dense(a_in), b = dense(b_in), c = dense(c_in);
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  const T* pc = c.data<T>();
  T* po = out.data<T>();
  const Shape& so = out.shape();
  if (so.empty()) {
    po[0] = f(pa[0], pb[0], pc[0]);
    return;
  }
  const std::vector<std::int64_t> sa = strides_in(a.shape(), so), sb = strides_in(b.shape(), so),
                                  sc = strides_in(c.shape(), so);
  const std::int64_t inner = so.back(), rows = inner == 0 ? 0 : out.numel() / inner;
  const std::int64_t ia = sa.back(), ib = sb.back(), ic = sc.back();
  parallel_range(rows, std::max<std::int64_t>(1, kParallelThreshold / std::max<std::int64_t>(inner, 1)),
                 [&](std::int64_t r0, std::int64_t r1) {
                   for (std::int64_t r = r0; r < r1; ++r) {
                     std::int64_t rem = r, oa = 0, ob = 0, oc = 0;
                     for (std::size_t d = so.size() - 1; d-- > 0;) {
                       const std::int64_t i = rem % so[d];
                       rem /= so[d];
                       oa += i * sa[d];
                       ob += i * sb[d];
                       oc += i * sc[d];
                     }
                     T* ro = po + r * inner;
                     for (std::int64_t j = 0; j < inner; ++j)
                       ro[j] = f(pa[oa + j * ia], pb[ob + j * ib], pc[oc + j * ic]);
                   }
                 });
}

}  // namespace

Tensor ternary(Ternary op, const Tensor& a, const Tensor& b, const Tensor& c) {
  const Shape shape = broadcast_shapes(broadcast_shapes(a.shape(), b.shape()), c.shape());
  Tensor out(shape, a.dtype());
  dispatch(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    switch (op) {
      case Ternary::where:  // a is the condition
        return ternary_typed<T>(a, b, c, out, [](T m, T x, T y) { return m != T(0) ? x : y; });
      case Ternary::clamp:  // NaN in x stays NaN, as in the scalar clamp
        return ternary_typed<T>(a, b, c, out, [](T x, T lo, T hi) { return std::min(std::max(x, lo), hi); });
      case Ternary::clamp_pass:
        return ternary_typed<T>(a, b, c, out,
                                [](T x, T lo, T hi) { return x >= lo && x <= hi ? T(1) : T(0); });
      case Ternary::clamp_below:
        return ternary_typed<T>(a, b, c, out,
                                [](T x, T lo, T hi) { return x < lo && lo < hi ? T(1) : T(0); });
      case Ternary::clamp_above:
        return ternary_typed<T>(a, b, c, out,
                                [](T x, T lo, T hi) { return x > hi || hi < lo ? T(1) : T(0); });
    }
  });
  return out;
}

Tensor nonzero_mask(const Tensor& cond_in, DType dtype) {
  const Tensor cond = dense(cond_in);
  // Floating-point conditions are read in their own dtype (a tiny f64 value must not round to an f32 zero);
  // any other element type is converted first, which keeps zero and non-zero apart.
  if (cond.dtype() != f32 && cond.dtype() != f64) return nonzero_mask(convert(cond, dtype), dtype);
  Tensor mask(cond.shape(), cond.dtype());
  dispatch(cond.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* pc = cond.data<T>();
    T* pm = mask.data<T>();
    parallel_range(cond.numel(), kParallelThreshold, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) pm[i] = pc[i] != T(0) ? T(1) : T(0);  // NaN counts as true
    });
  });
  return mask.dtype() == dtype ? mask : convert(mask, dtype);
}

}  // namespace backprop::kernels
