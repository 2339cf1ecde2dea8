// Matrix products. The backward of op(A) op(B) is again a product of the same kind with other transpose
// flags, so no transposed copy is ever made and second derivatives come for free.
#include <algorithm>
#include <backprop/ops.hpp>

#include "kernels/kernels.hpp"

namespace backprop {

namespace {
/// A GEMM operand: t itself when contiguous; the row-major matrix underneath when t is its transposed view
/// (the flag flips, BLAS reads it transposed, nothing is copied); else a contiguous copy.
Tensor gemm_operand(const Tensor& t, bool& transposed) {
  if (t.is_contiguous() || t.dim() < 2) return kernels::dense(t);
  const std::int64_t r = t.size(-2), c = t.size(-1);
  const bool batch_ok = t.dim() == 2 || (t.dim() == 3 && (t.size(0) == 1 || t.stride(0) == r * c));
  if (batch_ok && t.stride(-2) == 1 && t.stride(-1) == r) {
    transposed = !transposed;
    Shape s = t.shape();
    std::swap(s[s.size() - 1], s[s.size() - 2]);
    return Tensor(t.storage(), s, t.dtype(), t.storage_offset());
  }
  return kernels::dense(t);
}

Tensor mm_forward(const Tensor& a_in, const Tensor& b_in, bool ta, bool tb) {
  check_floating(a_in, "matmul", "a");
  check_floating(b_in, "matmul", "b");
  check_same_device("matmul", a_in.device(), b_in.device());
  const Tensor a = gemm_operand(a_in, ta);
  const Tensor b = gemm_operand(b_in, tb);
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
    Tensor c({m, n}, a.dtype(), a.device());
    kernels::gemm(a, ta, b, tb, c);
    return c;
  }
  const std::int64_t batch = a.size(0);
  Tensor c({batch, m, n}, a.dtype());
  kernels::gemm_batched(a.dtype(), batch, a.raw_data(), a.size(1) * a.size(2), a.size(2), ta, b.raw_data(),
                        b.size(1) * b.size(2), b.size(2), tb, c.raw_data(), m * n, m, n, ka);
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

Tensor bmm(const Tensor& a, const Tensor& b) {
  BP_CHECK(a.dim() == 3 && b.dim() == 3, ShapeError,
           "bmm: expected two 3-D tensors [B, n, k] and [B, k, m], got ", a.shape(), " and ", b.shape());
  BP_CHECK(a.size(0) == b.size(0), ShapeError, "bmm: batch sizes differ: ", a.shape(), " and ", b.shape(),
           " (", a.size(0), " != ", b.size(0), ")");
  BP_CHECK(a.size(2) == b.size(1), ShapeError, "bmm: cannot multiply ", a.shape(), " by ", b.shape(), " (",
           a.size(2), " != ", b.size(1), ")");
  return mm(a, b, false, false);
}

// torch.matmul: a 1-D operand becomes a row (left) or a column (right) and that dim is dropped again; with a
// rank >= 3 operand the dims before the last two are batch dims and broadcast. Everything is built from
// reshape, broadcast_to and mm, so the backward (sum_to over broadcast batch dims included) comes from theirs.
Tensor matmul(const Tensor& a, const Tensor& b) {
  const bool same_batch = a.dim() == 3 && b.dim() == 3 && a.size(0) == b.size(0);
  if ((a.dim() == 2 && b.dim() == 2) || same_batch) return mm(a, b, false, false);  // no reshapes recorded
  BP_CHECK(a.dim() >= 1 && b.dim() >= 1, ShapeError, "matmul: both operands need at least 1 dim, got ",
           a.shape(), " and ", b.shape());
  const std::int64_t ka = a.size(-1), kb = b.dim() == 1 ? b.size(0) : b.size(-2);
  BP_CHECK(ka == kb, ShapeError, "matmul: cannot multiply ", a.shape(), " by ", b.shape(), " (", ka,
           " != ", kb, ")");
  BP_CHECK(a.dtype() == b.dtype(), DTypeError, "matmul: dtypes differ (", a.dtype(), " ", a.shape(), " vs ",
           b.dtype(), " ", b.shape(), ")");
  const Tensor a2 = a.dim() == 1 ? reshape(a, {1, ka}) : a;  // [..., n, k]
  const Tensor b2 = b.dim() == 1 ? reshape(b, {kb, 1}) : b;  // [..., k, m]
  const std::int64_t n = a2.size(-2), m = b2.size(-1);
  const Shape ba(a2.shape().begin(), a2.shape().end() - 2), bb(b2.shape().begin(), b2.shape().end() - 2);
  Shape out;  // the result's shape before the dims of 1-D operands are dropped
  Tensor c;
  if (bb.empty()) {
    // [..., n, k] x [k, m]: the batch folds into the rows of one product.
    c = mm(reshape(a2, {numel(ba) * n, ka}), b2, false, false);
    out = ba;
  } else {
    Shape batch(std::max(ba.size(), bb.size()), 1);  // NumPy broadcasting, right-aligned
    for (std::size_t i = 1; i <= batch.size(); ++i) {
      const std::int64_t x = i <= ba.size() ? ba[ba.size() - i] : 1,
                         y = i <= bb.size() ? bb[bb.size() - i] : 1;
      BP_CHECK(x == y || x == 1 || y == 1, ShapeError, "matmul: batch dims ", ba, " of ", a.shape(), " and ",
               bb, " of ", b.shape(), " do not broadcast (", x, " vs ", y, ")");
      batch[batch.size() - i] = x == 1 ? y : x;
    }
    const std::int64_t count = numel(batch);
    auto batched = [&](const Tensor& x, const Shape& xb, std::int64_t r, std::int64_t c2) {
      Shape full = batch;
      full.push_back(r);
      full.push_back(c2);
      return reshape(xb == batch ? x : broadcast_to(x, full), {count, r, c2});
    };
    c = mm(batched(a2, ba, n, ka), batched(b2, bb, ka, m), false, false);
    out = batch;
  }
  if (a.dim() > 1) out.push_back(n);
  if (b.dim() > 1) out.push_back(m);
  return reshape(c, out);
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
  check_same_device("linear", x.device(), weight.device());
  if (bias.defined()) {
    check_same_device("linear", x.device(), bias.device());
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
  return transpose(x, 0, 1);
}

}  // namespace backprop
