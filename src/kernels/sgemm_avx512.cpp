// The own f32 GEMM kernel (sgemm_tiles.inl) for AVX-512F: 16 lanes, tiles of 8 rows x 32 columns in 16 zmm
// registers. Compiled for AVX-512F by the pragma below, not by a compiler flag, so that nothing else in this
// file or in the headers it includes uses those instructions; it runs only where cpu_supports(Isa::avx512).
#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>
#include <vector>

#include "kernels/isa_region.hpp"
#include "kernels/sgemm_own.hpp"

BACKPROP_ISA_BEGIN("avx512f")

namespace backprop::kernels::avx512 {

namespace {

struct Simd {
  static constexpr int L = 16, MR = 8;
  using V = __m512;
  using Mask = __mmask16;
  static Mask mask(std::int64_t count) {
    return count >= 16 ? Mask(0xFFFF) : static_cast<Mask>((1u << count) - 1u);
  }
  static V zero() { return _mm512_setzero_ps(); }
  static V set1(float x) { return _mm512_set1_ps(x); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static V load(Mask m, const float* p) { return _mm512_maskz_loadu_ps(m, p); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static void store(float* p, Mask m, V v) { _mm512_mask_storeu_ps(p, m, v); }
  static void store_aligned(float* p, V v) { _mm512_store_ps(p, v); }
};

#include "kernels/sgemm_tiles.inl"

}  // namespace

void sgemm(bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n, std::int64_t k, float alpha,
           const float* a, std::int64_t lda, const float* b, std::int64_t ldb, float beta, float* c,
           std::int64_t ldc) {
  sgemm_any(transpose_a, transpose_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

}  // namespace backprop::kernels::avx512

BACKPROP_ISA_END
