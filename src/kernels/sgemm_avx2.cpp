// The own f32 GEMM kernel (sgemm_tiles.inl) for AVX2 + FMA: 8 lanes, tiles of 6 rows x 16 columns in 12 of
// the 16 ymm registers. Compiled for AVX2 + FMA by the pragma below, not by a compiler flag, so that nothing
// else in this file or in the headers it includes uses those instructions; it runs only where
// cpu_supports(Isa::avx2).
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "kernels/isa_region.hpp"
#include "kernels/sgemm_own.hpp"

BACKPROP_ISA_BEGIN("avx2,fma")

namespace backprop::kernels::avx2 {

namespace {

struct Simd {
  static constexpr int L = 8, MR = 6;
  using V = __m256;
  using Mask = __m256i;  // a lane is on when its sign bit is set
  static Mask mask(std::int64_t count) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(count)),
                              _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
  }
  static V zero() { return _mm256_setzero_ps(); }
  static V set1(float x) { return _mm256_set1_ps(x); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static V load(Mask m, const float* p) { return _mm256_maskload_ps(p, m); }  // masked lanes are not read
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static void store(float* p, Mask m, V v) { _mm256_maskstore_ps(p, m, v); }
  static void store_aligned(float* p, V v) { _mm256_store_ps(p, v); }
};

#include "kernels/sgemm_tiles.inl"

}  // namespace

void sgemm(bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
           const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
           std::int64_t ldc) {
  sgemm_any(transpose_a, transpose_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace backprop::kernels::avx2

BACKPROP_ISA_END
