// Matrix products. The backward of op(A) op(B) is again a product of the same kind with other transpose
// flags, so no transposed copy is ever made and second derivatives come for free.
#include <backprop/ops.hpp>

#include "kernels/kernels.hpp"

namespace backprop {

namespace {
Tensor mm_forward(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  check_floating(a, "matmul", "a");
  check_floating(b, "matmul", "b");
  BP_CHECK(a.dtype() == b.dtype(), DTypeError, "matmul: dtypes differ (", a.dtype(), " ", a.shape(), " vs ",
           b.dtype(), " ", b.shape(), ")");
  BP_CHECK((a.dim() == 2 && b.dim() == 2) || (a.dim() == 3 && b.dim() == 3), ShapeError,
           "matmul: expected two 2-D or two 3-D tensors, got ", a.shape(), " and ", b.shape());
  const bool batched = a.dim() == 3;
  const std::int64_t r = batched ? 1 : 0;  // first matrix dimension
  if (batched)
    BP_CHECK(a.size(0) == b.size(0), ShapeError, "matmul: batch sizes differ: ", a.shape(), " and ",
             b.shape());
  const std::int64_t m = ta ? a.size(r + 1) : a.size(r);
  const std::int64_t ka = ta ? a.size(r) : a.size(r + 1);
  const std::int64_t kb = tb ? b.size(r + 1) : b.size(r);
  const std::int64_t n = tb ? b.size(r) : b.size(r + 1);
  BP_CHECK(ka == kb, ShapeError, "matmul: cannot multiply ", a.shape(), ta ? "^T" : "", " by ", b.shape(),
           tb ? "^T" : "", " (", ka, " != ", kb, ")");
  if (!batched) {
    Tensor c({m, n}, a.dtype());
    kernels::gemm(a, ta, b, tb, c);
    return c;
  }
  const std::int64_t batch = a.size(0);
  Tensor c({batch, m, n}, a.dtype());
  const std::size_t ea = static_cast<std::size_t>(a.size(1) * a.size(2)) * dtype_size(a.dtype());
  const std::size_t eb = static_cast<std::size_t>(b.size(1) * b.size(2)) * dtype_size(a.dtype());
  const std::size_t ec = static_cast<std::size_t>(m * n) * dtype_size(a.dtype());
  for (std::int64_t i = 0; i < batch; ++i) {
    kernels::gemm_raw(a.dtype(), static_cast<const char*>(a.raw_data()) + i * ea, a.size(2), ta,
                      static_cast<const char*>(b.raw_data()) + i * eb, b.size(2), tb,
                      static_cast<char*>(c.raw_data()) + i * ec, m, n, ka, 1.0, 0.0);
  }
  return c;
}
}  // namespace

// C = op(A) op(B). With A' = op(A), B' = op(B): dA' = dC B'^T and dB' = A'^T dC; transposing back where the
// operand was used transposed gives the four cases below, each a single mm with flags.
Tensor mm(const Tensor& a, const Tensor& b, bool ta, bool tb) {
  Tensor c = mm_forward(a, b, ta, tb);
  return record("matmul", c, {a, b}, [a, b, ta, tb](const Tensor& dc) {
    Tensor da, db;
    if (a.requires_grad()) da = ta ? mm(b, dc, tb, true) : mm(dc, b, false, !tb);
    if (b.requires_grad()) db = tb ? mm(dc, a, true, ta) : mm(a, dc, !ta, false);
    return Tensors{da, db};
  });
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  return mm(a, b, false, false);
}

// y = x W^T + b: dL/dx = dy W, dL/dW = dy^T x, dL/db = sum of dy over the batch. The delta rule in matrix
// form.
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_floating(x, "linear", "input");
  check_floating(weight, "linear", "weight");
  BP_CHECK(x.dim() == 2 && weight.dim() == 2, ShapeError,
           "linear: expected input [N, in] and weight [out, in], got ", x.shape(), " and ", weight.shape());
  BP_CHECK(x.size(1) == weight.size(1), ShapeError, "linear: input has ", x.size(1), " features but weight ",
           weight.shape(), " expects ", weight.size(1), " (input ", x.shape(), ")");
  BP_CHECK(x.dtype() == weight.dtype(), DTypeError, "linear: input is ", x.dtype(), " but weight is ",
           weight.dtype());
  if (bias.defined()) {
    BP_CHECK(bias.dim() == 1 && bias.size(0) == weight.size(0), ShapeError, "linear: bias ", bias.shape(),
             " does not match weight ", weight.shape(), " (expected [", weight.size(0), "])");
    BP_CHECK(bias.dtype() == x.dtype(), DTypeError, "linear: bias is ", bias.dtype(), " but input is ",
             x.dtype());
  }
  Tensor y = kernels::linear(x, weight, bias);
  return record(
      "linear", y, {x, weight, bias},
      [x, weight, has_bias = bias.defined(), gb = bias.defined() && bias.requires_grad()](const Tensor& dy) {
        return Tensors{x.requires_grad() ? mm(dy, weight) : Tensor(),
                       weight.requires_grad() ? mm(dy, x, true, false) : Tensor(),
                       has_bias && gb ? sum(dy, 0) : Tensor()};
      });
}

Tensor transpose(const Tensor& x) {
  check_floating(x, "transpose", "x");
  BP_CHECK(x.dim() == 2, ShapeError, "transpose: expected a 2-D tensor, got ", x.shape());
  Tensor y = kernels::transpose2d(x);
  return record("transpose", y, {x}, [](const Tensor& dy) { return Tensors{transpose(dy)}; },
                {.saves_inputs = false});
}

}  // namespace backprop
