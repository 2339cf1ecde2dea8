// Comparisons and logical ops: any dtype in, bool_ out, never recorded by autograd (their gradient is zero).
#include <algorithm>
#include <backprop/ops.hpp>
#include <functional>

#include "kernels/kernels.hpp"

namespace backprop {

namespace {
/// The dtype two operands are compared in: their own when equal, else f64 if either is a float, else i64.
DType common_dtype(DType a, DType b) {
  if (a == b) return a;
  return is_floating(a) || is_floating(b) ? f64 : i64;
}

/// a and b converted to `dtype` and broadcast to `shape` (kernels only: nothing is recorded).
Tensor prepare(const Tensor& t, DType dtype, const Shape& shape) {
  const Tensor c = t.dtype() == dtype ? t : kernels::convert(t, dtype);
  return kernels::dense(c.shape() == shape ? c : kernels::broadcast_to(c, shape));
}

template <class Cmp>
Tensor compare(const char* op, const Tensor& a, const Tensor& b, Cmp cmp) {
  BP_CHECK(a.defined() && b.defined(), ValueError, op, ": undefined operand");
  const Shape shape = a.shape() == b.shape() ? a.shape() : broadcast_shapes(a.shape(), b.shape(), op);
  const DType dt = common_dtype(a.dtype(), b.dtype());
  const Tensor x = prepare(a, dt, shape), y = prepare(b, dt, shape);
  Tensor out(shape, bool_);
  bool* po = out.data<bool>();
  dispatch_all(dt, [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    const T* py = y.data<T>();
    for (std::int64_t i = 0; i < out.numel(); ++i) po[i] = cmp(px[i], py[i]);
  });
  return out;
}

template <class Cmp>
Tensor compare_scalar(const Tensor& a, double b, Cmp cmp) {
  BP_CHECK(a.defined(), ValueError, "comparison with a scalar: undefined operand");
  Tensor out(a.shape(), bool_);
  bool* po = out.data<bool>();
  const Tensor ad = kernels::dense(a);
  dispatch_all(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* pa = ad.data<T>();
    for (std::int64_t i = 0; i < out.numel(); ++i) po[i] = cmp(static_cast<double>(pa[i]), b);
  });
  return out;
}

/// x as bool_ (x != 0), without recording.
Tensor truth(const Tensor& x) {
  return x.dtype() == bool_ ? x : kernels::convert(x, bool_);
}
}  // namespace

Tensor eq(const Tensor& a, const Tensor& b) {
  return compare("eq", a, b, std::equal_to<>());
}
Tensor ne(const Tensor& a, const Tensor& b) {
  return compare("ne", a, b, std::not_equal_to<>());
}
Tensor lt(const Tensor& a, const Tensor& b) {
  return compare("lt", a, b, std::less<>());
}
Tensor le(const Tensor& a, const Tensor& b) {
  return compare("le", a, b, std::less_equal<>());
}
Tensor gt(const Tensor& a, const Tensor& b) {
  return compare("gt", a, b, std::greater<>());
}
Tensor ge(const Tensor& a, const Tensor& b) {
  return compare("ge", a, b, std::greater_equal<>());
}

Tensor eq(const Tensor& a, double b) {
  return compare_scalar(a, b, std::equal_to<>());
}
Tensor ne(const Tensor& a, double b) {
  return compare_scalar(a, b, std::not_equal_to<>());
}
Tensor lt(const Tensor& a, double b) {
  return compare_scalar(a, b, std::less<>());
}
Tensor le(const Tensor& a, double b) {
  return compare_scalar(a, b, std::less_equal<>());
}
Tensor gt(const Tensor& a, double b) {
  return compare_scalar(a, b, std::greater<>());
}
Tensor ge(const Tensor& a, double b) {
  return compare_scalar(a, b, std::greater_equal<>());
}

Tensor logical_not(const Tensor& x) {
  BP_CHECK(x.defined(), ValueError, "logical_not: undefined operand");
  return compare_scalar(x, 0.0, std::equal_to<>());
}
Tensor logical_and(const Tensor& a, const Tensor& b) {
  return compare("logical_and", truth(a), truth(b), std::logical_and<>());
}
Tensor logical_or(const Tensor& a, const Tensor& b) {
  return compare("logical_or", truth(a), truth(b), std::logical_or<>());
}

std::int64_t count_nonzero(const Tensor& x) {
  const Tensor t = truth(x);
  const Tensor d = kernels::dense(t);
  return std::count(d.data<bool>(), d.data<bool>() + d.numel(), true);
}

}  // namespace backprop
