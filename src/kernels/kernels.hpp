// Internal CPU kernels: plain computations on tensors, no autograd. Ops (src/ops/) call these for their
// forward values and, when no graph is being recorded, for fused backward paths.
#pragma once

#include <backprop/tensor.hpp>
#include <cstdint>
#include <vector>

namespace backprop::kernels {

/// Element count above which a kernel runs on several threads (below it a thread fork costs more than it
/// saves). 2^18 elements (1 MiB of f32): measured on this 2-core machine (bench_micro BM_AddThroughput,
/// BM_ForkJoin), a memory-bound pass over them takes ~35 us on one core, while a fork-join costs ~1.5 us
/// (OpenMP's default wait policy) to ~10 us (OMP_WAIT_POLICY=PASSIVE) when the second core is idle, so
/// splitting pays under either policy; at the former 64Ki threshold an add took 8 us, no more than a passive
/// fork. With the second core busy elsewhere a fork costs milliseconds, which is why small tensors never
/// fork: the 784-256-128-10 MLP runs every element-wise op on one thread up to batch 512.
inline constexpr std::int64_t kParallelThreshold = std::int64_t{1} << 18;

enum class Unary {
  neg,
  exp,
  log,
  sqrt,
  abs,
  sign,
  sigmoid,
  tanh,
  relu,
  leaky_relu,        // leaky_relu: alpha = slope
  relu_mask,         // 1 where x > 0
  leaky_relu_slope,  // 1 where x > 0, alpha elsewhere
  pow,               // x^alpha
  add_scalar,        // x + alpha
  mul_scalar,        // x * alpha
  rsub_scalar,       // alpha - x
  rdiv_scalar,       // alpha / x
  clamp,             // min(max(x, alpha), beta)
  clamp_mask,        // 1 where alpha <= x <= beta
  greater_scalar,    // 1 where x > alpha
};
Tensor unary(Unary op, const Tensor& x, double alpha = 0.0, double beta = 0.0);

enum class Binary { add, sub, mul, div, maximum, ge_mask /* 1 where a >= b */, eq };
/// Broadcasting binary op; a and b must share a dtype.
Tensor binary(Binary op, const Tensor& a, const Tensor& b);
/// x * mask * scale (same shapes).
Tensor masked_scale(const Tensor& x, const Tensor& mask, double scale);

/// Activations whose derivative is a function of their output y.
enum class ActivationGrad {
  relu,     // dy * [y > 0]
  sigmoid,  // dy * (y (1 - y))
  tanh,     // dy * (1 - y y)
};
/// dx = dy * f'(x) written from y = f(x), in one pass and one allocation (dy, y same shape and dtype). The
/// arithmetic is the same, in the same order, as the composed ops it replaces, so results are bit-identical;
/// the ops call it only when no graph is being recorded.
Tensor activation_backward(ActivationGrad kind, const Tensor& dy, const Tensor& y);

/// Sum of all elements as a 0-d tensor. Deterministic whatever the thread count (fixed blocking).
Tensor sum_all(const Tensor& x);
/// Sum along one axis.
Tensor sum_axis(const Tensor& x, std::int64_t axis, bool keepdim);
/// Max along one axis and the (first) argmax, as i64 indices.
void max_axis(const Tensor& x, std::int64_t axis, bool keepdim, Tensor& values, Tensor& indices);
/// Max (largest) or min along one axis and the first index reaching it (NaN counts as the extreme), as i64
/// indices. `op` names the caller in the error for an empty axis.
void extreme_axis(const Tensor& x, std::int64_t axis, bool keepdim, bool largest, const char* op,
                  Tensor& values, Tensor& indices);
/// Indices (i64) of the k largest (or smallest) elements along `axis`, best first when `sorted`, else in
/// index order; ties keep index order. 0 <= k <= size of the axis.
Tensor topk_indices(const Tensor& x, std::int64_t axis, std::int64_t k, bool largest, bool sorted);
/// 1 at the (first) maximal element along axis, 0 elsewhere (shape of x).
Tensor argmax_mask(const Tensor& x, std::int64_t axis);
/// Sum x down to `shape` (shape must broadcast to x's shape).
Tensor sum_to(const Tensor& x, const Shape& shape);
/// Materialised broadcast of x to `shape`.
Tensor broadcast_to(const Tensor& x, const Shape& shape);

/// C = alpha op(A) op(B) + beta C for 2-D row-major tensors (own kernel or CBLAS, see use_own_sgemm).
void gemm(const Tensor& a, bool transpose_a, const Tensor& b, bool transpose_b, Tensor& c, double alpha = 1.0,
          double beta = 0.0);
/// The same on raw row-major buffers: C[m, n] = alpha op(A) op(B) + beta C, with leading dimensions lda, ldb.
void gemm_raw(DType dtype, const void* a, std::int64_t lda, bool transpose_a, const void* b, std::int64_t ldb,
              bool transpose_b, void* c, std::int64_t m, std::int64_t n, std::int64_t k, double alpha,
              double beta);
/// Whether gemm_raw computes this product with backprop's own kernel (f32, op(B) = B, m >= 8, k >= 16,
/// m n k <= 2^27, kernel_config() with Sgemm::own and the AVX-512 variant; the AVX2 variant only for
/// x W^T with 2 m <= n) rather than OpenBLAS. A
/// function of the shape and the configuration only, so the same kernel serves a product whatever the thread
/// count.
bool use_own_sgemm(DType dtype, bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n,
                   std::int64_t k);
/// Element-wise ops of three broadcasting inputs of one dtype (the output has their broadcast shape).
enum class Ternary {
  where,        // a != 0 ? b : c (a is a 0/1 or any-valued condition)
  clamp,        // min(max(a, b), c)
  clamp_pass,   // 1 where b <= a <= c: the clamp's gradient to x
  clamp_below,  // 1 where a < b and b < c: its gradient to the lower bound
  clamp_above,  // 1 where a > c or c < b: its gradient to the upper bound
};
Tensor ternary(Ternary op, const Tensor& a, const Tensor& b, const Tensor& c);
/// 1 where cond is non-zero (NaN included), 0 elsewhere, in `dtype`; cond may have any dtype.
Tensor nonzero_mask(const Tensor& cond, DType dtype);

/// C[i] = op(A[i]) op(B[i]) for i < batch, matrices stored `stride_a`, `stride_b`, `stride_c` elements apart
/// (stride 0 reuses one matrix), each with gemm_raw's leading dimensions. Products too small for a row split go
/// to the threads a group of entries at a time; larger ones run in turn, each split by gemm_raw. Bit-identical for any thread count.
void gemm_batched(DType dtype, std::int64_t batch, const void* a, std::int64_t stride_a, std::int64_t lda,
                  bool transpose_a, const void* b, std::int64_t stride_b, std::int64_t ldb, bool transpose_b,
                  void* c, std::int64_t stride_c, std::int64_t m, std::int64_t n, std::int64_t k);
/// x W^T + b in one GEMM (b's rows copied into the output first, beta = 1).
Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias);
Tensor transpose2d(const Tensor& x);

/// Whether every element of x is finite (no NaN, no +-Inf): one branch-free pass over the bits, stopping at
/// the first 4096-element block that holds a non-finite value.
bool all_finite(const Tensor& x);
/// Rows of `outputs` [N, C] whose first maximal column (a NaN counts as maximal, as in max_axis) equals the
/// class index in `targets` (N elements): the count behind accuracy, without an argmax tensor.
std::int64_t count_argmax_matches(const Tensor& outputs, const Tensor& targets);

/// Softmax / log-softmax along `axis` (stable).
Tensor softmax(const Tensor& x, std::int64_t axis, bool log);

/// Converts the elements of x to dtype.
Tensor convert(const Tensor& x, DType dtype);

/// dst += alpha * src (same numel and dtype).
void axpy(Tensor& dst, const Tensor& src, double alpha);
void scale(Tensor& dst, double factor);
void fill(Tensor& dst, double value);
void copy(Tensor& dst, const Tensor& src);

/// x itself when contiguous, else a row-major copy of its elements (not recorded). Every kernel that reads
/// memory directly takes its inputs through this.
Tensor dense(const Tensor& x);
/// dst[i] = src[i] for every index, each through its own strides (same shape and dtype; dst must not overlap
/// itself or src).
void copy_elements(Tensor& dst, const Tensor& src);
/// dst[i * ld + j] = src[j * ls + i] for i < rows, j < cols: a 2-D transpose of elements of elem_bytes (4 or 8)
/// through the register-blocked tiles of kernel_config().isa.
void transpose_matrix(void* dst, std::int64_t ld, const void* src, std::int64_t ls, std::int64_t rows,
                      std::int64_t cols, std::size_t elem_bytes);

/// Splits a shape around `axis` into outer * n * inner.
struct AxisSplit {
  std::int64_t outer = 1, n = 1, inner = 1;
};
AxisSplit split_axis(const Shape& shape, std::int64_t axis);

}  // namespace backprop::kernels
