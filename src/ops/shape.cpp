// Shape ops: views, conversions, row selection and joining. Each backward is the op's adjoint, itself an op.
#include <backprop/ops.hpp>
#include <cstring>

#include "kernels/kernels.hpp"

namespace backprop {

namespace {
Shape resolve_shape(const Tensor& x, const Shape& shape) {
  Shape s = shape;
  std::int64_t known = 1, infer = -1;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      BP_CHECK(infer < 0, ShapeError, "reshape: more than one -1 in ", shape);
      infer = static_cast<std::int64_t>(i);
    } else {
      BP_CHECK(s[i] >= 0, ShapeError, "reshape: negative dimension in ", shape);
      known *= s[i];
    }
  }
  if (infer >= 0) {
    BP_CHECK(known > 0 && x.numel() % known == 0, ShapeError, "reshape: cannot reshape ", x.shape(), " (",
             x.numel(), " elements) to ", shape);
    s[static_cast<std::size_t>(infer)] = x.numel() / known;
  }
  BP_CHECK(numel(s) == x.numel(), ShapeError, "reshape: cannot reshape ", x.shape(), " (", x.numel(),
           " elements) to ", shape, " (", numel(s), " elements)");
  return s;
}

std::size_t row_bytes(const Tensor& x) {
  return x.dim() == 0 ? 0 : static_cast<std::size_t>(x.numel() / x.size(0)) * dtype_size(x.dtype());
}

/// The adjoint of narrow(): a tensor of `rows` rows, zero except rows [start, start + dy.rows) = dy.
Tensor embed_rows(const Tensor& dy, std::int64_t rows, std::int64_t start) {
  Shape shape = dy.shape();
  shape[0] = rows;
  Tensor y = zeros(shape, dy.dtype());
  std::memcpy(static_cast<char*>(y.raw_data()) + static_cast<std::size_t>(start) * row_bytes(dy),
              dy.raw_data(), dy.nbytes());
  return record("embed_rows", y, {dy},
                [start, n = dy.size(0)](const Tensor& g) { return Tensors{narrow(g, start, n)}; },
                {.saves_inputs = false});
}

/// The adjoint of index_select(): rows of dy added into a zero tensor of `rows` rows at `indices`.
Tensor index_add(const Tensor& dy, std::int64_t rows, const std::vector<std::int64_t>& indices) {
  Shape shape = dy.shape();
  shape[0] = rows;
  Tensor y = zeros(shape, dy.dtype());
  const std::int64_t width = dy.numel() / std::max<std::int64_t>(dy.size(0), 1);
  dispatch(dy.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* src = dy.data<T>();
    T* dst = y.data<T>();
    for (std::size_t r = 0; r < indices.size(); ++r)
      for (std::int64_t j = 0; j < width; ++j)
        dst[indices[r] * width + j] += src[static_cast<std::int64_t>(r) * width + j];
  });
  return record("index_add", y, {dy},
                [indices](const Tensor& g) { return Tensors{index_select(g, indices)}; },
                {.saves_inputs = false});
}
}  // namespace

// A view: same storage, new shape. The gradient is reshaped back.
Tensor reshape(const Tensor& x, const Shape& shape) {
  const Shape s = resolve_shape(x, shape);
  Tensor y(x.storage(), s, x.dtype());
  return record("reshape", y, {x}, [xs = x.shape()](const Tensor& dy) { return Tensors{reshape(dy, xs)}; },
                {.saves_inputs = false});
}

Tensor to_dtype(const Tensor& x, DType dtype) {
  if (x.dtype() == dtype) return x;
  Tensor y = kernels::convert(x, dtype);
  return record("to_dtype", y, {x},
                [from = x.dtype()](const Tensor& dy) { return Tensors{to_dtype(dy, from)}; },
                {.saves_inputs = false});
}

Tensor narrow(const Tensor& x, std::int64_t start, std::int64_t length) {
  BP_CHECK(x.dim() >= 1, ShapeError, "narrow: expected at least 1 dimension, got a scalar");
  BP_CHECK(start >= 0 && length >= 0 && start + length <= x.size(0), IndexError, "narrow: rows [", start,
           ", ", start + length, ") are out of range for shape ", x.shape());
  Shape shape = x.shape();
  shape[0] = length;
  Tensor y(shape, x.dtype());
  std::memcpy(y.raw_data(),
              static_cast<const char*>(x.raw_data()) + static_cast<std::size_t>(start) * row_bytes(x),
              y.nbytes());
  return record("narrow", y, {x},
                [rows = x.size(0), start](const Tensor& dy) { return Tensors{embed_rows(dy, rows, start)}; },
                {.saves_inputs = false});
}

Tensor index_select(const Tensor& x, const std::vector<std::int64_t>& indices) {
  BP_CHECK(x.dim() >= 1, ShapeError, "index_select: expected at least 1 dimension, got a scalar");
  for (std::size_t i = 0; i < indices.size(); ++i)
    BP_CHECK(indices[i] >= 0 && indices[i] < x.size(0), IndexError, "index_select: index ", indices[i],
             " (position ", i, ") is out of range for ", x.size(0), " rows (shape ", x.shape(), ")");
  Shape shape = x.shape();
  shape[0] = static_cast<std::int64_t>(indices.size());
  Tensor y(shape, x.dtype());
  const std::size_t rb = row_bytes(x);
  for (std::size_t i = 0; i < indices.size(); ++i)
    std::memcpy(static_cast<char*>(y.raw_data()) + i * rb,
                static_cast<const char*>(x.raw_data()) + static_cast<std::size_t>(indices[i]) * rb, rb);
  return record(
      "index_select", y, {x},
      [rows = x.size(0), indices](const Tensor& dy) { return Tensors{index_add(dy, rows, indices)}; },
      {.saves_inputs = false});
}

Tensor concat(const Tensors& xs) {
  BP_CHECK(!xs.empty(), ValueError, "concat: no tensors given");
  Shape shape = xs[0].shape();
  BP_CHECK(!shape.empty(), ShapeError, "concat: cannot join scalars");
  std::int64_t rows = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    Shape s = xs[i].shape();
    BP_CHECK(s.size() == shape.size() && xs[i].dtype() == xs[0].dtype(), ShapeError, "concat: tensor ", i,
             " is ", s, " ", xs[i].dtype(), " but tensor 0 is ", shape, " ", xs[0].dtype());
    s[0] = shape[0];
    BP_CHECK(s == shape, ShapeError, "concat: tensor ", i, " has shape ", xs[i].shape(),
             " which differs from tensor 0 ", xs[0].shape(), " beyond the first dimension");
    rows += xs[i].size(0);
  }
  shape[0] = rows;
  Tensor y(shape, xs[0].dtype());
  std::size_t off = 0;
  std::vector<std::int64_t> starts;
  for (const Tensor& x : xs) {
    starts.push_back(static_cast<std::int64_t>(off / std::max<std::size_t>(row_bytes(xs[0]), 1)));
    std::memcpy(static_cast<char*>(y.raw_data()) + off, x.raw_data(), x.nbytes());
    off += x.nbytes();
  }
  std::vector<std::int64_t> lengths;
  for (const Tensor& x : xs) lengths.push_back(x.size(0));
  return record("concat", y, xs,
                [starts, lengths](const Tensor& dy) {
                  Tensors grads;
                  for (std::size_t i = 0; i < starts.size(); ++i)
                    grads.push_back(narrow(dy, starts[i], lengths[i]));
                  return grads;
                },
                {.saves_inputs = false});
}

}  // namespace backprop
