// Reductions and their inverses. sum_to and broadcast_to are each other's backward, which is what makes the
// gradients of broadcasting ops differentiable to any order.
#include <backprop/ops.hpp>

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
  Tensor y = kernels::sum_all(x);
  return record("sum", y, {x},
                [shape = x.shape()](const Tensor& dy) { return Tensors{broadcast_to(dy, shape)}; },
                {.saves_inputs = false});
}

Tensor sum(const Tensor& x, std::int64_t axis, bool keepdim) {
  const std::int64_t ax = normalize_axis(axis, x.dim(), "sum");
  Tensor y = kernels::sum_axis(x, ax, keepdim);
  return record("sum_axis", y, {x},
                [shape = x.shape(), ax](const Tensor& dy) {
                  return Tensors{broadcast_to(reshape(dy, keepdim_shape(shape, ax)), shape)};
                },
                {.saves_inputs = false});
}

Tensor mean(const Tensor& x) {
  BP_CHECK(x.numel() > 0, ValueError, "mean: empty tensor of shape ", x.shape());
  return mul(sum(x), 1.0 / static_cast<double>(x.numel()));
}

Tensor mean(const Tensor& x, std::int64_t axis, bool keepdim) {
  const std::int64_t ax = normalize_axis(axis, x.dim(), "mean");
  const std::int64_t n = x.shape()[static_cast<std::size_t>(ax)];
  BP_CHECK(n > 0, ValueError, "mean: axis ", axis, " of shape ", x.shape(), " is empty");
  return mul(sum(x, ax, keepdim), 1.0 / static_cast<double>(n));
}

// y = max along axis: the gradient flows to the first maximal element of each slice (a constant mask).
Tensor max(const Tensor& x, std::int64_t axis, bool keepdim) {
  const std::int64_t ax = normalize_axis(axis, x.dim(), "max");
  Tensor values, indices;
  kernels::max_axis(x, ax, keepdim, values, indices);
  return record("max", values, {x}, [x, ax](const Tensor& dy) {
    const Tensor mask = kernels::argmax_mask(x, ax);
    return Tensors{mul(reshape(dy, keepdim_shape(x.shape(), ax)), mask)};
  });
}

Tensor argmax(const Tensor& x, std::int64_t axis, bool keepdim) {
  const std::int64_t ax = normalize_axis(axis, x.dim(), "argmax");
  Tensor values, indices;
  kernels::max_axis(x, ax, keepdim, values, indices);
  return indices;
}

// sum_to reduces x to `shape`; its derivative repeats the gradient back up: broadcast_to.
Tensor sum_to(const Tensor& x, const Shape& shape) {
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
  Tensor y = kernels::broadcast_to(x, shape);
  return record("broadcast_to", y, {x},
                [xs = x.shape()](const Tensor& dy) { return Tensors{sum_to(dy, xs)}; },
                {.saves_inputs = false});
}

}  // namespace backprop
