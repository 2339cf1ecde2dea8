// Reductions and their inverses. sum_to and broadcast_to are each other's backward, which is what makes the
// gradients of broadcasting ops differentiable to any order.
#include <algorithm>
#include <backprop/ops.hpp>
#include <cmath>

#include "kernels/kernels.hpp"

namespace backprop {

namespace {
Shape keepdim_shape(const Shape& shape, std::int64_t axis) {
  Shape s = shape;
  s[static_cast<std::size_t>(axis)] = 1;
  return s;
}
}  // namespace

// y = sum of all x: dL/dx = dy repeated over x's shape.
Tensor sum(const Tensor& x) {
  check_floating(x, "sum", "x");
  Tensor y = kernels::sum_all(x);
  return record("sum", y, {x},
                [shape = x.shape()](const Tensor& dy) { return Tensors{broadcast_to(dy, shape)}; },
                {.saves_inputs = false});
}

Tensor sum(const Tensor& x, std::int64_t axis, bool keepdim) {
  check_floating(x, "sum", "x");
  const std::int64_t ax = normalize_axis(axis, x.dim(), "sum");
  Tensor y = kernels::sum_axis(x, ax, keepdim);
  return record("sum_axis", y, {x},
                [shape = x.shape(), ax](const Tensor& dy) {
                  return Tensors{broadcast_to(reshape(dy, keepdim_shape(shape, ax)), shape)};
                },
                {.saves_inputs = false});
}

Tensor mean(const Tensor& x) {
  check_floating(x, "mean", "x");
  BP_CHECK(x.numel() > 0, ValueError, "mean: empty tensor of shape ", x.shape());
  return mul(sum(x), 1.0 / static_cast<double>(x.numel()));
}

Tensor mean(const Tensor& x, std::int64_t axis, bool keepdim) {
  check_floating(x, "mean", "x");
  const std::int64_t ax = normalize_axis(axis, x.dim(), "mean");
  const std::int64_t n = x.shape()[static_cast<std::size_t>(ax)];
  BP_CHECK(n > 0, ValueError, "mean: axis ", axis, " of shape ", x.shape(), " is empty");
  return mul(sum(x, ax, keepdim), 1.0 / static_cast<double>(n));
}

// y = max along axis: the gradient flows to the first maximal element of each slice (a constant mask).
Tensor max(const Tensor& x, std::int64_t axis, bool keepdim) {
  check_floating(x, "max", "x");
  const std::int64_t ax = normalize_axis(axis, x.dim(), "max");
  Tensor values, indices;
  kernels::max_axis(x, ax, keepdim, values, indices);
  return record("max", values, {x}, [x, ax](const Tensor& dy) {
    const Tensor mask = kernels::argmax_mask(x, ax);
    return Tensors{mul(reshape(dy, keepdim_shape(x.shape(), ax)), mask)};
  });
}

Tensor argmax(const Tensor& x, std::int64_t axis, bool keepdim) {
  check_floating(x, "argmax", "x");
  const std::int64_t ax = normalize_axis(axis, x.dim(), "argmax");
  Tensor values, indices;
  kernels::max_axis(x, ax, keepdim, values, indices);
  return indices;
}

// sum_to reduces x to `shape`; its derivative repeats the gradient back up: broadcast_to.
Tensor sum_to(const Tensor& x, const Shape& shape) {
  check_floating(x, "sum_to", "x");
  if (x.shape() == shape) return x;
  BP_CHECK(broadcast_shapes(shape, x.shape(), "sum_to") == x.shape(), ShapeError, "sum_to: cannot reduce ",
           x.shape(), " to ", shape);
  Tensor y = kernels::sum_to(x, shape);
  return record("sum_to", y, {x},
                [xs = x.shape()](const Tensor& dy) { return Tensors{broadcast_to(dy, xs)}; },
                {.saves_inputs = false});
}

// broadcast_to repeats x up to `shape`; its derivative sums the repeats: sum_to.
Tensor broadcast_to(const Tensor& x, const Shape& shape) {
  if (x.shape() == shape) return x;
  BP_CHECK(broadcast_shapes(x.shape(), shape, "broadcast_to") == shape, ShapeError,
           "broadcast_to: cannot broadcast ", x.shape(), " to ", shape);
  // A view: a repeated (new or size-1) dim has stride 0.
  Shape strides(shape.size(), 0);
  const std::size_t lead = shape.size() - x.shape().size();
  for (std::size_t d = lead; d < shape.size(); ++d)
    if (x.shape()[d - lead] == shape[d]) strides[d] = x.stride(static_cast<std::int64_t>(d - lead));
  Tensor y(x.storage(), shape, strides, x.storage_offset(), x.dtype());
  return record("broadcast_to", y, {x},
                [xs = x.shape()](const Tensor& dy) { return Tensors{sum_to(dy, xs)}; },
                {.saves_inputs = false});
}

// ---- reductions over a set of dims ------------------------------------------------------------------------
namespace {

// Which dims a reduction removes, checked (in range, none twice); every dim when `dims` is empty.
struct Reduction {
  std::vector<bool> reduced;  // per dim of x
  Shape kept;                 // x's shape with each reduced dim set to 1
  Shape out;                  // the result's shape (kept, or without the reduced dims)
  std::int64_t count = 1;     // elements per reduced slice
};

Reduction plan(const Shape& shape, const Dims& dims, bool keepdim, const char* op) {
  const auto rank = static_cast<std::int64_t>(shape.size());
  Reduction r;
  r.reduced.assign(shape.size(), dims.empty());
  // A 0-d tensor takes dim 0 or -1, as in PyTorch: reducing its one element over them is a copy.
  const std::int64_t span = std::max<std::int64_t>(rank, 1);
  for (const std::int64_t d : dims) {
    BP_CHECK(d >= -span && d < span, IndexError, op, ": dim ", d, " in dims ", dims,
             " is out of range for shape ", shape, " (expected ", -span, "..", span - 1, ")");
    if (rank == 0) continue;
    const auto k = static_cast<std::size_t>(d < 0 ? d + rank : d);
    BP_CHECK(!r.reduced[k], ValueError, op, ": dim ", d, " appears twice in dims ", dims, " for shape ",
             shape);
    r.reduced[k] = true;
  }
  for (std::size_t k = 0; k < shape.size(); ++k) {
    r.kept.push_back(r.reduced[k] ? 1 : shape[k]);
    if (r.reduced[k]) r.count *= shape[k];
    if (!r.reduced[k] || keepdim) r.out.push_back(r.kept.back());
  }
  return r;
}

enum class Kind { sum, max, min };

// The forward value of a reduction, unrecorded: neighbouring dims that are both reduced or both kept are
// merged (a free reshape of the contiguous tensor), then each reduced run is reduced with the one-axis
// kernel, last run first. A reduction over one run (the usual case) is a single pass.
Tensor reduce_value(const Tensor& x, const Reduction& r, Kind kind, const char* op) {
  Shape merged;
  std::vector<bool> merged_reduced;
  for (std::size_t k = 0; k < x.shape().size(); ++k) {
    if (!merged.empty() && merged_reduced.back() == r.reduced[k]) {
      merged.back() *= x.shape()[k];
    } else {
      merged.push_back(x.shape()[k]);
      merged_reduced.push_back(r.reduced[k]);
    }
  }
  const Tensor xd = kernels::dense(x);  // a view is reduced from a contiguous copy (docs/tensor.md)
  Tensor y(xd.storage(), merged, x.dtype(), xd.storage_offset());
  for (auto k = static_cast<std::int64_t>(merged.size()) - 1; k >= 0; --k) {
    if (!merged_reduced[static_cast<std::size_t>(k)]) continue;
    if (kind == Kind::sum) {
      y = kernels::sum_axis(y, k, true);
    } else {
      Tensor values, indices;
      kernels::extreme_axis(y, k, true, kind == Kind::max, op, values, indices);
      y = values;
    }
  }
  if (merged.empty()) y = y.clone();  // a 0-d input: the reduction of one element is a copy of it
  return Tensor(y.storage(), r.out, x.dtype(), y.storage_offset());
}

// dy (of the result's shape) repeated over the reduced dims, back to x's shape: differentiable.
Tensor expand_back(const Tensor& dy, const Reduction& r, const Shape& shape) {
  return broadcast_to(reshape(dy, r.kept), shape);
}

// amax / amin: the gradient is shared evenly among the elements equal to the extreme (a constant weight).
Tensor extreme(const Tensor& x, const Dims& dims, bool keepdim, Kind kind, const char* op) {
  check_floating(x, op, "x");
  const Reduction r = plan(x.shape(), dims, keepdim, op);
  Tensor y = reduce_value(x, r, kind, op);
  return record(
      op, y, {x},
      [x, r](const Tensor& dy, const Tensor& out) {
        Tensor weight;
        {
          NoGradGuard no_grad;
          const Tensor hit = equal(x.detach(), broadcast_to(reshape(out.detach(), r.kept), x.shape()));
          weight = div(hit, broadcast_to(reshape(reduce_value(hit, r, Kind::sum, "sum"), r.kept), x.shape()));
        }
        return Tensors{mul(expand_back(dy, r, x.shape()), weight)};
      },
      {.save_output = true});
}

// sqrt(s) whose derivative is 0 where s is 0 (std and the 2-norm at 0, as PyTorch): d/ds = dy / (2 y) where
// y > 0, written with a constant mask so that it stays differentiable.
Tensor sqrt_zero_subgradient(const Tensor& s, const char* op) {
  Tensor y;
  {
    NoGradGuard no_grad;
    y = sqrt(s.detach());
  }
  return record(op, y, {s},
                [](const Tensor& dy, const Tensor& out) {
                  Tensor zero;
                  {
                    NoGradGuard no_grad;
                    zero = equal(out.detach(), zeros_like(out));
                  }
                  return Tensors{mul(div(mul(dy, 0.5), add(out, zero)), rsub(zero, 1.0))};
                },
                {.save_output = true, .saves_inputs = false});
}

ValuesIndices extreme_with_indices(const Tensor& x, std::int64_t dim, bool keepdim, bool largest,
                                   const char* op) {
  check_floating(x, op, "x");
  const std::int64_t ax = normalize_axis(dim, x.dim(), op);
  Tensor values, indices;
  kernels::extreme_axis(x, ax, true, largest, op, values, indices);
  values = gather(x, ax, indices);  // its backward is scatter_add, and scatter_add's is gather
  if (!keepdim) {
    Shape s = x.shape();
    s.erase(s.begin() + ax);
    values = reshape(values, s);
    indices = indices.reshape(s);
  }
  return {values, indices};
}

}  // namespace

Tensor sum(const Tensor& x, const Dims& dims, bool keepdim) {
  check_floating(x, "sum", "x");
  const Reduction r = plan(x.shape(), dims, keepdim, "sum");
  Tensor y = reduce_value(x, r, Kind::sum, "sum");
  return record("sum_dims", y, {x},
                [r, shape = x.shape()](const Tensor& dy) { return Tensors{expand_back(dy, r, shape)}; },
                {.saves_inputs = false});
}

Tensor mean(const Tensor& x, const Dims& dims, bool keepdim) {
  check_floating(x, "mean", "x");
  const Reduction r = plan(x.shape(), dims, keepdim, "mean");
  BP_CHECK(r.count > 0, ValueError, "mean: dims ", dims, " of shape ", x.shape(), " hold no elements");
  return mul(sum(x, dims, keepdim), 1.0 / static_cast<double>(r.count));
}

Tensor amax(const Tensor& x, const Dims& dims, bool keepdim) {
  return extreme(x, dims, keepdim, Kind::max, "amax");
}

Tensor amin(const Tensor& x, const Dims& dims, bool keepdim) {
  return extreme(x, dims, keepdim, Kind::min, "amin");
}

// m + log(sum(exp(x - m))) with m a constant: its derivative is exp(x - m) / sum(exp(x - m)) = softmax.
Tensor logsumexp(const Tensor& x, const Dims& dims, bool keepdim) {
  check_floating(x, "logsumexp", "x");
  const Reduction r = plan(x.shape(), dims, keepdim, "logsumexp");
  Tensor m = reduce_value(x, plan(x.shape(), dims, true, "logsumexp"), Kind::max, "logsumexp");
  dispatch(m.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* p = m.data<T>();
    for (std::int64_t i = 0; i < m.numel(); ++i)
      if (!std::isfinite(p[i])) p[i] = T(0);
  });
  const Tensor y = add(log(sum(exp(sub(x, m)), dims, true)), m);
  return keepdim ? y : reshape(y, r.out);
}

Tensor var(const Tensor& x, const Dims& dims, double correction, bool keepdim) {
  check_floating(x, "var", "x");
  const Reduction r = plan(x.shape(), dims, keepdim, "var");
  BP_CHECK(r.count > 0, ValueError, "var: dims ", dims, " of shape ", x.shape(), " hold no elements");
  const Tensor d = sub(x, mean(x, dims, true));
  // n - correction <= 0 gives inf or NaN, as in PyTorch.
  return mul(sum(mul(d, d), dims, keepdim), 1.0 / std::max(0.0, static_cast<double>(r.count) - correction));
}

Tensor std(const Tensor& x, const Dims& dims, double correction, bool keepdim) {
  return sqrt_zero_subgradient(var(x, dims, correction, keepdim), "std");
}

Tensor norm(const Tensor& x, double p, const Dims& dims, bool keepdim) {
  check_floating(x, "norm", "x");
  plan(x.shape(), dims, keepdim, "norm");  // checks dims
  if (p == 2) return sqrt_zero_subgradient(sum(mul(x, x), dims, keepdim), "norm");
  if (p == 1) return sum(abs(x), dims, keepdim);
  if (std::isinf(p)) return p > 0 ? amax(abs(x), dims, keepdim) : amin(abs(x), dims, keepdim);
  BP_CHECK(p > 0 && std::isfinite(p), ValueError, "norm: p must be positive or +-inf, got ", p, " for shape ",
           x.shape());
  return pow(sum(pow(abs(x), p), dims, keepdim), 1.0 / p);
}

ValuesIndices max_with_indices(const Tensor& x, std::int64_t dim, bool keepdim) {
  return extreme_with_indices(x, dim, keepdim, true, "max");
}

Tensor min(const Tensor& x, std::int64_t dim, bool keepdim) {
  return extreme_with_indices(x, dim, keepdim, false, "min").values;
}

ValuesIndices min_with_indices(const Tensor& x, std::int64_t dim, bool keepdim) {
  return extreme_with_indices(x, dim, keepdim, false, "min");
}

Tensor argmin(const Tensor& x, std::int64_t dim, bool keepdim) {
  check_floating(x, "argmin", "x");
  const std::int64_t ax = normalize_axis(dim, x.dim(), "argmin");
  Tensor values, indices;
  kernels::extreme_axis(x, ax, keepdim, false, "argmin", values, indices);
  return indices;
}

ValuesIndices topk(const Tensor& x, std::int64_t k, std::int64_t dim, bool largest, bool sorted) {
  check_floating(x, "topk", "x");
  const std::int64_t ax = normalize_axis(dim, x.dim(), "topk");
  const std::int64_t n = x.shape()[static_cast<std::size_t>(ax)];
  BP_CHECK(k >= 0 && k <= n, ValueError, "topk: k = ", k, " is out of range for dim ", dim, " of shape ",
           x.shape(), " (expected 0..", n, ")");
  const Tensor indices = kernels::topk_indices(x, ax, k, largest, sorted);
  return {gather(x, ax, indices), indices};
}

}  // namespace backprop
