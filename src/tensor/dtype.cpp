#include <backprop/dtype.hpp>
#include <backprop/error.hpp>
#include <limits>

namespace backprop {

const char* dtype_name(DType dt) {
  switch (dt) {
    case DType::f32:
      return "f32";
    case DType::f64:
      return "f64";
    case DType::i64:
      return "i64";
    case DType::bool_:
      break;
  }
  return "bool";
}

void detail::throw_not_floating(DType dt, const char* op) {
  throw DTypeError(
      detail::cat(op, ": needs a floating tensor (f32 or f64), got ", dt, "; convert it with .to(bp::f32)"));
}

std::ostream& operator<<(std::ostream& out, DType dt) {
  return out << dtype_name(dt);
}

std::int64_t numel(const Shape& shape) {
  BP_CHECK(shape.size() <= kMaxRank, ShapeError, "tensor rank ", shape.size(), " exceeds the maximum of ",
           kMaxRank, " (shape ", shape, ")");
  for (std::int64_t d : shape) BP_CHECK(d >= 0, ShapeError, "negative dimension in shape ", shape);
  // A zero anywhere makes the count 0 whatever the order: [2^32, 2^32, 0] is as empty as [0, 2^32, 2^32].
  for (std::int64_t d : shape)
    if (d == 0) return 0;
  std::int64_t n = 1;
  for (std::int64_t d : shape) {
    BP_CHECK(n <= std::numeric_limits<std::int64_t>::max() / d, ShapeError, "shape ", shape,
             " has too many elements");
    n *= d;
  }
  return n;
}

std::string to_string(const Shape& shape) {
  std::string s = "[";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

std::ostream& operator<<(std::ostream& out, const Shape& shape) {
  return out << to_string(shape);
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  const std::size_t rank = std::max(a.size(), b.size());
  Shape out(rank);
  for (std::size_t i = 0; i < rank; ++i) {
    const std::int64_t da = i < rank - a.size() ? 1 : a[i - (rank - a.size())];
    const std::int64_t db = i < rank - b.size() ? 1 : b[i - (rank - b.size())];
    BP_CHECK(da == db || da == 1 || db == 1, ShapeError, op, ": cannot broadcast ", a, " with ", b,
             " (dimension ", i, ": ", da, " vs ", db, ")");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

std::int64_t normalize_axis(std::int64_t axis, std::int64_t rank, const char* op) {
  BP_CHECK(axis >= -rank && axis < rank, IndexError, op, ": axis ", axis,
           " is out of range for a tensor of rank ", rank, " (expected ", -rank, "..", rank - 1, ")");
  return axis < 0 ? axis + rank : axis;
}

}  // namespace backprop
