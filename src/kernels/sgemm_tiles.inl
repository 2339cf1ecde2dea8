// The own f32 GEMM kernel, generic over the vector instructions (see sgemm_own.hpp for the tiling and the
// summation order). Included by sgemm_avx512.cpp and sgemm_avx2.cpp after <immintrin.h> and <vector>, inside
// a `#pragma GCC target` region and an anonymous namespace that defines `Simd`, the instruction set's
// operations:
//   L, MR           lanes of a vector, rows of a tile
//   V, Mask         vector and lane-mask types; mask(count) enables the first count lanes (count <= L)
//   zero(), set1(x), load(p), load(mask, p), fma(a, b, c) = a b + c, mul(a, b), store(p, mask, v),
//   store_aligned(p, v)
// Everything here is therefore compiled for that instruction set and has internal linkage.

using i64 = std::int64_t;

// Columns of a panel: two vectors.
constexpr int kPanel = 2 * Simd::L;

// ---- broadcast form: op(B) = B ----------------------------------------------------------------------------

// acc[r][v] = sum over p of op(A)[r, p] * B[p, L v ...] for MR rows and NV vectors of L columns, the last
// vector's columns limited by `last`, each lane one fused multiply-add chain in order p = 0, 1, ..., k-1.
// op(A)[r, p] is a[r * rs + p * ps] (rs = lda, ps = 1 for A; rs = 1, ps = lda for A^T).
template <int MR, int NV>
__attribute__((always_inline)) inline void accumulate(i64 k, const float* a, i64 rs, i64 ps, const float* b,
                                                      i64 ldb, Simd::Mask last, Simd::V (&acc)[MR][NV]) {
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) acc[r][v] = Simd::zero();
  for (i64 p = 0; p < k; ++p) {
    const float* bp = b + p * ldb;
    Simd::V bv[NV];
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v)
      bv[v] = v == NV - 1 ? Simd::load(last, bp + Simd::L * v) : Simd::load(bp + Simd::L * v);
    const float* ap = a + p * ps;
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      const Simd::V av = Simd::set1(ap[r * rs]);
#pragma GCC unroll 2
      for (int v = 0; v < NV; ++v) acc[r][v] = Simd::fma(av, bv[v], acc[r][v]);
    }
  }
}

// MR rows x NV vectors of L columns of C = alpha op(A) B (+ beta C).
template <int MR, int NV>
void tile_bcast(i64 k, const float* a, i64 rs, i64 ps, const float* b, i64 ldb, Simd::Mask last, float alpha,
                float beta, float* c, i64 ldc) {
  Simd::V acc[MR][NV];
  accumulate<MR, NV>(k, a, rs, ps, b, ldb, last, acc);
  const Simd::V va = Simd::set1(alpha), vb = Simd::set1(beta);
  const Simd::Mask all = Simd::mask(Simd::L);
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) {
      const Simd::Mask mask = v == NV - 1 ? last : all;
      float* cp = c + r * ldc + Simd::L * v;
      Simd::V y = Simd::mul(va, acc[r][v]);
      if (beta != 0.0f) y = Simd::fma(vb, Simd::load(mask, cp), y);
      Simd::store(cp, mask, y);
    }
}

// Calls f(std::integral_constant<int, R>{}) for the R = count (1 to MR - 1) rows of a last, partial tile, so
// a tile kernel can be instantiated for every tail height; does nothing for 0.
template <class F>
void for_tail(i64 count, F&& f) {
  static_assert(Simd::MR <= 8, "for_tail covers tails of up to 7 rows");
  switch (count) {
    case 7:
      if constexpr (Simd::MR > 7) return f(std::integral_constant<int, 7>{});
      return;
    case 6:
      if constexpr (Simd::MR > 6) return f(std::integral_constant<int, 6>{});
      return;
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
void rows_bcast(i64 m, i64 k, const float* a, i64 rs, i64 ps, const float* b, i64 ldb, Simd::Mask last,
                float alpha, float beta, float* c, i64 ldc) {
  i64 i = 0;
  for (; i + Simd::MR <= m; i += Simd::MR)
    tile_bcast<Simd::MR, NV>(k, a + i * rs, rs, ps, b, ldb, last, alpha, beta, c + i * ldc, ldc);
  const float* ai = a + i * rs;
  float* ci = c + i * ldc;
  for_tail(m - i, [&](auto rows) {
    tile_bcast<decltype(rows)::value, NV>(k, ai, rs, ps, b, ldb, last, alpha, beta, ci, ldc);
  });
}

// C = alpha op(A) B (+ beta C) for `cols` (<= kPanel) columns of B and C: one or two vectors per row.
void panel_bcast(i64 m, i64 cols, i64 k, const float* a, i64 rs, i64 ps, const float* b, i64 ldb, float alpha,
                 float beta, float* c, i64 ldc) {
  if (cols > Simd::L)
    rows_bcast<2>(m, k, a, rs, ps, b, ldb, Simd::mask(cols - Simd::L), alpha, beta, c, ldc);
  else
    rows_bcast<1>(m, k, a, rs, ps, b, ldb, Simd::mask(cols), alpha, beta, c, ldc);
}

void sgemm_bcast(bool ta, i64 m, i64 n, i64 k, float alpha, const float* a, i64 lda, const float* b, i64 ldb,
                 float beta, float* c, i64 ldc) {
  const i64 rs = ta ? 1 : lda, ps = ta ? lda : 1;
  // Panels of kPanel columns of B (k x kPanel floats) are reused by every row tile while they sit in cache.
  for (i64 j = 0; j < n; j += kPanel)
    panel_bcast(m, n - j < kPanel ? n - j : kPanel, k, a, rs, ps, b + j, ldb, alpha, beta, c + j, ldc);
}

// ---- packed form: op(B) = B^T, B^T copied into panels of kPanel columns, then the broadcast kernel --------

// 8 x 8 transpose: rows r[0..7] of 8 floats become its columns.
inline void transpose8(__m256 r[8]) {
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

// panel[p * kPanel + j] = B[j, p] for the `cols` (<= kPanel) rows j of B at b, every p < k; columns
// j >= cols are 0.
void pack_bt(i64 k, i64 cols, const float* b, i64 ldb, float* panel) {
  const i64 k8 = k / 8 * 8;
  for (i64 j = 0; j < kPanel; j += 8) {
    if (j + 8 <= cols) {
      for (i64 p = 0; p < k8; p += 8) {
        __m256 r[8];
        for (int q = 0; q < 8; ++q) r[q] = _mm256_loadu_ps(b + (j + q) * ldb + p);
        transpose8(r);
        for (int q = 0; q < 8; ++q) _mm256_storeu_ps(panel + (p + q) * kPanel + j, r[q]);
      }
      for (i64 p = k8; p < k; ++p)
        for (i64 q = 0; q < 8; ++q) panel[p * kPanel + j + q] = b[(j + q) * ldb + p];
    } else {
      for (i64 p = 0; p < k; ++p)
        for (i64 q = 0; q < 8; ++q) panel[p * kPanel + j + q] = j + q < cols ? b[(j + q) * ldb + p] : 0.0f;
    }
  }
}

// One panel (k x kPanel floats) per thread, kept between calls: no allocation after the first product.
float* thread_panel(i64 k) {
  thread_local std::vector<float> panel;
  if (panel.size() < static_cast<std::size_t>(k * kPanel)) panel.resize(static_cast<std::size_t>(k * kPanel));
  return panel.data();
}

void sgemm_packed(i64 m, i64 n, i64 k, float alpha, const float* a, i64 lda, const float* b, i64 ldb,
                  float beta, float* c, i64 ldc) {
  float* panel = thread_panel(k);
  for (i64 j = 0; j < n; j += kPanel) {
    const i64 cols = n - j < kPanel ? n - j : kPanel;
    pack_bt(k, cols, b + j * ldb, ldb, panel);
    panel_bcast(m, cols, k, a, lda, 1, panel, kPanel, alpha, beta, c + j, ldc);
  }
}

// ---- swapped form for op(B) = B^T with few rows: C^T = B A^T, A^T packed into panels ----------------------
// When A has fewer rows than B (a small batch times a weight matrix), packing A costs less than packing B.
// Tile (j, i) of C^T = B A^T is computed with B's rows broadcast and A^T's panel as the vector operand: each
// element is the same chain acc = fma(B[j, p], A[i, p], acc), p = 0, 1, ..., k-1, as in the packed form (the
// two factors of a fused multiply-add commute exactly), then alpha * acc (+ beta C), so either form gives C
// bit for bit.

// Tile of MR rows of B (j0 ..) x NV vectors of L rows of A (through the panel), stored transposed into C.
template <int MR, int NV>
void tile_swapped(i64 k, const float* b, i64 ldb, const float* panel, Simd::Mask last, i64 rows_a,
                  float alpha, float beta, float* c, i64 ldc) {
  // The broadcast kernel's accumulation with B's rows as the broadcast operand and the panel as the vectors:
  // acc = fma(B[j, p], A[i, p], acc), the factors of the packed form's chain in the other order.
  Simd::V acc[MR][NV];
  accumulate<MR, NV>(k, b, ldb, 1, panel, kPanel, last, acc);
  alignas(64) float t[MR][kPanel];
#pragma GCC unroll 16
  for (int r = 0; r < MR; ++r)
#pragma GCC unroll 2
    for (int v = 0; v < NV; ++v) Simd::store_aligned(&t[r][Simd::L * v], acc[r][v]);
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
void cols_swapped(i64 n, i64 k, const float* b, i64 ldb, const float* panel, Simd::Mask last, i64 rows_a,
                  float alpha, float beta, float* c, i64 ldc) {
  i64 j = 0;
  for (; j + Simd::MR <= n; j += Simd::MR)
    tile_swapped<Simd::MR, NV>(k, b + j * ldb, ldb, panel, last, rows_a, alpha, beta, c + j, ldc);
  const float* bj = b + j * ldb;
  float* cj = c + j;
  for_tail(n - j, [&](auto rows) {
    tile_swapped<decltype(rows)::value, NV>(k, bj, ldb, panel, last, rows_a, alpha, beta, cj, ldc);
  });
}

void sgemm_swapped(i64 m, i64 n, i64 k, float alpha, const float* a, i64 lda, const float* b, i64 ldb,
                   float beta, float* c, i64 ldc) {
  float* panel = thread_panel(k);
  for (i64 i = 0; i < m; i += kPanel) {
    const i64 rows = m - i < kPanel ? m - i : kPanel;
    pack_bt(k, rows, a + i * lda, lda, panel);
    if (rows > Simd::L)
      cols_swapped<2>(n, k, b, ldb, panel, Simd::mask(rows - Simd::L), rows, alpha, beta, c + i * ldc, ldc);
    else
      cols_swapped<1>(n, k, b, ldb, panel, Simd::mask(rows), rows, alpha, beta, c + i * ldc, ldc);
  }
}

void sgemm_any(bool transpose_a, bool transpose_b, i64 m, i64 n, i64 k, float alpha, const float* a, i64 lda,
               const float* b, i64 ldb, float beta, float* c, i64 ldc) {
  if (!transpose_b)
    sgemm_bcast(transpose_a, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  else if (2 * m <= n)
    sgemm_swapped(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
  else
    sgemm_packed(m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
