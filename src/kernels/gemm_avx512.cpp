// AVX-512 f32 GEMM micro-kernels (see gemm_avx512.hpp for the tiling and the summation order). Every
// function that uses AVX-512 instructions carries the target attribute, so this file builds without
// -march=native and the code runs only after available() said yes.
#include "kernels/gemm_avx512.hpp"

#include <immintrin.h>

#include <type_traits>
#include <vector>

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

// acc[r][v] = sum over p of op(A)[r, p] * B[p, 16 v ...] for MR rows and NV vectors of 16 columns, the last
// vector's columns limited by `last`, each lane one fused multiply-add chain in order p = 0, 1, ..., k-1.
// op(A)[r, p] is a[r * rs + p * ps] (rs = lda, ps = 1 for A; rs = 1, ps = lda for A^T).
template <int MR, int NV>
BP_AVX512 __attribute__((always_inline)) inline void accumulate(i64 k, const float* a, i64 rs, i64 ps,
                                                                const float* b, i64 ldb, __mmask16 last,
                                                                __m512 (&acc)[MR][NV]) {
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
}

// MR rows x NV vectors of 16 columns of C = alpha op(A) B (+ beta C).
template <int MR, int NV>
BP_AVX512 void tile_bcast(i64 k, const float* a, i64 rs, i64 ps, const float* b, i64 ldb, __mmask16 last,
                          float alpha, float beta, float* c, i64 ldc) {
  __m512 acc[MR][NV];
  accumulate<MR, NV>(k, a, rs, ps, b, ldb, last, acc);
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

// Calls f(std::integral_constant<int, R>{}) for the R = count (1 to 7) rows of a last, partial tile, so a
// tile kernel can be instantiated for every tail height; does nothing for 0.
template <class F>
void for_tail(i64 count, F&& f) {
  switch (count) {
    case 7:
      return f(std::integral_constant<int, 7>{});
    case 6:
      return f(std::integral_constant<int, 6>{});
    case 5:
      return f(std::integral_constant<int, 5>{});
    case 4:
      return f(std::integral_constant<int, 4>{});
    case 3:
      return f(std::integral_constant<int, 3>{});
    case 2:
      return f(std::integral_constant<int, 2>{});
    case 1:
      return f(std::integral_constant<int, 1>{});
    default:
      return;
  }
}

template <int NV>
BP_AVX512 void rows_bcast(i64 m, i64 k, const float* a, i64 rs, i64 ps, const float* b, i64 ldb,
                          __mmask16 last, float alpha, float beta, float* c, i64 ldc) {
  i64 i = 0;
  for (; i + kBcastRows <= m; i += kBcastRows)
    tile_bcast<kBcastRows, NV>(k, a + i * rs, rs, ps, b, ldb, last, alpha, beta, c + i * ldc, ldc);
  const float* ai = a + i * rs;
  float* ci = c + i * ldc;
  for_tail(m - i, [&](auto rows) {
    tile_bcast<decltype(rows)::value, NV>(k, ai, rs, ps, b, ldb, last, alpha, beta, ci, ldc);
  });
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

// ---- packed form: op(B) = B^T, B^T copied into panels of 32 columns, then the broadcast kernel
// ---------------

// 8 x 8 transpose: rows r[0..7] of 8 floats become its columns.
BP_AVX512 inline void transpose8(__m256 r[8]) {
  __m256 t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 2; ++i) {
    u[4 * i] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    u[4 * i + 1] = _mm256_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    u[4 * i + 2] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    u[4 * i + 3] = _mm256_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
    r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
  }
}

// panel[p * 32 + j] = B[j, p] for the `cols` (<= 32) rows j of B at b, every p < k; columns j >= cols are 0.
BP_AVX512 void pack_bt(i64 k, i64 cols, const float* b, i64 ldb, float* panel) {
  const i64 k8 = k / 8 * 8;
  for (i64 j = 0; j < 32; j += 8) {
    if (j + 8 <= cols) {
      for (i64 p = 0; p < k8; p += 8) {
        __m256 r[8];
        for (int q = 0; q < 8; ++q) r[q] = _mm256_loadu_ps(b + (j + q) * ldb + p);
        transpose8(r);
        for (int q = 0; q < 8; ++q) _mm256_storeu_ps(panel + (p + q) * 32 + j, r[q]);
      }
      for (i64 p = k8; p < k; ++p)
        for (i64 q = 0; q < 8; ++q) panel[p * 32 + j + q] = b[(j + q) * ldb + p];
    } else {
      for (i64 p = 0; p < k; ++p)
        for (i64 q = 0; q < 8; ++q) panel[p * 32 + j + q] = j + q < cols ? b[(j + q) * ldb + p] : 0.0f;
    }
  }
}

BP_AVX512 void sgemm_packed(i64 m, i64 n, i64 k, float alpha, const float* a, i64 lda, const float* b,
                            i64 ldb, float beta, float* c, i64 ldc) {
  // One panel (k x 32 floats) per thread, kept between calls: no allocation after the first product.
  thread_local std::vector<float> panel;
  if (panel.size() < static_cast<std::size_t>(k * 32)) panel.resize(static_cast<std::size_t>(k * 32));
  for (i64 j = 0; j < n; j += 32) {
    const i64 cols = n - j < 32 ? n - j : 32;
    pack_bt(k, cols, b + j * ldb, ldb, panel.data());
    if (cols > 16)
      rows_bcast<2>(m, k, a, lda, 1, panel.data(), 32, lanes(cols - 16), alpha, beta, c + j, ldc);
    else
      rows_bcast<1>(m, k, a, lda, 1, panel.data(), 32, lanes(cols), alpha, beta, c + j, ldc);
  }
}

// ---- swapped form for op(B) = B^T with few rows: C^T = B A^T, A^T copied into panels of 32 columns
// ---------------
// When A has fewer rows than B (a small batch times a weight matrix), packing A costs less than packing B.
// Tile (j, i) of C^T = B A^T is computed with B's rows broadcast and A^T's panel as the vector operand: each
// element is the same chain acc = fma(B[j, p], A[i, p], acc), p = 0, 1, ..., k-1, as in the packed form (the
// two factors of a fused multiply-add commute exactly), then alpha * acc (+ beta C), so either form gives C
// bit for bit.

// Tile of MR rows of B (j0 ..) x NV vectors of 16 rows of A (through the panel), stored transposed into C.
template <int MR, int NV>
BP_AVX512 void tile_swapped(i64 k, const float* b, i64 ldb, const float* panel, __mmask16 last, i64 rows_a,
                            float alpha, float beta, float* c, i64 ldc) {
  // The broadcast kernel's accumulation with B's rows as the broadcast operand and the panel as the vectors:
  // acc = fma(B[j, p], A[i, p], acc), the factors of the packed form's chain in the other order.
  __m512 acc[MR][NV];
  accumulate<MR, NV>(k, b, ldb, 1, panel, 32, last, acc);
  alignas(64) float t[MR][32];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) _mm512_store_ps(&t[r][16 * v], acc[r][v]);
  for (i64 i = 0; i < rows_a; ++i) {
    float* ci = c + i * ldc;
    for (int r = 0; r < MR; ++r) {
      float y = alpha * t[r][i];
      if (beta != 0.0f) y = __builtin_fmaf(beta, ci[r], y);
      ci[r] = y;
    }
  }
}

template <int NV>
BP_AVX512 void cols_swapped(i64 n, i64 k, const float* b, i64 ldb, const float* panel, __mmask16 last,
                            i64 rows_a, float alpha, float beta, float* c, i64 ldc) {
  i64 j = 0;
  for (; j + kBcastRows <= n; j += kBcastRows)
    tile_swapped<kBcastRows, NV>(k, b + j * ldb, ldb, panel, last, rows_a, alpha, beta, c + j, ldc);
  const float* bj = b + j * ldb;
  float* cj = c + j;
  for_tail(n - j, [&](auto rows) {
    tile_swapped<decltype(rows)::value, NV>(k, bj, ldb, panel, last, rows_a, alpha, beta, cj, ldc);
  });
}

BP_AVX512 void sgemm_swapped(i64 m, i64 n, i64 k, float alpha, const float* a, i64 lda, const float* b,
                             i64 ldb, float beta, float* c, i64 ldc) {
  thread_local std::vector<float> panel;  // as in sgemm_packed: one per thread, kept between calls
  if (panel.size() < static_cast<std::size_t>(k * 32)) panel.resize(static_cast<std::size_t>(k * 32));
  for (i64 i = 0; i < m; i += 32) {
    const i64 rows = m - i < 32 ? m - i : 32;
    pack_bt(k, rows, a + i * lda, lda, panel.data());
    if (rows > 16)
      cols_swapped<2>(n, k, b, ldb, panel.data(), lanes(rows - 16), rows, alpha, beta, c + i * ldc, ldc);
    else
      cols_swapped<1>(n, k, b, ldb, panel.data(), lanes(rows), rows, alpha, beta, c + i * ldc, ldc);
  }
}

}  // namespace

void sgemm(bool transpose_a, bool transpose_b, i64 m, i64 n, i64 k, float alpha, const float* a, i64 lda,
           const float* b, i64 ldb, float beta, float* c, i64 ldc) {
  if (!transpose_b)
    sgemm_bcast(transpose_a, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  else if (2 * m <= n)
    sgemm_swapped(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  else
    sgemm_packed(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace backprop::kernels::avx512
