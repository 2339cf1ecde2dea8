// backprop/dtype.hpp — element types and shapes.
//
// Example:
//   bp::Shape s{64, 784};             // a plain std::vector<int64_t>
//   bp::numel(s);                     // 50176
//   std::cout << bp::to_string(s);    // [64, 784]
//   bp::dtype_size(bp::f64);          // 8
#pragma once

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace backprop {

/// Element type of a tensor. float32 is the default; float64 is supported end to end.
enum class DType : std::uint8_t { f32, f64 };
inline constexpr DType f32 = DType::f32;
inline constexpr DType f64 = DType::f64;

/// Bytes per element.
constexpr std::size_t dtype_size(DType dt) {
  return dt == DType::f32 ? 4 : 8;
}
/// "f32" or "f64".
const char* dtype_name(DType dt);
std::ostream& operator<<(std::ostream& out, DType dt);

/// The C++ type of an element: dtype_of<float> == f32, dtype_of<double> == f64.
template <class T>
inline constexpr DType dtype_of = sizeof(T) == 4 ? DType::f32 : DType::f64;

/// Calls f(float{}) or f(double{}) for the given dtype, so templated code can run on either.
template <class F>
decltype(auto) dispatch(DType dt, F&& f) {
  if (dt == DType::f32) return f(float{});
  return f(double{});
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
