// backprop/dtype.hpp — element types and shapes.
//
// Example:
//   bp::Shape s{64, 784};             // a plain std::vector<int64_t>
//   bp::numel(s);                     // 50176
//   std::cout << bp::to_string(s);    // [64, 784]
//   bp::dtype_size(bp::f64);          // 8
//   static_assert(bp::dtype_of<std::int64_t> == bp::i64);  // class labels, indices
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <ostream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace backprop {

/// Element type of a tensor. float32 is the default; float64 is supported end to end. i64 holds indices and
/// class labels, bool_ holds masks (one byte per element, 0 or 1). Only f32 and f64 tensors take part in
/// arithmetic and autograd; i64 and bool_ tensors are copied, converted, indexed, compared and printed.
enum class DType : std::uint8_t { f32, f64, i64, bool_ };
inline constexpr DType f32 = DType::f32;
inline constexpr DType f64 = DType::f64;
inline constexpr DType i64 = DType::i64;
inline constexpr DType bool_ = DType::bool_;

/// Bytes per element: 4, 8, 8, 1.
constexpr std::size_t dtype_size(DType dt) {
  switch (dt) {
    case DType::f32:
      return 4;
    case DType::bool_:
      return 1;
    default:
      return 8;
  }
}
/// f32 or f64: the dtypes that arithmetic, autograd and the optimisers work on.
constexpr bool is_floating(DType dt) {
  return dt == DType::f32 || dt == DType::f64;
}
/// "f32", "f64", "i64" or "bool".
const char* dtype_name(DType dt);
std::ostream& operator<<(std::ostream& out, DType dt);

namespace detail {
template <class T>
constexpr DType dtype_of_impl() {
  if constexpr (std::is_same_v<T, float>)
    return DType::f32;
  else if constexpr (std::is_same_v<T, double>)
    return DType::f64;
  else if constexpr (std::is_same_v<T, std::int64_t>)
    return DType::i64;
  else if constexpr (std::is_same_v<T, bool>)
    return DType::bool_;
  else
    static_assert(sizeof(T) == 0, "dtype_of: no backprop dtype for this C++ type");
}
/// Throws DTypeError: `op` needs an f32/f64 tensor and got `dt`.
[[noreturn]] void throw_not_floating(DType dt, const char* op);
}  // namespace detail

/// The C++ type of an element: float -> f32, double -> f64, std::int64_t -> i64, bool -> bool_.
template <class T>
inline constexpr DType dtype_of = detail::dtype_of_impl<std::remove_cv_t<T>>();

/// One element converted as Tensor::to() converts it: to bool is v != 0 (NaN is true); a float to i64
/// truncates toward zero, and NaN, +-inf and values outside i64 give INT64_MIN (what PyTorch gives on x86);
/// every other pair is static_cast (i64 to a float rounds to nearest).
template <class To, class From>
constexpr To convert_value(From v) {
  if constexpr (std::is_same_v<To, bool>) {
    return v != From(0);
  } else if constexpr (std::is_same_v<To, std::int64_t> && std::is_floating_point_v<From>) {
    if (v >= From(-9223372036854775808.0) && v < From(9223372036854775808.0)) return static_cast<To>(v);
    return std::numeric_limits<std::int64_t>::min();
  } else {
    return static_cast<To>(v);
  }
}

/// Calls f(float{}) or f(double{}) for the given dtype, so templated code can run on either. An i64 or bool_
/// dtype is a DTypeError naming `op` (arithmetic is defined on floating tensors only).
template <class F>
decltype(auto) dispatch(DType dt, const char* op, F&& f) {
  if (dt == DType::f32) return f(float{});
  if (dt == DType::f64) return f(double{});
  detail::throw_not_floating(dt, op);
}
template <class F>
decltype(auto) dispatch(DType dt, F&& f) {
  return dispatch(dt, "this operation", std::forward<F>(f));
}

/// Calls f with a value of the element type of any dtype (float, double, std::int64_t or bool): for code that
/// moves, converts, compares or prints elements.
template <class F>
decltype(auto) dispatch_all(DType dt, F&& f) {
  switch (dt) {
    case DType::f32:
      return f(float{});
    case DType::f64:
      return f(double{});
    case DType::i64:
      return f(std::int64_t{});
    case DType::bool_:
      break;
  }
  return f(bool{});
}

/// A shape: sizes of each dimension, outermost first. Rank 0 (a scalar) to 8.
using Shape = std::vector<std::int64_t>;
inline constexpr std::size_t kMaxRank = 8;

/// Number of elements (1 for a scalar). Throws ShapeError on a negative size, a rank over 8 or an overflow.
std::int64_t numel(const Shape& shape);
/// "[2, 3]"; "[]" for a scalar.
std::string to_string(const Shape& shape);
std::ostream& operator<<(std::ostream& out, const Shape& shape);

/// NumPy broadcasting of two shapes. Throws ShapeError naming `op` and both shapes when they do not fit.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op = "broadcast");

/// Normalises a possibly negative axis (-1 = last) for a tensor of rank `rank`; throws IndexError.
std::int64_t normalize_axis(std::int64_t axis, std::int64_t rank, const char* op);

}  // namespace backprop
