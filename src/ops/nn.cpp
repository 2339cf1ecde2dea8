// Neural-network functions: softmax and log-softmax along an axis, one-hot encoding, embedding lookup.
#include <backprop/ops.hpp>
#include <cmath>
#include <cstring>

#include "kernels/kernels.hpp"

namespace backprop {

// y_i = exp(x_i) / sum_j exp(x_j): dL/dx = y (dy - sum(dy y)), written with the kept output y.
Tensor softmax(const Tensor& x, std::int64_t axis) {
  check_floating(x, "softmax", "x");
  const std::int64_t ax = normalize_axis(axis, x.dim(), "softmax");
  Tensor y = kernels::softmax(x, ax, false);
  return record("softmax", y, {x},
                [ax](const Tensor& dy, const Tensor& out) {
                  return Tensors{mul(out, sub(dy, sum(mul(dy, out), ax, true)))};
                },
                {.save_output = true, .saves_inputs = false});
}

// y = x - logsumexp(x): dL/dx = dy - softmax(x) sum(dy) = dy - exp(y) sum(dy).
Tensor log_softmax(const Tensor& x, std::int64_t axis) {
  check_floating(x, "log_softmax", "x");
  const std::int64_t ax = normalize_axis(axis, x.dim(), "log_softmax");
  Tensor y = kernels::softmax(x, ax, true);
  return record("log_softmax", y, {x},
                [ax](const Tensor& dy, const Tensor& out) {
                  return Tensors{sub(dy, mul(exp(out), sum(dy, ax, true)))};
                },
                {.save_output = true, .saves_inputs = false});
}

Tensor one_hot(const Tensor& labels, std::int64_t classes, DType dtype) {
  BP_CHECK(classes > 0, ValueError, "one_hot: number of classes must be positive, got ", classes);
  const std::int64_t n = labels.numel();
  Tensor y = zeros({n, classes}, dtype);
  dispatch_all(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* p = y.data<T>();
    for (std::int64_t i = 0; i < n; ++i) {
      const double v = labels.flat(i);
      BP_CHECK(v == std::floor(v) && v >= 0 && v < static_cast<double>(classes), ValueError,
               "one_hot: label ", v, " at position ", i, " is not a class index in [0, ", classes, ")");
      p[i * classes + static_cast<std::int64_t>(v)] = T(1);
    }
  });
  return y;
}

namespace {
// The whole numbers of an index tensor, each checked against [0, size): the one place embedding reads its
// indices, so a new index dtype needs a change here only.
std::vector<std::int64_t> read_indices(const char* op, const Tensor& indices, std::int64_t size) {
  const std::vector<double> v = indices.to_vector();
  std::vector<std::int64_t> out(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    BP_CHECK(std::isfinite(v[i]) && v[i] == std::floor(v[i]), ValueError, op, ": index ", v[i], " (position ",
             i, ") is not a whole number");
    BP_CHECK(v[i] >= 0 && v[i] < static_cast<double>(size), IndexError, op, ": index ", v[i], " (position ",
             i, ") is out of range for dim 0 of size ", size, " (the weight's rows)");
    out[i] = static_cast<std::int64_t>(v[i]);
  }
  return out;
}
}  // namespace

Tensor embedding(const Tensor& indices, const Tensor& weight, std::optional<std::int64_t> padding_idx) {
  BP_CHECK(weight.defined() && weight.dim() == 2, ShapeError, "embedding: weight must be 2-D [V, D], got ",
           weight.defined() ? weight.shape() : Shape{});
  BP_CHECK(indices.defined(), ValueError, "embedding: indices is undefined");
  const std::int64_t rows = weight.size(0), dim = weight.size(1);
  if (padding_idx) {
    BP_CHECK(*padding_idx >= -rows && *padding_idx < rows, IndexError, "embedding: padding_idx ",
             *padding_idx, " is out of range for ", rows, " rows");
    if (*padding_idx < 0) *padding_idx += rows;
  }
  const std::vector<std::int64_t> idx = read_indices("embedding", indices, rows);
  Shape shape = indices.shape();
  shape.push_back(dim);
  Tensor y(shape, weight.dtype());
  const Tensor wd = kernels::dense(weight);
  dispatch(weight.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* w = wd.data<T>();
    T* out = y.data<T>();
    for (std::size_t i = 0; i < idx.size(); ++i)
      std::memcpy(out + static_cast<std::int64_t>(i) * dim, w + idx[i] * dim,
                  static_cast<std::size_t>(dim) * sizeof(T));
  });
  // Backward: dy's rows added into zeros [V, D] at their indices, without the padding rows.
  std::vector<std::int64_t> keep_pos, keep_idx;
  if (padding_idx)
    for (std::size_t i = 0; i < idx.size(); ++i)
      if (idx[i] != *padding_idx) {
        keep_pos.push_back(static_cast<std::int64_t>(i));
        keep_idx.push_back(idx[i]);
      }
  const bool pad = padding_idx.has_value();
  return record(
      "embedding", y, {weight},
      [idx = pad ? std::move(keep_idx) : idx, pos = std::move(keep_pos), pad, rows, dim](const Tensor& dy) {
        Tensor g = reshape(dy, {-1, dim});
        if (pad) g = index_select(g, 0, pos);
        return Tensors{index_add(zeros({rows, dim}, dy.dtype()), 0, idx, g)};
      });
}

}  // namespace backprop
