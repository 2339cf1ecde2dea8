// Internal: backprop's own f32 GEMM micro-kernels, used by gemm_raw in place of OpenBLAS on the small, skinny
// products of an MLP step, where OpenBLAS spends a large share of its time packing its operands. One generic
// kernel (sgemm_tiles.inl) compiled twice, under #pragma GCC target: for AVX-512F (sgemm_avx512.cpp) and for
// AVX2 + FMA (sgemm_avx2.cpp). gemm_raw calls the variant of kernel_config().isa (none for the baseline).
//
//   if (backprop::cpu_supports(backprop::Isa::avx512))
//     kernels::avx512::sgemm(false, true, m, n, k, 1.0f, x, k, w, k, 0.0f, y, n);   // Y[m, n] = X W^T
//
// One register-tiled kernel, the broadcast form: an MR x 2L tile of C (L = 16 lanes and MR = 8 rows for
// AVX-512, L = 8 and MR = 6 for AVX2) is held in 2 MR vector registers; each step p of the k loop loads row p
// of op(B) (two vectors, the last one masked to the columns that exist) and broadcasts the MR values
// op(A)[i, p] from wherever A keeps them (a row of A, or a column of A for A^T), 2 MR FMAs.
// C[i, j] = alpha * sum_p op(A)[i, p] op(B)[p, j] (+ beta C), the sum taken in order p = 0, 1, ..., k-1 in
// one vector lane.
// - op(B) = B (dX = dY W, dW = dY^T X): B's rows are read in place, nothing is packed.
// - op(B) = B^T (x W^T, the forward of a linear layer): 2L rows of B at a time are transposed (8 x 8 blocks
//   in registers) into a k x 2L panel per thread, which the same kernel then reads as it reads B. When A has
//   at most half as many rows as B (a batch of 32 against 256 features), the swapped form packs A instead:
//   C^T = B A^T, rows of B broadcast against 2L rows of A transposed into the panel, each tile written back
//   transposed; packing A costs m / n of packing B (13% faster on 32 x 256 x 784). Each element is the same
//   chain of fused multiply-adds in either form (the two factors commute exactly), so both give C bit for
//   bit.
// Every element of C is computed by the same sequence of operations wherever its tile lies and whatever the
// variant, so a row block of C (gemm_raw's threads) gives bit-identical results to the whole product, and the
// AVX2 and AVX-512 variants give the same bits. A^T with B^T is not covered (OpenBLAS handles it).
#pragma once

#include <cstdint>

namespace backprop::kernels {

/// True for the transpose combinations the own kernels implement: (false, false), (true, false),
/// (false, true).
constexpr bool own_sgemm_supports(bool transpose_a, bool transpose_b) {
  return !(transpose_a && transpose_b);
}

/// C[m, n] = alpha op(A) op(B) + beta C on row-major f32 buffers with leading dimensions lda, ldb, ldc
/// (op(A) is [m, k], op(B) is [k, n]). When beta == 0, C is only written (it may hold NaN). m, n, k >= 1;
/// requires own_sgemm_supports(transpose_a, transpose_b) and a CPU that runs the variant
/// (cpu_supports(Isa::avx512) or cpu_supports(Isa::avx2)). Reads exactly the elements of A, B and C that the
/// product uses (tails are masked), so it never touches memory outside the matrices. The first op(B) = B^T
/// product on a thread allocates that thread's panel (8 k L bytes, grown when k grows).
namespace avx512 {
void sgemm(bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
           const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
           std::int64_t ldc);
}  // namespace avx512
namespace avx2 {
void sgemm(bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
           const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
           std::int64_t ldc);
}  // namespace avx2

}  // namespace backprop::kernels
