// Convolution's unrolling (im2col, col2im), BatchNorm2d's per-channel loops and the 2x2 max pool, generic
// (see conv_loops.hpp). Included by conv_loops.cpp once per instruction-set variant, inside a `#pragma GCC
// target` region and an anonymous namespace, after <algorithm>, <cstring>, <immintrin.h>, <type_traits> and
// conv_loops.hpp, with kVectorBytes (the variant's vector width) defined: the loops are compiled and
// vectorised for that variant, with internal linkage.

std::int64_t ceil_div(std::int64_t a, std::int64_t b) {
  return (a + b - 1) / b;
}

// The variant's vectors, through GCC's vector extensions: unaligned, with the element type's alignment.
template <class T>
struct VecOf;
template <>
struct VecOf<float> {
  typedef float type __attribute__((vector_size(kVectorBytes), aligned(4)));
};
template <>
struct VecOf<double> {
  typedef double type __attribute__((vector_size(kVectorBytes), aligned(8)));
};
template <class T>
using Vec = typename VecOf<T>::type;
template <class T>
constexpr std::int64_t kVec = kVectorBytes / static_cast<std::int64_t>(sizeof(T));
// Vector registers: 32 with AVX-512, 16 otherwise.
constexpr int kRegs = kVectorBytes == 64 ? 32 : 16;

template <class T>
inline Vec<T> load(const T* p) {
  Vec<T> v;
  std::memcpy(&v, p, sizeof v);
  return v;
}

template <class T>
inline void store(T* p, const Vec<T>& v) {
  std::memcpy(p, &v, sizeof v);
}

/// The output columns [lo, hi) whose input column ox * sw + off lies inside [0, w).
void column_range(const ConvGeom& g, std::int64_t off, std::int64_t& lo, std::int64_t& hi) {
  lo = off >= 0 ? 0 : ceil_div(-off, g.sw);
  hi = g.w - off <= 0 ? 0 : std::min(g.ow, ceil_div(g.w - off, g.sw));
  lo = std::min(lo, hi);
}

/// The output rows [lo, hi) whose input row oy * sh - ph + i * dh lies inside [0, h).
void row_range(const ConvGeom& g, std::int64_t i, std::int64_t& lo, std::int64_t& hi) {
  const std::int64_t off = i * g.dh - g.ph;
  lo = off >= 0 ? 0 : ceil_div(-off, g.sh);
  hi = g.h - off <= 0 ? 0 : std::min(g.oh, ceil_div(g.h - off, g.sh));
  lo = std::min(lo, hi);
}

/// dst[0, n) = src[0, n) for im2col's short rows, in moves of kVectorBytes (the last one overlapping the one
/// before): a memcpy call per row of a few dozen bytes costs more than the copy.
template <class T>
inline void copy_short(T* dst, const T* src, std::int64_t n) {
  constexpr std::int64_t chunk = kVectorBytes / sizeof(T), half = chunk / 2;
  if (n >= chunk) {
    std::int64_t i = 0;
    for (; i + chunk <= n; i += chunk) std::memcpy(dst + i, src + i, kVectorBytes);
    if (i < n) std::memcpy(dst + n - chunk, src + n - chunk, kVectorBytes);
  } else if constexpr (kVectorBytes == 64 && std::is_same_v<T, float>) {
    // AVX-512: one masked move (two overlapping half vectors measured slower on im2col's rows of 10-12).
    const __mmask16 m = static_cast<__mmask16>((1u << n) - 1);
    _mm512_mask_storeu_ps(dst, m, _mm512_maskz_loadu_ps(m, src));
  } else if (half > 0 && n >= half) {
    std::memcpy(dst, src, kVectorBytes / 2);
    std::memcpy(dst + n - half, src + n - half, kVectorBytes / 2);
  } else {
    for (std::int64_t i = 0; i < n; ++i) dst[i] = src[i];
  }
}

/// dst[0, n) += src[0, n) for col2im's short rows: whole vectors, one half vector, then single elements
/// (the compiler's own loop checks for overlap and peels on every row of a dozen elements).
template <class T>
inline void add_short(T* __restrict dst, const T* __restrict src, std::int64_t n) {
  typedef T Half __attribute__((vector_size(kVectorBytes / 2), aligned(sizeof(T))));
  std::int64_t i = 0;
  for (; i + kVec<T> <= n; i += kVec<T>) store(dst + i, load(dst + i) + load(src + i));
  constexpr std::int64_t half = kVec<T> / 2;
  if (half > 1 && i + half <= n) {
    Half a, b;
    std::memcpy(&a, dst + i, sizeof a);
    std::memcpy(&b, src + i, sizeof b);
    a += b;
    std::memcpy(dst + i, &a, sizeof a);
    i += half;
  }
  for (; i < n; ++i) dst[i] += src[i];
}

/// Zeroes column `ox` of `rows` rows of length `ow` at p: the border of im2col's rows, written down the
/// columns, since a short zeroing loop per row would become a memset call per row.
template <class T>
inline void zero_column(T* p, std::int64_t rows, std::int64_t ow) {
  for (std::int64_t r = 0; r < rows; ++r) p[r * ow] = T(0);
}

/// col [cg * kh * kw, oh * ow] from the cg channels at x (each h x w), zero where a window leaves the input.
/// With stride 1 and ow == w (a "same" convolution), one kernel offset's rows follow each other in x as in
/// col, so they move as one block and the wrapped border columns are zeroed after.
template <class T>
void im2col(const T* x, std::int64_t cg, const ConvGeom& g, T* col) {
  const std::int64_t ohw = g.oh * g.ow;
  const bool rows_follow = g.sw == 1 && g.sh == 1 && g.ow == g.w;
  for (std::int64_t c = 0; c < cg; ++c)
    for (std::int64_t i = 0; i < g.kh; ++i) {
      std::int64_t y0, y1;
      row_range(g, i, y0, y1);
      for (std::int64_t j = 0; j < g.kw; ++j) {
        T* row = col + ((c * g.kh + i) * g.kw + j) * ohw;
        const std::int64_t off = j * g.dw - g.pw;
        std::int64_t lo, hi;
        column_range(g, off, lo, hi);
        if (y0 > 0) std::fill(row, row + y0 * g.ow, T(0));
        if (y1 < g.oh) std::fill(row + y1 * g.ow, row + ohw, T(0));
        if (y0 >= y1) continue;
        T* r0 = row + y0 * g.ow;
        const T* xr0 = x + (c * g.h + y0 * g.sh - g.ph + i * g.dh) * g.w + off;
        const std::int64_t rows = y1 - y0;
        if (rows_follow && lo < hi) {
          std::memcpy(r0 + lo, xr0 + lo, static_cast<std::size_t>((rows - 1) * g.ow + hi - lo) * sizeof(T));
        } else if (g.sw == 1) {
          // Locals, not g's fields: the byte copies could alias g, so the compiler would reload them per row.
          const std::int64_t ow = g.ow, step = g.sh * g.w, n = hi - lo;
          T* dst = r0 + lo;
          const T* src = xr0 + lo;
          for (std::int64_t r = 0; r < rows; ++r) copy_short(dst + r * ow, src + r * step, n);
        } else {
          for (std::int64_t r = 0; r < rows; ++r) {
            const T* xr = xr0 + r * g.sh * g.w;
            for (std::int64_t ox = lo; ox < hi; ++ox) r0[r * g.ow + ox] = xr[ox * g.sw];
          }
        }
        for (std::int64_t ox = 0; ox < lo; ++ox) zero_column(r0 + ox, rows, g.ow);
        for (std::int64_t ox = std::max(lo, hi); ox < g.ow; ++ox) zero_column(r0 + ox, rows, g.ow);
      }
    }
}

/// col2im with AVX-512 for f32 when, at stride 1 and dilation 1, a whole input row fits in one vector (small
/// planes: LeNet's 14 x 14 inputs): each input row sums the shifted col rows of every tap that reaches it in
/// registers (masked loads, two sums per kernel row, alternating between kernel rows), then is read and
/// written once. Returns false, doing nothing, where it does not apply.
template <class T>
bool col2im_in_registers(const T* col, std::int64_t cg, const ConvGeom& g, T* x) {
  if constexpr (kVectorBytes == 64 && std::is_same_v<T, float>) {
    if (g.sh != 1 || g.sw != 1 || g.dh != 1 || g.dw != 1 || g.w > 16 || g.kw > 16) return false;
    std::int64_t shift[16];
    __mmask16 load[16];
    for (std::int64_t j = 0; j < g.kw; ++j) {
      shift[j] = g.pw - j;  // lane t (input column t) takes output column t + shift of kernel column j
      std::uint32_t bits = 0;
      for (std::int64_t t = 0; t < g.w; ++t)
        if (t + shift[j] >= 0 && t + shift[j] < g.ow) bits |= 1u << t;
      load[j] = static_cast<__mmask16>(bits);
    }
    const __mmask16 row_mask = static_cast<__mmask16>((1u << g.w) - 1);
    const std::int64_t ohw = g.oh * g.ow;
    for (std::int64_t c = 0; c < cg; ++c)
      for (std::int64_t iy = 0; iy < g.h; ++iy) {
        __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        for (std::int64_t i = 0; i < g.kh; ++i) {
          const std::int64_t oy = iy + g.ph - i;
          if (oy < 0 || oy >= g.oh) continue;
          const T* rows = col + (c * g.kh + i) * g.kw * ohw + oy * g.ow;
          std::int64_t j = 0;
          for (; j + 2 <= g.kw; j += 2) {
            s0 = _mm512_add_ps(s0, _mm512_maskz_loadu_ps(load[j], rows + j * ohw + shift[j]));
            s1 = _mm512_add_ps(s1, _mm512_maskz_loadu_ps(load[j + 1], rows + (j + 1) * ohw + shift[j + 1]));
          }
          if (j < g.kw) s0 = _mm512_add_ps(s0, _mm512_maskz_loadu_ps(load[j], rows + j * ohw + shift[j]));
          std::swap(s0, s2);
          std::swap(s1, s3);
        }
        T* xr = x + (c * g.h + iy) * g.w;
        const __m512 sum = _mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3));
        _mm512_mask_storeu_ps(xr, row_mask, _mm512_add_ps(_mm512_maskz_loadu_ps(row_mask, xr), sum));
      }
    return true;
  } else {
    (void)col, (void)cg, (void)g, (void)x;
    return false;
  }
}

/// The adjoint of im2col: adds each column entry back to the input position it was read from.
template <class T>
void col2im(const T* col, std::int64_t cg, const ConvGeom& g, T* x) {
  if (col2im_in_registers(col, cg, g, x)) return;
  const std::int64_t ohw = g.oh * g.ow;
  for (std::int64_t c = 0; c < cg; ++c)
    for (std::int64_t i = 0; i < g.kh; ++i) {
      std::int64_t y0, y1;
      row_range(g, i, y0, y1);
      for (std::int64_t j = 0; j < g.kw; ++j) {
        const T* row = col + ((c * g.kh + i) * g.kw + j) * ohw;
        const std::int64_t off = j * g.dw - g.pw;
        std::int64_t lo, hi;
        column_range(g, off, lo, hi);
        if (y0 >= y1) continue;
        const std::int64_t ow = g.ow, step = g.sh * g.w, sw = g.sw;
        const T* r = row + y0 * ow;
        T* xr = x + (c * g.h + y0 * g.sh - g.ph + i * g.dh) * g.w + off;
        for (std::int64_t oy = y0; oy < y1; ++oy, r += ow, xr += step) {
          if (sw == 1)
            add_short(xr + lo, r + lo, hi - lo);
          else
            for (std::int64_t ox = lo; ox < hi; ++ox) xr[ox * sw] += r[ox];
        }
      }
    }
}

// Per-channel sums in f64 over 16 interleaved partial sums, added up in a fixed order: the compiler vectorises
// them (one serial f64 chain is bound by the add latency, ~4x slower) and the result depends only on the data.
constexpr int kLanes = 16;

double add_lanes(const double (&acc)[kLanes]) {
  double half[kLanes / 2];
  for (int l = 0; l < kLanes / 2; ++l) half[l] = acc[l] + acc[l + kLanes / 2];
  return ((half[0] + half[1]) + (half[2] + half[3])) + ((half[4] + half[5]) + (half[6] + half[7]));
}

// BatchNorm2d's loops run over a range of channels [c0, c1) of x [n, c, hw] sample by sample: a sample's
// channels lie next to each other, so they are read as one stream, where going channel by channel made every
// plane (c * hw apart) a new one (docs/performance.md). Each channel keeps its own 16 partial sums, held
// for kGroup channels at a time, so a channel's sums do not depend on the range it is computed in.
constexpr std::int64_t kGroup = 16;

/// acc[l] += the plane's elements j with j % 16 == l (acc copied in and out: it could alias a double plane).
template <class T>
inline void add_plane(const T* __restrict q, std::int64_t hw, double* acc) {
  double a[kLanes];
  std::memcpy(a, acc, sizeof a);
  std::int64_t j = 0;
  for (; j + kLanes <= hw; j += kLanes)
    for (int l = 0; l < kLanes; ++l) a[l] += static_cast<double>(q[j + l]);
  for (; j < hw; ++j) a[j % kLanes] += static_cast<double>(q[j]);
  std::memcpy(acc, a, sizeof a);
}

/// acc[l] += (x - mu)^2 over the plane's elements j with j % 16 == l.
template <class T>
inline void add_plane_sq_dev(const T* __restrict q, std::int64_t hw, double mu, double* acc) {
  double a[kLanes];
  std::memcpy(a, acc, sizeof a);
  std::int64_t j = 0;
  for (; j + kLanes <= hw; j += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      const double d = static_cast<double>(q[j + l]) - mu;
      a[l] += d * d;
    }
  for (; j < hw; ++j) {
    const double d = static_cast<double>(q[j]) - mu;
    a[j % kLanes] += d * d;
  }
  std::memcpy(acc, a, sizeof a);
}

/// sa[l] += dy and sb[l] += dy (x - mu) over the plane's elements j with j % 16 == l.
template <class T>
inline void add_plane_dy(const T* __restrict dq, const T* __restrict q, std::int64_t hw, double mu,
                         double* sa, double* sb) {
  double a[kLanes], b[kLanes];
  std::memcpy(a, sa, sizeof a);
  std::memcpy(b, sb, sizeof b);
  std::int64_t j = 0;
  for (; j + kLanes <= hw; j += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      const double g = static_cast<double>(dq[j + l]);
      a[l] += g;
      b[l] += g * (static_cast<double>(q[j + l]) - mu);
    }
  for (; j < hw; ++j) {
    const double g = static_cast<double>(dq[j]);
    a[j % kLanes] += g;
    b[j % kLanes] += g * (static_cast<double>(q[j]) - mu);
  }
  std::memcpy(sa, a, sizeof a);
  std::memcpy(sb, b, sizeof b);
}

/// add_plane_dy of dy (r > 0), the gradient behind a ReLU fused after the BatchNorm2d (r its output), formed
/// as the ReLU's backward forms it (kernels::activation_backward).
template <class T>
inline void add_plane_dy_masked(const T* __restrict dq, const T* __restrict rq, const T* __restrict q,
                                std::int64_t hw, double mu, double* sa, double* sb) {
  double a[kLanes], b[kLanes];
  std::memcpy(a, sa, sizeof a);
  std::memcpy(b, sb, sizeof b);
  auto grad = [&](std::int64_t j) {
    return static_cast<double>(dq[j] * (rq[j] > T(0) ? T(1) : T(0)) * T(1));
  };
  std::int64_t j = 0;
  for (; j + kLanes <= hw; j += kLanes)
    for (int l = 0; l < kLanes; ++l) {
      const double g = grad(j + l);
      a[l] += g;
      b[l] += g * (static_cast<double>(q[j + l]) - mu);
    }
  for (; j < hw; ++j) {
    const double g = grad(j);
    a[j % kLanes] += g;
    b[j % kLanes] += g * (static_cast<double>(q[j]) - mu);
  }
  std::memcpy(sa, a, sizeof a);
  std::memcpy(sb, b, sizeof b);
}

/// out[ch] = sum of channel ch of p for ch in [c0, c1).
template <class T>
void channel_sums(const T* p, std::int64_t n, std::int64_t c, std::int64_t hw, std::int64_t c0,
                  std::int64_t c1, double* out) {
  for (std::int64_t g0 = c0; g0 < c1; g0 += kGroup) {
    const std::int64_t g1 = std::min(c1, g0 + kGroup);
    double acc[kGroup][kLanes] = {};
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t ch = g0; ch < g1; ++ch) add_plane(p + (i * c + ch) * hw, hw, acc[ch - g0]);
    for (std::int64_t ch = g0; ch < g1; ++ch) out[ch] = add_lanes(acc[ch - g0]);
  }
}

/// out[ch] = sum over channel ch of (x - mu[ch])^2 for ch in [c0, c1).
template <class T>
void channel_sq_devs(const T* p, std::int64_t n, std::int64_t c, std::int64_t hw, std::int64_t c0,
                     std::int64_t c1, const double* mu, double* out) {
  for (std::int64_t g0 = c0; g0 < c1; g0 += kGroup) {
    const std::int64_t g1 = std::min(c1, g0 + kGroup);
    double acc[kGroup][kLanes] = {};
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t ch = g0; ch < g1; ++ch)
        add_plane_sq_dev(p + (i * c + ch) * hw, hw, mu[ch], acc[ch - g0]);
    for (std::int64_t ch = g0; ch < g1; ++ch) out[ch] = add_lanes(acc[ch - g0]);
  }
}

/// sdy[ch] = sum(dy) and sdyx[ch] = sum(dy (x - mu[ch])) over channel ch, for ch in [c0, c1); with r (a fused
/// ReLU's output, else null) dy (r > 0) in place of dy.
template <class T>
void channel_dy_sums(const T* d, const T* r, const T* p, std::int64_t n, std::int64_t c, std::int64_t hw,
                     std::int64_t c0, std::int64_t c1, const double* mu, double* sdy, double* sdyx) {
  for (std::int64_t g0 = c0; g0 < c1; g0 += kGroup) {
    const std::int64_t g1 = std::min(c1, g0 + kGroup);
    double a[kGroup][kLanes] = {}, b[kGroup][kLanes] = {};
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t ch = g0; ch < g1; ++ch) {
        const std::int64_t at = (i * c + ch) * hw;
        if (r)
          add_plane_dy_masked(d + at, r + at, p + at, hw, mu[ch], a[ch - g0], b[ch - g0]);
        else
          add_plane_dy(d + at, p + at, hw, mu[ch], a[ch - g0], b[ch - g0]);
      }
    for (std::int64_t ch = g0; ch < g1; ++ch) {
      sdy[ch] = add_lanes(a[ch - g0]);
      sdyx[ch] = add_lanes(b[ch - g0]);
    }
  }
}

/// q = (p - m) scale + shift over channels [c0, c1), with channel ch's coefficients k[ch] (BatchNorm2d's
/// forward); with relu, a fused ReLU's max(q, 0) (as kernels::unary computes it).
template <class T>
void bn_apply(const T* p, T* q, std::int64_t n, std::int64_t c, std::int64_t hw, std::int64_t c0,
              std::int64_t c1, const BnCoeffs<T>* k, bool relu) {
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t ch = c0; ch < c1; ++ch) {
      const T* __restrict a = p + (i * c + ch) * hw;
      T* __restrict b = q + (i * c + ch) * hw;
      const BnCoeffs<T> e = k[ch];
      if (relu)
        for (std::int64_t j = 0; j < hw; ++j) {
          const T v = (a[j] - e.m) * e.scale + e.shift;
          b[j] = v > T(0) ? v : T(0);
        }
      else
        for (std::int64_t j = 0; j < hw; ++j) b[j] = (a[j] - e.m) * e.scale + e.shift;
    }
}

/// dx = k (dy - a - (x - m) iv b) over channels [c0, c1), with channel ch's coefficients k[ch] (BatchNorm2d's
/// input gradient); with r, dy (r > 0) in place of dy as in add_plane_dy_masked.
template <class T>
void bn_grad_apply(const T* p, const T* d, const T* r, T* q, std::int64_t n, std::int64_t c, std::int64_t hw,
                   std::int64_t c0, std::int64_t c1, const BnGradCoeffs<T>* k) {
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t ch = c0; ch < c1; ++ch) {
      const std::int64_t at = (i * c + ch) * hw;
      const T* __restrict x = p + at;
      const T* __restrict dy = d + at;
      T* __restrict dx = q + at;
      const BnGradCoeffs<T> e = k[ch];
      if (r) {
        const T* __restrict rr = r + at;
        for (std::int64_t j = 0; j < hw; ++j) {
          const T g = dy[j] * (rr[j] > T(0) ? T(1) : T(0)) * T(1);
          dx[j] = e.k * (g - e.a - (x[j] - e.m) * e.iv * e.b);
        }
      } else {
        for (std::int64_t j = 0; j < hw; ++j) dx[j] = e.k * (dy[j] - e.a - (x[j] - e.m) * e.iv * e.b);
      }
    }
}

/// One output row of the 2x2, stride-2 max pool: rows r0 and r0 + w of the input, the window's maximum (the
/// first of equal ones; NaN wins, the last NaN) and its flat in-plane index, r0's index being `base`. Selects,
/// not branches (random data mispredicts half of them), so the compiler vectorises it; the window corner is
/// kept in T like the index (exact below 2^24 in f32; the caller checks).
template <class T>
void max_pool_2x2_row(const T* __restrict r0, std::int64_t w, std::int64_t ow, T base, T* __restrict values,
                      double* __restrict indices) {
  const T* __restrict r1 = r0 + w;
  const T fw = static_cast<T>(w);
  const int n = static_cast<int>(ow);  // an int converts to T in every vector instruction set
  int ox = 0;
  if constexpr (kVectorBytes == 64 && std::is_same_v<T, float>) {
    // Sixteen windows at a time, the last ones under masks: the even and odd columns split by permutes, NaN
    // and `>` tested into masks.
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    const __m512 one = _mm512_set1_ps(1.0f), right = _mm512_set1_ps(fw), below = _mm512_set1_ps(fw + 1.0f);
    const __m512 steps = _mm512_setr_ps(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    for (; ox < n; ox += 16) {  // a short row or the last windows under masks
      const int rest = std::min(16, n - ox), in = 2 * rest;
      const __mmask16 out = static_cast<__mmask16>((1u << rest) - 1);
      const __mmask16 first = static_cast<__mmask16>(in >= 16 ? 0xFFFFu : (1u << in) - 1);
      const __mmask16 second = static_cast<__mmask16>(in > 16 ? (1u << (in - 16)) - 1 : 0u);
      const __m512 t0 = _mm512_maskz_loadu_ps(first, r0 + 2 * ox);
      const __m512 t1 = _mm512_maskz_loadu_ps(second, r0 + 2 * ox + 16);
      const __m512 u0 = _mm512_maskz_loadu_ps(first, r1 + 2 * ox);
      const __m512 u1 = _mm512_maskz_loadu_ps(second, r1 + 2 * ox + 16);
      __m512 best = _mm512_permutex2var_ps(t0, even, t1);
      const __m512 b = _mm512_permutex2var_ps(t0, odd, t1);
      const __m512 c = _mm512_permutex2var_ps(u0, even, u1);
      const __m512 d = _mm512_permutex2var_ps(u0, odd, u1);
      __mmask16 m = _mm512_cmp_ps_mask(b, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(b, b, _CMP_UNORD_Q);
      best = _mm512_mask_blend_ps(m, best, b);
      __m512 corner = _mm512_maskz_mov_ps(m, one);
      m = _mm512_cmp_ps_mask(c, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(c, c, _CMP_UNORD_Q);
      best = _mm512_mask_blend_ps(m, best, c);
      corner = _mm512_mask_blend_ps(m, corner, right);
      m = _mm512_cmp_ps_mask(d, best, _CMP_GT_OQ) | _mm512_cmp_ps_mask(d, d, _CMP_UNORD_Q);
      best = _mm512_mask_blend_ps(m, best, d);
      corner = _mm512_mask_blend_ps(m, corner, below);
      _mm512_mask_storeu_ps(values + ox, out, best);
      const __m512 at =
          _mm512_add_ps(_mm512_add_ps(_mm512_set1_ps(base + static_cast<float>(2 * ox)), steps), corner);
      // Widened to f64 eight at a time through memory: GCC 12 warns that the intrinsics splitting a register
      // in halves read an uninitialised one.
      alignas(64) float at_f[16];
      _mm512_store_ps(at_f, at);
      _mm512_mask_storeu_pd(indices + ox, static_cast<__mmask8>(out),
                            _mm512_maskz_cvtps_pd(0xFF, _mm256_load_ps(at_f)));
      _mm512_mask_storeu_pd(indices + ox + 8, static_cast<__mmask8>(out >> 8),
                            _mm512_maskz_cvtps_pd(0xFF, _mm256_load_ps(at_f + 8)));
    }
  }
  if constexpr (std::is_same_v<T, float>) {
    // The rest four windows at a time in SSE2 (the compiler vectorises neither the stride-2 loads nor, without
    // AVX-512's masks, the selects).
    const __m128 one = _mm_set1_ps(1.0f), right = _mm_set1_ps(fw), below = _mm_set1_ps(fw + 1.0f);
    const auto take_mask = [](__m128 v, __m128 best) {
      return _mm_or_ps(_mm_cmpgt_ps(v, best), _mm_cmpunord_ps(v, v));
    };
    const auto select = [](__m128 mask, __m128 a, __m128 b) {
      return _mm_or_ps(_mm_and_ps(mask, a), _mm_andnot_ps(mask, b));
    };
    for (; ox + 4 <= n; ox += 4) {
      const __m128 t0 = _mm_loadu_ps(r0 + 2 * ox), t1 = _mm_loadu_ps(r0 + 2 * ox + 4);
      const __m128 u0 = _mm_loadu_ps(r1 + 2 * ox), u1 = _mm_loadu_ps(r1 + 2 * ox + 4);
      __m128 best = _mm_shuffle_ps(t0, t1, _MM_SHUFFLE(2, 0, 2, 0));  // the windows' four corners
      const __m128 b = _mm_shuffle_ps(t0, t1, _MM_SHUFFLE(3, 1, 3, 1));
      const __m128 c = _mm_shuffle_ps(u0, u1, _MM_SHUFFLE(2, 0, 2, 0));
      const __m128 d = _mm_shuffle_ps(u0, u1, _MM_SHUFFLE(3, 1, 3, 1));
      __m128 m = take_mask(b, best);
      best = select(m, b, best);
      __m128 corner = _mm_and_ps(m, one);
      m = take_mask(c, best);
      best = select(m, c, best);
      corner = select(m, right, corner);
      m = take_mask(d, best);
      best = select(m, d, best);
      corner = select(m, below, corner);
      _mm_storeu_ps(values + ox, best);
      const float x0 = base + static_cast<float>(2 * ox);
      const __m128 at = _mm_add_ps(_mm_set_ps(x0 + 6.0f, x0 + 4.0f, x0 + 2.0f, x0), corner);
      _mm_storeu_pd(indices + ox, _mm_cvtps_pd(at));
      _mm_storeu_pd(indices + ox + 2, _mm_cvtps_pd(_mm_movehl_ps(at, at)));
    }
  }
  for (; ox < n; ++ox) {
    T best = r0[2 * ox], corner = 0;
    const T b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];
    bool take = (b > best) | (b != b);
    best = take ? b : best;
    corner = take ? T(1) : corner;
    take = (c > best) | (c != c);
    best = take ? c : best;
    corner = take ? fw : corner;
    take = (d > best) | (d != d);
    best = take ? d : best;
    corner = take ? fw + 1 : corner;
    values[ox] = best;
    indices[ox] = static_cast<double>(base + static_cast<T>(2 * ox) + corner);
  }
}

// ---- direct convolution of single-channel groups -----------------------------------------------------------
// A group with one input channel (the first layer of an image net, a depthwise convolution) makes an im2col
// GEMM with K = kh * kw, too short for the GEMM to pay for the unrolling. These loops compute it directly: the
// output row in vectors, kept in registers for a block of channels while the kernel's taps are added.

/// The padded input plane of a direct convolution: rows of `pw` elements; column ox * 1 + kx of row oy + ky
/// holds the padded input the output (oy, ox) sees through tap (ky, kx), zero outside the input.
struct DirectPlane {
  std::int64_t nv = 0, width = 0, height = 0;  // vectors per output row, the padded plane's width and height
};

template <class T>
DirectPlane direct_plane(const ConvGeom& g) {
  const std::int64_t nv = ceil_div(g.ow, kVec<T>);
  return {nv, nv * kVec<T> + g.kw - 1, g.oh + g.kh - 1};
}

/// The padded plane of one input channel x (h x w): row r + ph, column c + pw hold x[r, c]; the rest is zero.
template <class T>
void pad_plane(const T* x, const ConvGeom& g, const DirectPlane& p, T* out) {
  std::fill(out, out + p.height * p.width, T(0));
  const std::int64_t rows = std::min(g.h, p.height - g.ph), cols = std::min(g.w, p.width - g.pw);
  for (std::int64_t r = 0; r < rows; ++r) copy_short(out + (r + g.ph) * p.width + g.pw, x + r * g.w, cols);
}

/// ob output channels x nv vectors of one output row: acc = bias + sum over taps of weight * padded input.
template <class T, int OB, int NV>
void direct_tile(const T* prow, std::int64_t ppw, const T* w, const T* b, const ConvGeom& g, T* y,
                 std::int64_t ohw, const std::int64_t* xs) {
  const std::int64_t kk = g.kh * g.kw;
  Vec<T> acc[OB][NV];
#pragma GCC unroll 16
  for (int o = 0; o < OB; ++o)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) acc[o][j] = Vec<T>{} + (b ? b[o] : T(0));
  for (std::int64_t ky = 0; ky < g.kh; ++ky)
    for (std::int64_t kx = 0; kx < g.kw; ++kx) {
      Vec<T> in[NV];
#pragma GCC unroll 4
      for (int j = 0; j < NV; ++j) in[j] = load(prow + ky * ppw + kx + xs[j]);
      const T* wk = w + ky * g.kw + kx;
#pragma GCC unroll 16
      for (int o = 0; o < OB; ++o) {
        const T s = wk[o * kk];
#pragma GCC unroll 4
        for (int j = 0; j < NV; ++j) acc[o][j] += in[j] * s;
      }
    }
#pragma GCC unroll 16
  for (int o = 0; o < OB; ++o)
#pragma GCC unroll 4
    for (int j = 0; j < NV; ++j) {
      if (g.ow >= kVec<T>) {
        store(y + o * ohw + xs[j], acc[o][j]);
      } else {  // a row shorter than a vector
        T part[kVec<T>];
        store(part, acc[o][j]);
        for (std::int64_t ox = 0; ox < g.ow; ++ox) y[o * ohw + ox] = part[ox];
      }
    }
}

// Channels per tile of the forward: two vectors per channel, two inputs and a spare register.
template <class T>
constexpr int kDirectChannels = (kRegs - 3) / 2;

template <class T, int NV, int... OB>
constexpr auto direct_tiles(std::integer_sequence<int, OB...>) {
  using Tile = void (*)(const T*, std::int64_t, const T*, const T*, const ConvGeom&, T*, std::int64_t,
                        const std::int64_t*);
  return std::array<Tile, sizeof...(OB)>{direct_tile<T, OB + 1, NV>...};
}

/// y [samples][og, oh, ow] (samples y_stride apart) = the stride-1, undilated convolution of one input
/// plane per sample (x_stride apart) with og filters w [og, 1, kh, kw], plus b (null: none).
/// `scratch` holds direct_scratch(g, og) elements.
template <class T>
void direct_conv(const T* x, std::int64_t x_stride, const T* w, const T* b, std::int64_t samples,
                 std::int64_t og, const ConvGeom& g, T* y, std::int64_t y_stride, T* scratch) {
  static constexpr auto one = direct_tiles<T, 1>(std::make_integer_sequence<int, kDirectChannels<T>>{});
  static constexpr auto two = direct_tiles<T, 2>(std::make_integer_sequence<int, kDirectChannels<T>>{});
  const DirectPlane p = direct_plane<T>(g);
  const std::int64_t ohw = g.oh * g.ow;
  for (std::int64_t s = 0; s < samples; ++s) {
    pad_plane(x + s * x_stride, g, p, scratch);
    for (std::int64_t o0 = 0; o0 < og; o0 += kDirectChannels<T>) {
      const std::int64_t ob = std::min<std::int64_t>(kDirectChannels<T>, og - o0);
      for (std::int64_t oy = 0; oy < g.oh; ++oy)
        for (std::int64_t v = 0; v < p.nv; v += 2) {
          // Vectors start at v * lanes; the last row vector ends at ow, overlapping the one before it.
          std::int64_t xs[2];
          for (std::int64_t j = 0; j < 2; ++j)
            xs[j] = std::max<std::int64_t>(0, std::min((v + j) * kVec<T>, g.ow - kVec<T>));
          const auto& tiles = p.nv - v >= 2 ? two : one;
          tiles[ob - 1](scratch + oy * p.width, p.width, w + o0 * g.kh * g.kw, b ? b + o0 : nullptr, g,
                        y + s * y_stride + o0 * ohw + oy * g.ow, ohw, xs);
        }
    }
  }
}

/// Where the weight gradient reads dy: og planes `plane` apart, rows `row` apart, each row in vectors at 0,
/// lanes, 2 lanes, ... and a last one at `last`, whose first `skip` lanes the one before it already covered.
template <class T>
struct DyRows {
  const T* p;
  std::int64_t plane, row, full, last, skip;
};

/// a[o, t] += dy vector of channel o times the padded input at tap t (mask: which lanes count, null: all).
template <class T, int OB, int TB>
inline void wgrad_step(Vec<T> (&a)[OB][TB], const T* dy, std::int64_t plane, const T* in,
                       const std::int64_t* off, const Vec<T>* mask) {
  Vec<T> d[OB];
#pragma GCC unroll 8
  for (int o = 0; o < OB; ++o) d[o] = mask ? load(dy + o * plane) * *mask : load(dy + o * plane);
#pragma GCC unroll 8
  for (int t = 0; t < TB; ++t) {
    const Vec<T> xv = load(in + off[t]);
#pragma GCC unroll 8
    for (int o = 0; o < OB; ++o) a[o][t] += d[o] * xv;
  }
}

/// acc[o, t] (vectors) += dy rows of channel o times the padded input shifted to tap t, over all output rows.
template <class T, int OB, int TB>
void direct_wgrad_tile(const T* plane, std::int64_t ppw, const DyRows<T>& dy, const std::int64_t* off,
                       const ConvGeom& g, T* acc, std::int64_t kk) {
  Vec<T> a[OB][TB];
#pragma GCC unroll 8
  for (int o = 0; o < OB; ++o)
#pragma GCC unroll 8
    for (int t = 0; t < TB; ++t) a[o][t] = load(acc + (o * kk + t) * kVec<T>);
  Vec<T> mask;
  for (std::int64_t l = 0; l < kVec<T>; ++l) mask[l] = l < dy.skip ? T(0) : T(1);
  for (std::int64_t oy = 0; oy < g.oh; ++oy) {
    const T* dr = dy.p + oy * dy.row;
    const T* in = plane + oy * ppw;
    for (std::int64_t x0 = 0; x0 < dy.full * kVec<T>; x0 += kVec<T>)
      wgrad_step<T, OB, TB>(a, dr + x0, dy.plane, in + x0, off, nullptr);
    if (dy.last >= 0) wgrad_step<T, OB, TB>(a, dr + dy.last, dy.plane, in + dy.last, off, &mask);
  }
#pragma GCC unroll 8
  for (int o = 0; o < OB; ++o)
#pragma GCC unroll 8
    for (int t = 0; t < TB; ++t) store(acc + (o * kk + t) * kVec<T>, a[o][t]);
}

// Tiles of the weight gradient: ob x tb accumulators, ob gradient vectors and one input vector, at most
// kWgradChannels x kWgradTaps.
template <class T>
constexpr int kWgradChannels = kRegs == 32 ? 7 : 3;
template <class T>
constexpr int kWgradTaps = kRegs == 32 ? 5 : 3;

/// The tile shape for kk taps: tb divides kk where a register budget allows it, so no tile runs short.
void wgrad_tile_shape(std::int64_t kk, std::int64_t& ob, std::int64_t& tb) {
  if (kRegs < 32)
    ob = 3, tb = 3;
  else if (kk % 5 == 0)
    ob = 5, tb = 5;
  else if (kk % 3 == 0)
    ob = 7, tb = 3;
  else
    ob = 6, tb = 4;
}

template <class T, int OB, int... TB>
constexpr auto wgrad_row(std::integer_sequence<int, TB...>) {
  using Tile = void (*)(const T*, std::int64_t, const DyRows<T>&, const std::int64_t*, const ConvGeom&, T*,
                        std::int64_t);
  return std::array<Tile, sizeof...(TB)>{direct_wgrad_tile<T, OB, TB + 1>...};
}

template <class T, int... OB>
constexpr auto wgrad_tiles(std::integer_sequence<int, OB...>) {
  return std::array{wgrad_row<T, OB + 1>(std::make_integer_sequence<int, kWgradTaps<T>>{})...};
}

/// dw [og, 1, kh, kw] += the correlation of each sample's input plane with its og output gradients (the weight
/// gradient of direct_conv), summed over the samples in order.
template <class T>
void direct_wgrad(const T* x, std::int64_t x_stride, const T* dy, std::int64_t dy_stride,
                  std::int64_t samples, std::int64_t og, const ConvGeom& g, T* dw, T* scratch) {
  static constexpr auto tiles = wgrad_tiles<T>(std::make_integer_sequence<int, kWgradChannels<T>>{});
  const DirectPlane p = direct_plane<T>(g);
  const std::int64_t kk = g.kh * g.kw, ohw = g.oh * g.ow, row = p.nv * kVec<T>;
  // Rows of at least a vector are read in place, the last vector overlapping; shorter ones are copied into
  // zero-padded rows of one vector.
  const bool in_place = g.ow >= kVec<T>;
  T* plane = scratch;
  T* dyp = plane + p.height * p.width;
  T* acc = dyp + (in_place ? 0 : og * g.oh * row);  // og * kk vectors of partial sums
  std::fill(acc, acc + og * kk * kVec<T>, T(0));
  if (!in_place) std::fill(dyp, dyp + og * g.oh * row, T(0));
  DyRows<T> rows{nullptr, ohw, g.ow, g.ow / kVec<T>, g.ow - kVec<T>, kVec<T> - g.ow % kVec<T>};
  if (g.ow % kVec<T> == 0) rows.last = -1;
  if (!in_place) rows = {dyp, g.oh * row, row, 1, -1, 0};
  std::int64_t off[kWgradTaps<T>], ob_max, tb_max;
  wgrad_tile_shape(kk, ob_max, tb_max);
  for (std::int64_t s = 0; s < samples; ++s) {
    pad_plane(x + s * x_stride, g, p, plane);
    const T* dys = dy + s * dy_stride;
    if (in_place)
      rows.p = dys;
    else
      for (std::int64_t o = 0; o < og; ++o)
        for (std::int64_t oy = 0; oy < g.oh; ++oy)
          copy_short(dyp + (o * g.oh + oy) * row, dys + o * ohw + oy * g.ow, g.ow);
    for (std::int64_t o0 = 0; o0 < og; o0 += ob_max) {
      const std::int64_t ob = std::min(ob_max, og - o0);
      DyRows<T> block = rows;
      block.p += o0 * rows.plane;
      for (std::int64_t t0 = 0; t0 < kk; t0 += tb_max) {
        const std::int64_t tb = std::min(tb_max, kk - t0);
        for (std::int64_t t = 0; t < tb; ++t) off[t] = (t0 + t) / g.kw * p.width + (t0 + t) % g.kw;
        tiles[ob - 1][tb - 1](plane, p.width, block, off, g, acc + (o0 * kk + t0) * kVec<T>, kk);
      }
    }
  }
  for (std::int64_t i = 0; i < og * kk; ++i) {
    T sum = 0;
    for (std::int64_t l = 0; l < kVec<T>; ++l) sum += acc[i * kVec<T> + l];
    dw[i] += sum;
  }
}

// ---- broadcast convolution: the output channels of a pixel in vectors -------------------------------------
// With several input channels and a vector or more of output channels per group, a pixel's output channels
// fill vectors: each (tap, pixel) is one multiply-add of a packed weight vector and the input value
// broadcast, read in place (no unrolled copy of the input). Results are pixel-major ([oh * ow][opad]); the
// caller transposes them to NCHW. The weight gradient is the same product summed over the pixels.

/// The planes the broadcast loops read: `plane` elements apart, rows `row` apart; row oy + ky, column ox + kx
/// holds the (padded) input that output (oy, ox) sees through tap (ky, kx).
template <class T>
struct BcastInput {
  const T* p;
  std::int64_t plane, row;
};

/// The sample's cg channels as read in place (no padding), or padded into `scratch`.
template <class T>
BcastInput<T> bcast_input(const T* x, std::int64_t cg, const ConvGeom& g, T* scratch) {
  if (g.ph == 0 && g.pw == 0) return {x, g.h * g.w, g.w};
  const DirectPlane p{0, g.ow + g.kw - 1, g.oh + g.kh - 1};
  for (std::int64_t c = 0; c < cg; ++c) pad_plane(x + c * g.h * g.w, g, p, scratch + c * p.height * p.width);
  return {scratch, p.height * p.width, p.width};
}

/// Hides p's value from the optimiser: GCC's predictive commoning would carry the inputs loaded for one tap
/// over to the next as register copies, which costs more than reloading them.
template <class P>
inline void opaque(P& p) {
  asm("" : "+r"(p));
}

// Accumulators of one tile (a few registers stay for the weights or gradients and the broadcast).
constexpr int kBcastRegs = kRegs - 4;
// Output-channel vectors per tile, and the widest kernel-row chunk of the weight gradient's tiles.
constexpr int kBcastVecs = 4, kBcastCols = 7;

/// OV vectors of output channels for P pixels of one output row (in: their first pixel's input):
/// out[j] = bias + the sum over the cg channels and the taps of the packed weight times the input.
template <class T, int OV, int P>
void bcast_conv_tile(const T* in, const BcastInput<T>& x, std::int64_t cg, const ConvGeom& g, const T* wp,
                     std::int64_t opad, const T* bias, T* out) {
  Vec<T> acc[P][OV];
#pragma GCC unroll 32
  for (int j = 0; j < P; ++j)
#pragma GCC unroll 4
    for (int v = 0; v < OV; ++v) acc[j][v] = load(bias + v * kVec<T>);
  for (std::int64_t c = 0; c < cg; ++c)
    for (std::int64_t ky = 0; ky < g.kh; ++ky) {
      const T* r = in + c * x.plane + ky * x.row;
      for (std::int64_t kx = 0; kx < g.kw; ++kx, wp += opad) {
        Vec<T> w[OV];
#pragma GCC unroll 4
        for (int v = 0; v < OV; ++v) w[v] = load(wp + v * kVec<T>);
        const T* q = r + kx;
        opaque(q);
#pragma GCC unroll 32
        for (int j = 0; j < P; ++j) {
          const T s = q[j];
#pragma GCC unroll 4
          for (int v = 0; v < OV; ++v) acc[j][v] += w[v] * s;
        }
      }
    }
#pragma GCC unroll 32
  for (int j = 0; j < P; ++j)
#pragma GCC unroll 4
    for (int v = 0; v < OV; ++v) store(out + j * opad + v * kVec<T>, acc[j][v]);
}

template <int OV>
constexpr int kBcastPixels = kBcastRegs / OV;

template <class T, int OV, int... P>
constexpr auto bcast_conv_row(std::integer_sequence<int, P...>) {
  using Tile = void (*)(const T*, const BcastInput<T>&, std::int64_t, const ConvGeom&, const T*, std::int64_t,
                        const T*, T*);
  return std::array<Tile, sizeof...(P)>{bcast_conv_tile<T, OV, P + 1>...};
}

/// out [oh * ow][opad] = one sample's convolution of its cg channels x (h x w each) with the packed weight
/// wp [cg * kh * kw][opad], plus bias [opad]. `scratch`: bcast_scratch(g) elements.
template <class T>
void bcast_conv(const T* x, std::int64_t cg, const ConvGeom& g, const T* wp, std::int64_t opad, const T* bias,
                T* out, T* scratch) {
  static constexpr auto t1 = bcast_conv_row<T, 1>(std::make_integer_sequence<int, kBcastPixels<1>>{});
  static constexpr auto t2 = bcast_conv_row<T, 2>(std::make_integer_sequence<int, kBcastPixels<2>>{});
  static constexpr auto t3 = bcast_conv_row<T, 3>(std::make_integer_sequence<int, kBcastPixels<3>>{});
  static constexpr auto t4 = bcast_conv_row<T, 4>(std::make_integer_sequence<int, kBcastPixels<4>>{});
  static constexpr decltype(t1.data()) rows[] = {t1.data(), t2.data(), t3.data(), t4.data()};
  const BcastInput<T> in = bcast_input(x, cg, g, scratch);
  for (std::int64_t o0 = 0; o0 < opad; o0 += kBcastVecs * kVec<T>) {
    const std::int64_t ov = std::min<std::int64_t>(kBcastVecs, (opad - o0) / kVec<T>);
    // The row in near-equal tiles of at most kBcastRegs / ov pixels; the last one ends at ow.
    const std::int64_t parts = ceil_div(g.ow, kBcastRegs / ov), p = ceil_div(g.ow, parts);
    const auto tile = rows[ov - 1][p - 1];
    for (std::int64_t oy = 0; oy < g.oh; ++oy)
      for (std::int64_t x0 = 0; x0 < g.ow; x0 += p) {
        const std::int64_t ox = std::min(x0, g.ow - p);
        tile(in.p + oy * in.row + ox, in, cg, g, wp + o0, opad, bias + o0,
             out + (oy * g.ow + ox) * opad + o0);
      }
  }
}

/// acc [NB kernel rows][KW taps][OV vectors] (rows acc_row apart, taps opad apart) += the output gradient dyT
/// [oh * ow][opad] times the inputs the taps see, over all output pixels. Kernel row r reads from base[r];
/// only the first `rows` are real (the others repeat one and are not stored).
template <class T, int OV, int NB, int KW>
void bcast_wgrad_tile(const T* const* base, std::int64_t rows, std::int64_t row, const T* dyT,
                      std::int64_t opad, const ConvGeom& g, T* acc, std::int64_t acc_row) {
  Vec<T> a[NB][KW][OV];
  const T* b[NB];
#pragma GCC unroll 8
  for (int r = 0; r < NB; ++r) {
    b[r] = base[r];
#pragma GCC unroll 8
    for (int k = 0; k < KW; ++k)
#pragma GCC unroll 4
      for (int v = 0; v < OV; ++v)
        a[r][k][v] = r < rows ? load(acc + r * acc_row + k * opad + v * kVec<T>) : Vec<T>{};
  }
  for (std::int64_t oy = 0; oy < g.oh; ++oy) {
    for (std::int64_t ox = 0; ox < g.ow; ++ox) {
      Vec<T> d[OV];
#pragma GCC unroll 4
      for (int v = 0; v < OV; ++v) d[v] = load(dyT + ox * opad + v * kVec<T>);
      std::int64_t i = ox;
      opaque(i);
#pragma GCC unroll 8
      for (int r = 0; r < NB; ++r)
#pragma GCC unroll 8
        for (int k = 0; k < KW; ++k) {
          const T s = b[r][i + k];
#pragma GCC unroll 4
          for (int v = 0; v < OV; ++v) a[r][k][v] += d[v] * s;
        }
    }
    dyT += g.ow * opad;
#pragma GCC unroll 8
    for (int r = 0; r < NB; ++r) b[r] += row;
  }
#pragma GCC unroll 8
  for (int r = 0; r < NB; ++r)
    if (r < rows)
#pragma GCC unroll 8
      for (int k = 0; k < KW; ++k)
#pragma GCC unroll 4
        for (int v = 0; v < OV; ++v) store(acc + r * acc_row + k * opad + v * kVec<T>, a[r][k][v]);
}

/// Kernel rows per weight-gradient tile of OV vectors and KW taps: as many as the registers hold, at most 8
/// (one general register each).
constexpr int bcast_wgrad_rows(int ov, int kw) {
  return std::max(1, std::min(8, kBcastRegs / (ov * kw)));
}

template <class T, int OV, int... KW>
constexpr auto bcast_wgrad_row(std::integer_sequence<int, KW...>) {
  using Tile = void (*)(const T* const*, std::int64_t, std::int64_t, const T*, std::int64_t, const ConvGeom&,
                        T*, std::int64_t);
  return std::array<Tile, sizeof...(KW)>{bcast_wgrad_tile<T, OV, bcast_wgrad_rows(OV, KW + 1), KW + 1>...};
}

template <class T, int... OV>
constexpr auto bcast_wgrad_tiles(std::integer_sequence<int, OV...>) {
  return std::array{bcast_wgrad_row<T, OV + 1>(std::make_integer_sequence<int, kBcastCols>{})...};
}

/// acc [cg * kh * kw][opad] += one sample's weight gradient: dyT [oh * ow][opad] (its output gradient,
/// pixel-major) times the input windows bcast_conv reads. `scratch`: bcast_scratch(g) elements.
template <class T>
void bcast_wgrad(const T* x, std::int64_t cg, const ConvGeom& g, const T* dyT, std::int64_t opad, T* acc,
                 T* scratch) {
  static constexpr auto tiles = bcast_wgrad_tiles<T>(std::make_integer_sequence<int, kBcastVecs>{});
  const BcastInput<T> in = bcast_input(x, cg, g, scratch);
  const std::int64_t krows = cg * g.kh;
  const T* base[8];
  for (std::int64_t o0 = 0; o0 < opad; o0 += kBcastVecs * kVec<T>) {
    const std::int64_t ov = std::min<std::int64_t>(kBcastVecs, (opad - o0) / kVec<T>);
    for (std::int64_t kx0 = 0; kx0 < g.kw; kx0 += kBcastCols) {
      const std::int64_t kw = std::min<std::int64_t>(kBcastCols, g.kw - kx0);
      const std::int64_t nb = bcast_wgrad_rows(static_cast<int>(ov), static_cast<int>(kw));
      for (std::int64_t r0 = 0; r0 < krows; r0 += nb) {
        const std::int64_t rows = std::min(nb, krows - r0);
        for (std::int64_t r = 0; r < nb; ++r) {
          const std::int64_t kr = r0 + std::min(r, rows - 1), c = kr / g.kh, ky = kr % g.kh;
          base[r] = in.p + c * in.plane + ky * in.row + kx0;
        }
        tiles[ov - 1][kw - 1](base, rows, in.row, dyT + o0, opad, g, acc + (r0 * g.kw + kx0) * opad + o0,
                              g.kw * opad);
      }
    }
  }
}

// ---- BatchNorm2d + ReLU + 2x2 max pool, fused -------------------------------------------------------------
// The training step of BatchNorm2d -> ReLU -> MaxPool2d(2) writes only the pooled output; the backward
// recomputes each window's ReLU outputs from x, so neither the full-size ReLU output nor the pool's indices
// are kept, and the pooled gradient goes straight into BatchNorm's formulas (docs/performance.md).

/// BatchNorm2d's value of x, then the ReLU, as bn_apply forms them.
template <class T>
inline T bn_relu_value(T x, const BnCoeffs<T>& e) {
  const T v = (x - e.m) * e.scale + e.shift;
  return v > T(0) ? v : T(0);
}

/// The window at column 2 ox of rows r0 and r1: its ReLU outputs' maximum, the first of equal ones
/// (max_pool_2x2_row's order), and the window corner (0-3, row-major) it lies at.
template <class T>
inline T bn_pool_window(const T* r0, const T* r1, std::int64_t ox, const BnCoeffs<T>& e, int& corner) {
  const T v[4] = {bn_relu_value(r0[2 * ox], e), bn_relu_value(r0[2 * ox + 1], e),
                  bn_relu_value(r1[2 * ox], e), bn_relu_value(r1[2 * ox + 1], e)};
  T best = v[0];
  corner = 0;
  for (int k = 1; k < 4; ++k) {
    const bool take = v[k] > best;
    best = take ? v[k] : best;
    corner = take ? k : corner;
  }
  return best;
}

/// Sixteen windows of a plane in AVX-512 (f32): lanes 0-7 are the windows at a0 and a1 (two input rows, 16
/// columns each, under the mask `first`), lanes 8-15 those at b0 and b1 (under `second`). Rows of more than
/// eight windows take 16 windows of one row pair (b = a + 16); shorter ones two row pairs, one per half, so
/// the lanes stay filled. `lanes` marks the real windows, `pooled` the first one's offset in the pooled plane:
/// they lie at [pooled, pooled + count) there, in lane order once `packed` lanes are compressed.
template <class T>
struct Windows16 {
  const T *a0, *a1, *b0, *b1;
  __mmask16 first, second, lanes;
  bool packed;
  std::int64_t pooled, count;
  // Filled by bn_pool_windows16: the corners' x values (even and odd columns of the two rows), the windows'
  // maximum ReLU output and the corner it lies at (0-3 as floats), as bn_pool_window computes them.
  __m512 x[4], best, corner;
};

/// Calls f(Windows16&) for every chunk of sixteen windows of the h x w plane at p (h, w >= 2).
template <class T, class F>
inline void for_window_chunks(const T* p, std::int64_t h, std::int64_t w, F&& f) {
  const std::int64_t oh = h / 2, ow = w / 2;
  Windows16<T> s;
  if (ow > 8) {
    s.packed = false;
    for (std::int64_t oy = 0; oy < oh; ++oy)
      for (std::int64_t ox = 0; ox < ow; ox += 16) {
        const int rest = static_cast<int>(std::min<std::int64_t>(16, ow - ox)), in = 2 * rest;
        s.a0 = p + 2 * oy * w + 2 * ox;
        s.a1 = s.a0 + w;
        s.b0 = s.a0 + 16;
        s.b1 = s.a1 + 16;
        s.first = static_cast<__mmask16>(in >= 16 ? 0xFFFFu : (1u << in) - 1);
        s.second = static_cast<__mmask16>(in > 16 ? (1u << (in - 16)) - 1 : 0u);
        s.lanes = static_cast<__mmask16>((1u << rest) - 1);
        s.pooled = oy * ow + ox;
        s.count = rest;
        f(s);
      }
    return;
  }
  s.packed = true;
  const auto half = static_cast<__mmask16>((1u << ow) - 1);
  for (std::int64_t oy = 0; oy < oh; oy += 2) {
    const bool pair = oy + 1 < oh;
    s.a0 = p + 2 * oy * w;
    s.a1 = s.a0 + w;
    s.b0 = pair ? s.a0 + 2 * w : s.a0;
    s.b1 = s.b0 + w;
    s.first = static_cast<__mmask16>((1u << (2 * ow)) - 1);
    s.second = pair ? s.first : __mmask16{0};
    s.lanes = static_cast<__mmask16>(pair ? half | (half << 8) : half);
    s.pooled = oy * ow;
    s.count = pair ? 2 * ow : ow;
    f(s);
  }
}

template <class T>
inline void bn_pool_windows16(Windows16<T>& s, const BnCoeffs<T>& e) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
  const __m512 t0 = _mm512_maskz_loadu_ps(s.first, s.a0), t1 = _mm512_maskz_loadu_ps(s.second, s.b0);
  const __m512 u0 = _mm512_maskz_loadu_ps(s.first, s.a1), u1 = _mm512_maskz_loadu_ps(s.second, s.b1);
  s.x[0] = _mm512_permutex2var_ps(t0, even, t1);
  s.x[1] = _mm512_permutex2var_ps(t0, odd, t1);
  s.x[2] = _mm512_permutex2var_ps(u0, even, u1);
  s.x[3] = _mm512_permutex2var_ps(u0, odd, u1);
  const __m512 m = _mm512_set1_ps(e.m), scale = _mm512_set1_ps(e.scale), shift = _mm512_set1_ps(e.shift);
  const __m512 zero = _mm512_setzero_ps();
  __m512 v[4];
  for (int k = 0; k < 4; ++k)  // max(v, 0) takes 0 for NaN, as the ReLU does
    v[k] = _mm512_maskz_max_ps(0xFFFF, _mm512_fmadd_ps(_mm512_sub_ps(s.x[k], m), scale, shift), zero);
  s.best = v[0];
  s.corner = zero;
  for (int k = 1; k < 4; ++k) {
    const __mmask16 take = _mm512_cmp_ps_mask(v[k], s.best, _CMP_GT_OQ);
    s.best = _mm512_mask_blend_ps(take, s.best, v[k]);
    s.corner = _mm512_mask_blend_ps(take, s.corner, _mm512_set1_ps(static_cast<float>(k)));
  }
}

/// The pooled gradient of a chunk's windows, in their lanes, where the window's maximum is positive; 0
/// elsewhere.
template <class T>
inline __m512 chunk_grad(const Windows16<T>& s, const T* d) {
  const auto stored = static_cast<__mmask16>((1u << s.count) - 1);
  const __m512 g = _mm512_maskz_loadu_ps(stored, d + s.pooled);
  const __mmask16 live = _mm512_cmp_ps_mask(s.best, _mm512_setzero_ps(), _CMP_GT_OQ) & s.lanes;
  return s.packed ? _mm512_maskz_mov_ps(live, _mm512_maskz_expand_ps(s.lanes, g))
                  : _mm512_maskz_mov_ps(live, g);
}

/// y [n, c, oh, ow] = the 2x2, stride-2 max pool of relu(BatchNorm2d(x)) over channels [c0, c1) of x
/// [n, c, h, w], with channel ch's coefficients k[ch].
template <class T>
void bn_relu_pool(const T* p, T* y, std::int64_t n, std::int64_t c, std::int64_t h, std::int64_t w,
                  std::int64_t c0, std::int64_t c1, const BnCoeffs<T>* k) {
  const std::int64_t oh = h / 2, ow = w / 2;
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t ch = c0; ch < c1; ++ch) {
      const BnCoeffs<T> e = k[ch];
      const T* plane = p + (i * c + ch) * h * w;
      T* out = y + (i * c + ch) * oh * ow;
      if constexpr (kVectorBytes == 64 && std::is_same_v<T, float>) {
        for_window_chunks(plane, h, w, [&](Windows16<T>& s) {
          bn_pool_windows16(s, e);
          const __m512 v = s.packed ? _mm512_maskz_compress_ps(s.lanes, s.best) : s.best;
          _mm512_mask_storeu_ps(out + s.pooled, static_cast<__mmask16>((1u << s.count) - 1), v);
        });
        continue;
      }
      for (std::int64_t oy = 0; oy < oh; ++oy)
        for (std::int64_t ox = 0; ox < ow; ++ox) {
          int corner = 0;
          out[oy * ow + ox] = bn_pool_window(plane + 2 * oy * w, plane + (2 * oy + 1) * w, ox, e, corner);
        }
    }
}

/// The backward's sums over channels [c0, c1): with g the pooled gradient d [n, c, oh, ow] routed to each
/// window's maximum where it is positive (zero elsewhere), sdy[ch] = sum(g) and sdyx[ch] = sum(g (x - mu[ch])).
template <class T>
void bn_relu_pool_dy_sums(const T* d, const T* p, std::int64_t n, std::int64_t c, std::int64_t h,
                          std::int64_t w, std::int64_t c0, std::int64_t c1, const BnCoeffs<T>* k,
                          const double* mu, double* sdy, double* sdyx) {
  const std::int64_t oh = h / 2, ow = w / 2;
  for (std::int64_t g0 = c0; g0 < c1; g0 += kGroup) {
    const std::int64_t g1 = std::min(c1, g0 + kGroup);
    double a[kGroup][kLanes] = {}, b[kGroup][kLanes] = {};
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t ch = g0; ch < g1; ++ch) {
        const BnCoeffs<T> e = k[ch];
        const T* plane = p + (i * c + ch) * h * w;
        const T* dy = d + (i * c + ch) * oh * ow;
        double* sa = a[ch - g0];
        double* sb = b[ch - g0];
        if constexpr (kVectorBytes == 64 && std::is_same_v<T, float>) {
          __m512d va0 = _mm512_loadu_pd(sa), va1 = _mm512_loadu_pd(sa + 8);
          __m512d vb0 = _mm512_loadu_pd(sb), vb1 = _mm512_loadu_pd(sb + 8);
          const __m512d vmu = _mm512_set1_pd(mu[ch]);
          for_window_chunks(plane, h, w, [&](Windows16<T>& s) {
            bn_pool_windows16(s, e);
            __m512 xs = s.x[0];
            for (int q = 1; q < 4; ++q)
              xs = _mm512_mask_blend_ps(
                  _mm512_cmp_ps_mask(s.corner, _mm512_set1_ps(static_cast<float>(q)), _CMP_EQ_OQ), xs,
                  s.x[q]);
            const __m512 g = chunk_grad(s, dy);
            // Each half widened to f64 (masked forms: the plain ones read an undefined register, which GCC 12
            // warns about).
            const auto half = [](auto v, auto part) {
              return _mm512_maskz_cvtps_pd(
                  0xFF, _mm256_castpd_ps(_mm512_maskz_extractf64x4_pd(0xF, _mm512_castps_pd(v), part.value)));
            };
            const auto lo = [&](auto v) { return half(v, std::integral_constant<int, 0>()); };
            const auto hi = [&](auto v) { return half(v, std::integral_constant<int, 1>()); };
            const __m512d g0v = lo(g), g1v = hi(g), x0v = lo(xs), x1v = hi(xs);
            va0 = _mm512_add_pd(va0, g0v);
            va1 = _mm512_add_pd(va1, g1v);
            vb0 = _mm512_add_pd(vb0, _mm512_mul_pd(g0v, _mm512_sub_pd(x0v, vmu)));
            vb1 = _mm512_add_pd(vb1, _mm512_mul_pd(g1v, _mm512_sub_pd(x1v, vmu)));
          });
          _mm512_storeu_pd(sa, va0);
          _mm512_storeu_pd(sa + 8, va1);
          _mm512_storeu_pd(sb, vb0);
          _mm512_storeu_pd(sb + 8, vb1);
          continue;
        }
        for (std::int64_t oy = 0; oy < oh; ++oy) {
          const T* r0 = plane + 2 * oy * w;
          for (std::int64_t ox = 0; ox < ow; ++ox) {
            int corner = 0;
            if (!(bn_pool_window(r0, r0 + w, ox, e, corner) > T(0))) continue;
            const double g = static_cast<double>(dy[oy * ow + ox]);
            const T x = (corner < 2 ? r0 : r0 + w)[2 * ox + (corner & 1)];
            sa[ox % kLanes] += g;
            sb[ox % kLanes] += g * (static_cast<double>(x) - mu[ch]);
          }
        }
      }
    for (std::int64_t ch = g0; ch < g1; ++ch) {
      sdy[ch] = add_lanes(a[ch - g0]);
      sdyx[ch] = add_lanes(b[ch - g0]);
    }
  }
}

/// dx = gk (g - a - (x - m) iv b) over channels [c0, c1) of x [n, c, h, w] (as bn_grad_apply), with g the pooled
/// gradient d routed as in bn_relu_pool_dy_sums; rows and columns no window covers get g = 0.
template <class T>
void bn_relu_pool_grad(const T* p, const T* d, T* q, std::int64_t n, std::int64_t c, std::int64_t h,
                       std::int64_t w, std::int64_t c0, std::int64_t c1, const BnCoeffs<T>* k,
                       const BnGradCoeffs<T>* gk) {
  const std::int64_t oh = h / 2, ow = w / 2;
  for (std::int64_t i = 0; i < n; ++i)
    for (std::int64_t ch = c0; ch < c1; ++ch) {
      const BnCoeffs<T> e = k[ch];
      const BnGradCoeffs<T> f = gk[ch];
      const auto dx_of = [&f](T g, T x) { return f.k * (g - f.a - (x - f.m) * f.iv * f.b); };
      const T* plane = p + (i * c + ch) * h * w;
      T* dplane = q + (i * c + ch) * h * w;
      const T* dy = d + (i * c + ch) * oh * ow;
      if constexpr (kVectorBytes == 64 && std::is_same_v<T, float>) {
        const __m512i lo = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
        const __m512i hi = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
        const __m512 fk = _mm512_set1_ps(f.k), fa = _mm512_set1_ps(f.a), fm = _mm512_set1_ps(f.m);
        const __m512 fiv = _mm512_set1_ps(f.iv), fb = _mm512_set1_ps(f.b);
        for_window_chunks(plane, h, w, [&](Windows16<T>& s) {
          bn_pool_windows16(s, e);
          const __m512 g = chunk_grad(s, dy);
          __m512 v[4];
          for (int r = 0; r < 4; ++r) {
            const __mmask16 at =
                _mm512_cmp_ps_mask(s.corner, _mm512_set1_ps(static_cast<float>(r)), _CMP_EQ_OQ);
            const __m512 t = _mm512_mul_ps(_mm512_mul_ps(_mm512_sub_ps(s.x[r], fm), fiv), fb);
            v[r] = _mm512_mul_ps(fk, _mm512_sub_ps(_mm512_sub_ps(_mm512_maskz_mov_ps(at, g), fa), t));
          }
          // Back to the rows' order: lanes 0-7 of the corners interleaved make the a rows, 8-15 the b rows.
          const auto out = [&](const T* at) { return dplane + (at - plane); };
          _mm512_mask_storeu_ps(out(s.a0), s.first, _mm512_permutex2var_ps(v[0], lo, v[1]));
          _mm512_mask_storeu_ps(out(s.b0), s.second, _mm512_permutex2var_ps(v[0], hi, v[1]));
          _mm512_mask_storeu_ps(out(s.a1), s.first, _mm512_permutex2var_ps(v[2], lo, v[3]));
          _mm512_mask_storeu_ps(out(s.b1), s.second, _mm512_permutex2var_ps(v[2], hi, v[3]));
        });
      } else {
        for (std::int64_t oy = 0; oy < oh; ++oy) {
          const T* r0 = plane + 2 * oy * w;
          T* q0 = dplane + 2 * oy * w;
          for (std::int64_t ox = 0; ox < ow; ++ox) {
            int corner = 0;
            const T g = bn_pool_window(r0, r0 + w, ox, e, corner) > T(0) ? dy[oy * ow + ox] : T(0);
            for (int r = 0; r < 4; ++r) {
              const std::int64_t at = (r < 2 ? 0 : w) + 2 * ox + (r & 1);
              q0[at] = dx_of(r == corner ? g : T(0), r0[at]);
            }
          }
        }
      }
      if (w % 2)  // the last column, in no window
        for (std::int64_t y = 0; y < 2 * oh; ++y) dplane[y * w + w - 1] = dx_of(T(0), plane[y * w + w - 1]);
      if (h % 2)  // the last row, in no window
        for (std::int64_t j = 0; j < w; ++j) dplane[(h - 1) * w + j] = dx_of(T(0), plane[(h - 1) * w + j]);
    }
}

// ---- ReLU -----------------------------------------------------------------------------------------------

template <class T>
void relu(const T* __restrict x, T* __restrict y, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) y[i] = x[i] > T(0) ? x[i] : T(0);
}

template <class T>
void relu_grad(const T* __restrict dy, const T* __restrict y, T* __restrict dx, std::int64_t n) {
  for (std::int64_t i = 0; i < n; ++i) dx[i] = dy[i] * (y[i] > T(0) ? T(1) : T(0)) * T(1);
}

template <class T>
constexpr ConvLoops<T> make_loops() {
  return {im2col<T>,
          col2im<T>,
          channel_sums<T>,
          channel_sq_devs<T>,
          channel_dy_sums<T>,
          bn_apply<T>,
          bn_grad_apply<T>,
          max_pool_2x2_row<T>,
          bn_relu_pool<T>,
          bn_relu_pool_dy_sums<T>,
          bn_relu_pool_grad<T>,
          direct_conv<T>,
          direct_wgrad<T>,
          bcast_conv<T>,
          bcast_wgrad<T>,
          relu<T>,
          relu_grad<T>};
}
