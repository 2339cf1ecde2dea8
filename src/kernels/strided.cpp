// Copies between tensors of any layout: the kernel behind contiguous(), to_vector() and in-place writes
// through views. Elements are moved as bytes of their size, so it serves every dtype. A copy that moves the
// innermost dim is a batch of 2-D transposes (transpose_tiles.inl) done in SIMD registers, compiled for the
// x86-64 baseline, AVX2 and AVX-512 and chosen at run time by kernel_config().isa.
#include <immintrin.h>

#include <algorithm>
#include <backprop/kernels.hpp>
#include <cstdint>
#include <cstring>

#include "kernels/device_kernels.hpp"
#include "kernels/isa_region.hpp"
#include "kernels/kernels.hpp"

namespace backprop::kernels {

namespace {

/// An N x N block transposed element by element: dst[i * ld + j] = src[j * ls + i] for i, j < N. The sizes
/// that have no register transpose use it.
template <class E, std::int64_t N>
struct ScalarBlock {
  [[gnu::always_inline]] static void run(E* d, std::int64_t ld, const E* s, std::int64_t ls) {
    for (std::int64_t i = 0; i < N; ++i)
      for (std::int64_t j = 0; j < N; ++j) d[i * ld + j] = s[j * ls + i];
  }
};

}  // namespace

// The register transposes move bits: elements of every dtype go through the float and integer shuffles as
// they are (4-byte ones as f32 lanes, 8-byte ones as f64 lanes). The x86-64 baseline (SSE2): 4 x 4 of 4 bytes,
// 2 x 2 of 8 bytes, 16 x 16 of 1 byte.
namespace baseline {
namespace {

template <class E, std::int64_t N>
struct Block : ScalarBlock<E, N> {};

template <>
struct Block<std::uint32_t, 4> {
  [[gnu::always_inline]] static void run(std::uint32_t* d, std::int64_t ld, const std::uint32_t* s,
                                         std::int64_t ls) {
    const auto in = [&](std::int64_t j) { return _mm_loadu_ps(reinterpret_cast<const float*>(s + j * ls)); };
    __m128 r0 = in(0), r1 = in(1), r2 = in(2), r3 = in(3);
    _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
    _mm_storeu_ps(reinterpret_cast<float*>(d), r0);
    _mm_storeu_ps(reinterpret_cast<float*>(d + ld), r1);
    _mm_storeu_ps(reinterpret_cast<float*>(d + 2 * ld), r2);
    _mm_storeu_ps(reinterpret_cast<float*>(d + 3 * ld), r3);
  }
};

template <>
struct Block<std::uint64_t, 2> {
  [[gnu::always_inline]] static void run(std::uint64_t* d, std::int64_t ld, const std::uint64_t* s,
                                         std::int64_t ls) {
    const __m128d r0 = _mm_loadu_pd(reinterpret_cast<const double*>(s));
    const __m128d r1 = _mm_loadu_pd(reinterpret_cast<const double*>(s + ls));
    _mm_storeu_pd(reinterpret_cast<double*>(d), _mm_unpacklo_pd(r0, r1));
    _mm_storeu_pd(reinterpret_cast<double*>(d + ld), _mm_unpackhi_pd(r0, r1));
  }
};

template <>
struct Block<std::uint8_t, 16> {
  // Each round interleaves register k with register k + 8, which rotates the 8 bits (register, lane) of an
  // element's position left by one; four rounds swap the register and lane halves: a transpose.
  [[gnu::always_inline]] static void run(std::uint8_t* d, std::int64_t ld, const std::uint8_t* s,
                                         std::int64_t ls) {
    __m128i r[16], t[16];
    for (int j = 0; j < 16; ++j) r[j] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(s + j * ls));
    for (int round = 0; round < 4; ++round) {
      for (int k = 0; k < 8; ++k) {
        t[2 * k] = _mm_unpacklo_epi8(r[k], r[k + 8]);
        t[2 * k + 1] = _mm_unpackhi_epi8(r[k], r[k + 8]);
      }
      for (int k = 0; k < 16; ++k) r[k] = t[k];
    }
    for (int i = 0; i < 16; ++i) _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i * ld), r[i]);
  }
};

template <class E>
constexpr std::int64_t kWidest = sizeof(E) == 4   ? 4
                                 : sizeof(E) == 8 ? 2
                                 : sizeof(E) == 1 ? 16
                                                  : 1;

#include "kernels/transpose_tiles.inl"

}  // namespace
}  // namespace baseline

// AVX2: 8 x 8 of 4 bytes, 4 x 4 of 8 bytes; the narrower strips and 1-byte elements as in the baseline.
BACKPROP_ISA_BEGIN("avx2")
namespace avx2 {
namespace {

template <class E, std::int64_t N>
struct Block : baseline::Block<E, N> {};

template <>
struct Block<std::uint32_t, 8> {
  // Within each 128-bit half, unpacking pairs of rows and then pairs of pairs transposes 4 x 4; the halves
  // are then swapped across registers.
  [[gnu::always_inline]] static void run(std::uint32_t* d, std::int64_t ld, const std::uint32_t* s,
                                         std::int64_t ls) {
    __m256 r[8], t[8];
    for (int j = 0; j < 8; ++j) r[j] = _mm256_loadu_ps(reinterpret_cast<const float*>(s + j * ls));
    for (int k = 0; k < 8; k += 2) {
      t[k] = _mm256_unpacklo_ps(r[k], r[k + 1]);
      t[k + 1] = _mm256_unpackhi_ps(r[k], r[k + 1]);
    }
    for (int k = 0; k < 8; k += 4) {
      const __m256d t0 = _mm256_castps_pd(t[k]), t1 = _mm256_castps_pd(t[k + 1]);
      const __m256d t2 = _mm256_castps_pd(t[k + 2]), t3 = _mm256_castps_pd(t[k + 3]);
      r[k] = _mm256_castpd_ps(_mm256_unpacklo_pd(t0, t2));
      r[k + 1] = _mm256_castpd_ps(_mm256_unpackhi_pd(t0, t2));
      r[k + 2] = _mm256_castpd_ps(_mm256_unpacklo_pd(t1, t3));
      r[k + 3] = _mm256_castpd_ps(_mm256_unpackhi_pd(t1, t3));
    }
    for (int i = 0; i < 4; ++i) {
      _mm256_storeu_ps(reinterpret_cast<float*>(d + i * ld), _mm256_permute2f128_ps(r[i], r[i + 4], 0x20));
      _mm256_storeu_ps(reinterpret_cast<float*>(d + (i + 4) * ld),
                       _mm256_permute2f128_ps(r[i], r[i + 4], 0x31));
    }
  }
};

template <>
struct Block<std::uint64_t, 4> {
  [[gnu::always_inline]] static void run(std::uint64_t* d, std::int64_t ld, const std::uint64_t* s,
                                         std::int64_t ls) {
    const auto in = [&](std::int64_t j) {
      return _mm256_loadu_pd(reinterpret_cast<const double*>(s + j * ls));
    };
    const __m256d r0 = in(0), r1 = in(1), r2 = in(2), r3 = in(3);
    const __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
    const __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
    _mm256_storeu_pd(reinterpret_cast<double*>(d), _mm256_permute2f128_pd(t0, t2, 0x20));
    _mm256_storeu_pd(reinterpret_cast<double*>(d + ld), _mm256_permute2f128_pd(t1, t3, 0x20));
    _mm256_storeu_pd(reinterpret_cast<double*>(d + 2 * ld), _mm256_permute2f128_pd(t0, t2, 0x31));
    _mm256_storeu_pd(reinterpret_cast<double*>(d + 3 * ld), _mm256_permute2f128_pd(t1, t3, 0x31));
  }
};

template <class E>
constexpr std::int64_t kWidest = sizeof(E) == 4   ? 8
                                 : sizeof(E) == 8 ? 4
                                 : sizeof(E) == 1 ? 16
                                                  : 1;

#include "kernels/transpose_tiles.inl"

}  // namespace
}  // namespace avx2
BACKPROP_ISA_END

// AVX-512F: 16 x 16 of 4 bytes; 8-byte elements and the narrower strips as in AVX2 (8 x 8 blocks of 8 bytes
// measured slower than the 4 x 4 ones: docs/performance.md). GCC 12's
// unpack and shuffle intrinsics start from _mm512_undefined_*(), which -Wuninitialized reports once inlined.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
BACKPROP_ISA_BEGIN("avx512f")
namespace avx512 {
namespace {

template <class E, std::int64_t N>
struct Block : avx2::Block<E, N> {};

template <>
struct Block<std::uint32_t, 16> {
  // 4 x 4 transposes within each 128-bit quarter (as AVX2 does), then two rounds of quarter shuffles.
  [[gnu::always_inline]] static void run(std::uint32_t* d, std::int64_t ld, const std::uint32_t* s,
                                         std::int64_t ls) {
    __m512 r[16], t[16];
    for (int j = 0; j < 16; ++j) r[j] = _mm512_loadu_ps(s + j * ls);
    for (int k = 0; k < 16; k += 2) {
      t[k] = _mm512_unpacklo_ps(r[k], r[k + 1]);
      t[k + 1] = _mm512_unpackhi_ps(r[k], r[k + 1]);
    }
    for (int k = 0; k < 16; k += 4) {
      const __m512d t0 = _mm512_castps_pd(t[k]), t1 = _mm512_castps_pd(t[k + 1]);
      const __m512d t2 = _mm512_castps_pd(t[k + 2]), t3 = _mm512_castps_pd(t[k + 3]);
      r[k] = _mm512_castpd_ps(_mm512_unpacklo_pd(t0, t2));
      r[k + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(t0, t2));
      r[k + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(t1, t3));
      r[k + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(t1, t3));
    }
    // Quarter q of r[4 b + c] now holds column 4 q + c of rows 4 b .. 4 b + 3.
    for (int k = 0; k < 4; ++k) {
      t[k] = _mm512_shuffle_f32x4(r[k], r[k + 4], 0x88);
      t[k + 4] = _mm512_shuffle_f32x4(r[k], r[k + 4], 0xdd);
      t[k + 8] = _mm512_shuffle_f32x4(r[k + 8], r[k + 12], 0x88);
      t[k + 12] = _mm512_shuffle_f32x4(r[k + 8], r[k + 12], 0xdd);
    }
    for (int k = 0; k < 8; ++k) {
      _mm512_storeu_ps(d + k * ld, _mm512_shuffle_f32x4(t[k], t[k + 8], 0x88));
      _mm512_storeu_ps(d + (k + 8) * ld, _mm512_shuffle_f32x4(t[k], t[k + 8], 0xdd));
    }
  }
};

template <class E>
constexpr std::int64_t kWidest = sizeof(E) == 4   ? 16
                                 : sizeof(E) == 8 ? 4
                                 : sizeof(E) == 1 ? 16
                                                  : 1;

#include "kernels/transpose_tiles.inl"

}  // namespace
}  // namespace avx512
BACKPROP_ISA_END
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

namespace {

template <class E>
using Transpose = void (*)(E*, std::int64_t, const E*, std::int64_t, std::int64_t, std::int64_t);

/// The transpose of the configured instruction set (kernel_config().isa).
template <class E>
Transpose<E> transpose_kernel() {
  switch (kernel_config().isa) {
    case Isa::avx512:
      return &avx512::transpose<E>;
    case Isa::avx2:
      return &avx2::transpose<E>;
    case Isa::baseline:
      break;
  }
  return &baseline::transpose<E>;
}

/// dst[i] = src[i] for every index i of `shape`, each side read through its own strides (elements). Dims of
/// size 1 are dropped and neighbours laid out alike on both sides merged, so a row-major pair is one memcpy, a
/// narrow is a memcpy per row and a permute that moves the innermost dim is a batch of 2-D transposes (cache
/// tiles of register-transposed blocks).
template <class E>
void copy_strided(E* dst, const std::int64_t* dst_strides, const E* src, const std::int64_t* src_strides,
                  const Shape& shape) {
  std::vector<std::int64_t> n, a, b;  // sizes, dst strides, src strides of the merged dims
  for (std::size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    if (!n.empty() && a.back() == dst_strides[d] * shape[d] && b.back() == src_strides[d] * shape[d]) {
      n.back() *= shape[d];
      a.back() = dst_strides[d];
      b.back() = src_strides[d];
    } else {
      n.push_back(shape[d]);
      a.push_back(dst_strides[d]);
      b.push_back(src_strides[d]);
    }
  }
  if (n.empty()) {
    *dst = *src;
    return;
  }
  const std::size_t last = n.size() - 1;
  // A transpose: one side walks `last` with stride 1 while the other walks another dim q with stride 1.
  const bool dst_rows = a[last] == 1 && b[last] != 1, src_rows = b[last] == 1 && a[last] != 1;
  std::size_t q = last;
  for (std::size_t d = 0; d < last; ++d)
    if ((dst_rows && b[d] == 1 && a[d] != 0) || (src_rows && a[d] == 1)) q = d;
  const Transpose<E> transpose = q != last ? transpose_kernel<E>() : nullptr;
  std::vector<std::size_t> rest;
  for (std::size_t d = 0; d < last; ++d)
    if (d != q) rest.push_back(d);
  std::int64_t outer = 1;
  for (std::size_t d : rest) outer *= n[d];
  std::vector<std::int64_t> c(rest.size(), 0);
  std::int64_t oo = 0, io = 0;
  const std::int64_t nl = n[last], al = a[last], bl = b[last];
  for (std::int64_t o = 0; o < outer; ++o) {
    if (transpose && dst_rows) {
      transpose(dst + oo, a[q], src + io, bl, n[q], nl);
    } else if (transpose) {
      transpose(dst + oo, al, src + io, b[q], nl, n[q]);
    } else if (al == 1 && bl == 1) {
      std::memcpy(dst + oo, src + io, static_cast<std::size_t>(nl) * sizeof(E));
    } else {
      for (std::int64_t j = 0; j < nl; ++j) dst[oo + j * al] = src[io + j * bl];
    }
    for (std::size_t k = rest.size(); k-- > 0;) {
      const std::size_t d = rest[k];
      oo += a[d];
      io += b[d];
      if (++c[k] < n[d]) break;
      oo -= a[d] * n[d];
      io -= b[d] * n[d];
      c[k] = 0;
    }
  }
}

char* base(const Tensor& t) {
  if (!t.device().is_cpu()) t.raw_data();  // throws the DeviceError of a host access to device memory
  return static_cast<char*>(t.storage()->data) +
         static_cast<std::size_t>(t.storage_offset()) * dtype_size(t.dtype());
}

void copy_bytes(void* dst, const std::int64_t* ds, const void* src, const std::int64_t* ss,
                const Shape& shape, std::size_t elem) {
  switch (elem) {
    case 1:
      return copy_strided(static_cast<std::uint8_t*>(dst), ds, static_cast<const std::uint8_t*>(src), ss,
                          shape);
    case 2:
      return copy_strided(static_cast<std::uint16_t*>(dst), ds, static_cast<const std::uint16_t*>(src), ss,
                          shape);
    case 4:
      return copy_strided(static_cast<std::uint32_t*>(dst), ds, static_cast<const std::uint32_t*>(src), ss,
                          shape);
    default:
      return copy_strided(static_cast<std::uint64_t*>(dst), ds, static_cast<const std::uint64_t*>(src), ss,
                          shape);
  }
}

}  // namespace

Tensor dense(const Tensor& x) {
  if (!x.defined() || x.is_contiguous()) return x;
  if (!x.device().is_cpu()) return device_kernels(x.device()).dense(x);
  Tensor y(x.shape(), x.dtype());
  if (y.numel() == 0) return y;
  copy_bytes(y.raw_data(), y.impl()->strides.data(), base(x), x.impl()->strides.data(), x.shape(),
             dtype_size(x.dtype()));
  return y;
}

void copy_elements(Tensor& dst, const Tensor& src) {
  BP_CHECK(dst.shape() == src.shape() && dst.dtype() == src.dtype(), ShapeError, "copy: ", src.shape(), " ",
           src.dtype(), " into ", dst.shape(), " ", dst.dtype());
  if (dst.numel() == 0) return;
  copy_bytes(base(dst), dst.impl()->strides.data(), base(src), src.impl()->strides.data(), dst.shape(),
             dtype_size(dst.dtype()));
}

void transpose_matrix(void* dst, std::int64_t ld, const void* src, std::int64_t ls, std::int64_t rows,
                      std::int64_t cols, std::size_t elem_bytes) {
  if (elem_bytes == 4)
    transpose_kernel<std::uint32_t>()(static_cast<std::uint32_t*>(dst), ld,
                                      static_cast<const std::uint32_t*>(src), ls, rows, cols);
  else
    transpose_kernel<std::uint64_t>()(static_cast<std::uint64_t*>(dst), ld,
                                      static_cast<const std::uint64_t*>(src), ls, rows, cols);
}

}  // namespace backprop::kernels
