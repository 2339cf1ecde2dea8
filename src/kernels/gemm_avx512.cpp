// AVX-512 f32 GEMM micro-kernels (see gemm_avx512.hpp for the two forms and their summation order). Every
// function that uses AVX-512 instructions carries the target attribute, so this file builds without
// -march=native and the code runs only after available() said yes.
#include "kernels/gemm_avx512.hpp"

#include <immintrin.h>

#include <cmath>

#define BP_AVX512 __attribute__((target("avx512f")))

namespace backprop::kernels::avx512 {

bool available() {
  static const bool ok = __builtin_cpu_supports("avx512f");
  return ok;
}

namespace {

using i64 = std::int64_t;

constexpr __mmask16 lanes(i64 count) {
  return count >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << count) - 1u);
}

// ---- broadcast form: op(B) = B ----------------------------------------------------------------------------

// MR rows x NV vectors of 16 columns of C; the last vector's columns are limited by `last`. op(A)[r, p] is
// a[r * rs + p * ps] (rs = lda, ps = 1 for A; rs = 1, ps = lda for A^T).
template <int MR, int NV>
BP_AVX512 void tile_bcast(i64 k, const float* a, i64 rs, i64 ps, const float* b, i64 ldb, __mmask16 last,
                          float alpha, float beta, float* c, i64 ldc) {
  __m512 acc[MR][NV];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_setzero_ps();
  for (i64 p = 0; p < k; ++p) {
    const float* bp = b + p * ldb;
    __m512 bv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v)
      bv[v] = v == NV - 1 ? _mm512_maskz_loadu_ps(last, bp + 16 * v) : _mm512_loadu_ps(bp + 16 * v);
    const float* ap = a + p * ps;
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const __m512 av = _mm512_set1_ps(ap[r * rs]);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] = _mm512_fmadd_ps(av, bv[v], acc[r][v]);
    }
  }
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      const __mmask16 mask = v == NV - 1 ? last : __mmask16(0xFFFF);
      float* cp = c + r * ldc + 16 * v;
      __m512 y = _mm512_mul_ps(va, acc[r][v]);
      if (beta != 0.0f) y = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(mask, cp), y);
      _mm512_mask_storeu_ps(cp, mask, y);
    }
}

constexpr int kBcastRows = 8;

template <int NV>
BP_AVX512 void rows_bcast(i64 m, i64 k, const float* a, i64 rs, i64 ps, const float* b, i64 ldb,
                          __mmask16 last, float alpha, float beta, float* c, i64 ldc) {
  i64 i = 0;
  for (; i + kBcastRows <= m; i += kBcastRows)
    tile_bcast<kBcastRows, NV>(k, a + i * rs, rs, ps, b, ldb, last, alpha, beta, c + i * ldc, ldc);
  const float* ai = a + i * rs;
  float* ci = c + i * ldc;
  switch (m - i) {
    case 7:
      tile_bcast<7, NV>(k, ai, rs, ps, b, ldb, last, alpha, beta, ci, ldc);
      break;
    case 6:
      tile_bcast<6, NV>(k, ai, rs, ps, b, ldb, last, alpha, beta, ci, ldc);
      break;
    case 5:
      tile_bcast<5, NV>(k, ai, rs, ps, b, ldb, last, alpha, beta, ci, ldc);
      break;
    case 4:
      tile_bcast<4, NV>(k, ai, rs, ps, b, ldb, last, alpha, beta, ci, ldc);
      break;
    case 3:
      tile_bcast<3, NV>(k, ai, rs, ps, b, ldb, last, alpha, beta, ci, ldc);
      break;
    case 2:
      tile_bcast<2, NV>(k, ai, rs, ps, b, ldb, last, alpha, beta, ci, ldc);
      break;
    case 1:
      tile_bcast<1, NV>(k, ai, rs, ps, b, ldb, last, alpha, beta, ci, ldc);
      break;
    default:
      break;
  }
}

BP_AVX512 void sgemm_bcast(bool ta, i64 m, i64 n, i64 k, float alpha, const float* a, i64 lda, const float* b,
                           i64 ldb, float beta, float* c, i64 ldc) {
  const i64 rs = ta ? 1 : lda, ps = ta ? lda : 1;
  // Panels of 32 columns of B (k x 32 floats) are reused by every row tile while they sit in cache.
  for (i64 j = 0; j < n; j += 32) {
    const i64 cols = n - j < 32 ? n - j : 32;
    if (cols > 16)
      rows_bcast<2>(m, k, a, rs, ps, b + j, ldb, lanes(cols - 16), alpha, beta, c + j, ldc);
    else
      rows_bcast<1>(m, k, a, rs, ps, b + j, ldb, lanes(cols), alpha, beta, c + j, ldc);
  }
}

// ---- dot form: op(A) = A, op(B) = B^T ---------------------------------------------------------------------

// Sum of the 16 lanes of v down to 4: lane l of the result is (v[l] + v[l + 8]) + (v[l + 4] + v[l + 12]).
// (The masked forms of the shuffles take their pass-through operand explicitly: GCC 12's unmasked ones start
// from an "undefined" register that -Werror=uninitialized rejects.)
BP_AVX512 inline __m128 quarter(__m512 v) {
  const __m512 h = _mm512_add_ps(v, _mm512_mask_shuffle_f32x4(v, 0xFFFF, v, v, 0x4E));  // 128-bit lanes 2301
  const __m512 q = _mm512_add_ps(h, _mm512_mask_shuffle_f32x4(h, 0xFFFF, h, h, 0xB1));  // 1032
  return _mm512_mask_extractf32x4_ps(_mm_setzero_ps(), 0xF, q, 0);
}

// Sums of the 16 lanes of each of u0..u3, as 4 floats: quarters, then two rounds of pairwise adds.
BP_AVX512 inline __m128 reduce4(__m512 u0, __m512 u1, __m512 u2, __m512 u3) {
  return _mm_hadd_ps(_mm_hadd_ps(quarter(u0), quarter(u1)), _mm_hadd_ps(quarter(u2), quarter(u3)));
}

// MR rows of A x NR rows of B (NR columns of C), both read along k.
template <int MR, int NR>
BP_AVX512 void tile_dot(i64 k, const float* a, i64 lda, const float* b, i64 ldb, float alpha, float beta,
                        float* c, i64 ldc) {
  __m512 acc[MR][4];
#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
    for (int q = 0; q < 4; ++q) acc[r][q] = _mm512_setzero_ps();
  const i64 full = k / 16 * 16;
  for (i64 p = 0; p < full; p += 16) {
    __m512 av[MR], bv[NR];
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) av[r] = _mm512_loadu_ps(a + r * lda + p);
#pragma GCC unroll 4
    for (int q = 0; q < NR; ++q) bv[q] = _mm512_loadu_ps(b + q * ldb + p);
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
      for (int q = 0; q < NR; ++q) acc[r][q] = _mm512_fmadd_ps(av[r], bv[q], acc[r][q]);
  }
  if (full < k) {  // the tail of k: absent lanes load as zero and add 0 * 0
    const __mmask16 mask = lanes(k - full);
    __m512 av[MR], bv[NR];
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r) av[r] = _mm512_maskz_loadu_ps(mask, a + r * lda + full);
#pragma GCC unroll 4
    for (int q = 0; q < NR; ++q) bv[q] = _mm512_maskz_loadu_ps(mask, b + q * ldb + full);
#pragma GCC unroll 4
    for (int r = 0; r < MR; ++r)
#pragma GCC unroll 4
      for (int q = 0; q < NR; ++q) acc[r][q] = _mm512_fmadd_ps(av[r], bv[q], acc[r][q]);
  }
#pragma GCC unroll 4
  for (int r = 0; r < MR; ++r) {
    // Columns beyond NR reduce zero accumulators: the same tree for every column, whatever the tile width.
    alignas(16) float sums[4];
    _mm_store_ps(sums, reduce4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]));
    float* cr = c + r * ldc;
#pragma GCC unroll 4
    for (int q = 0; q < NR; ++q) {
      const float y = alpha * sums[q];
      cr[q] = beta == 0.0f ? y : std::fma(beta, cr[q], y);
    }
  }
}

template <int MR>
BP_AVX512 void cols_dot(i64 n, i64 k, const float* a, i64 lda, const float* b, i64 ldb, float alpha,
                        float beta, float* c, i64 ldc, i64 j) {
  const float* bj = b + j * ldb;
  float* cj = c + j;
  switch (n - j < 4 ? n - j : 4) {
    case 4:
      tile_dot<MR, 4>(k, a, lda, bj, ldb, alpha, beta, cj, ldc);
      break;
    case 3:
      tile_dot<MR, 3>(k, a, lda, bj, ldb, alpha, beta, cj, ldc);
      break;
    case 2:
      tile_dot<MR, 2>(k, a, lda, bj, ldb, alpha, beta, cj, ldc);
      break;
    case 1:
      tile_dot<MR, 1>(k, a, lda, bj, ldb, alpha, beta, cj, ldc);
      break;
    default:
      break;
  }
}

BP_AVX512 void sgemm_dot(i64 m, i64 n, i64 k, float alpha, const float* a, i64 lda, const float* b, i64 ldb,
                         float beta, float* c, i64 ldc) {
  // Four rows of B (4 x k) stay in L1 while every row tile of A streams past them.
  for (i64 j = 0; j < n; j += 4) {
    i64 i = 0;
    for (; i + 4 <= m; i += 4) cols_dot<4>(n, k, a + i * lda, lda, b, ldb, alpha, beta, c + i * ldc, ldc, j);
    const float* ai = a + i * lda;
    float* ci = c + i * ldc;
    switch (m - i) {
      case 3:
        cols_dot<3>(n, k, ai, lda, b, ldb, alpha, beta, ci, ldc, j);
        break;
      case 2:
        cols_dot<2>(n, k, ai, lda, b, ldb, alpha, beta, ci, ldc, j);
        break;
      case 1:
        cols_dot<1>(n, k, ai, lda, b, ldb, alpha, beta, ci, ldc, j);
        break;
      default:
        break;
    }
  }
}

}  // namespace

void sgemm(bool transpose_a, bool transpose_b, i64 m, i64 n, i64 k, float alpha, const float* a, i64 lda,
           const float* b, i64 ldb, float beta, float* c, i64 ldc) {
  if (!transpose_b)
    sgemm_bcast(transpose_a, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  else
    sgemm_dot(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace backprop::kernels::avx512
