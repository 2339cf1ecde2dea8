// Convolution through the project's GEMM: each sample's windows are unrolled into a column matrix (im2col,
// [C/groups * kh * kw, OH * OW]) and multiplied by the weight; the input gradient multiplies the transposed
// weight by dy and folds the columns back (col2im). A 1x1 convolution with stride 1 and no padding uses the
// input itself as the column matrix. Samples are split into blocks, one column buffer each (from the caching
// allocator, so a fixed shape allocates nothing from the system after its first step); the weight gradient
// sums the blocks' partial products in block order, and the blocks do not depend on the thread count, so every
// result is the same on 1 or N threads. docs/performance.md has the measurements behind the choices.
#include "kernels/conv.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "kernels/kernels.hpp"
#include "kernels/parallel.hpp"

namespace backprop::kernels {

namespace {

// Sample blocks of the weight gradient (each a partial sum of the weight's size): fixed, so the summation
// order never depends on the thread count; 8 keeps two threads busy with a little slack for a late helper.
constexpr std::int64_t kSampleBlocks = 8;
// Convolutions below this many multiply-adds run on the calling thread (a fork would cost more than it saves).
constexpr std::int64_t kParallelMacs = std::int64_t{1} << 21;

std::int64_t ceil_div(std::int64_t a, std::int64_t b) {
  return (a + b - 1) / b;
}

bool is_pointwise(const ConvGeom& g) {
  return g.kh == 1 && g.kw == 1 && g.sh == 1 && g.sw == 1 && g.ph == 0 && g.pw == 0 && g.oh == g.h &&
         g.ow == g.w;
}

/// The output columns [lo, hi) whose input column ox * sw + off lies inside [0, w).
void column_range(const ConvGeom& g, std::int64_t off, std::int64_t& lo, std::int64_t& hi) {
  lo = off >= 0 ? 0 : ceil_div(-off, g.sw);
  hi = g.w - off <= 0 ? 0 : std::min(g.ow, ceil_div(g.w - off, g.sw));
  lo = std::min(lo, hi);
}

/// col [cg * kh * kw, oh * ow] from the cg channels at x (each h x w), zero where a window leaves the input.
template <class T>
void im2col(const T* x, std::int64_t cg, const ConvGeom& g, T* col) {
  const std::int64_t ohw = g.oh * g.ow;
  for (std::int64_t c = 0; c < cg; ++c)
    for (std::int64_t i = 0; i < g.kh; ++i)
      for (std::int64_t j = 0; j < g.kw; ++j) {
        T* row = col + ((c * g.kh + i) * g.kw + j) * ohw;
        const std::int64_t off = j * g.dw - g.pw;
        std::int64_t lo, hi;
        column_range(g, off, lo, hi);
        for (std::int64_t oy = 0; oy < g.oh; ++oy) {
          T* r = row + oy * g.ow;
          const std::int64_t iy = oy * g.sh - g.ph + i * g.dh;
          if (iy < 0 || iy >= g.h) {
            std::fill(r, r + g.ow, T(0));
            continue;
          }
          const T* xr = x + (c * g.h + iy) * g.w + off;
          std::fill(r, r + lo, T(0));
          if (g.sw == 1)
            std::memcpy(r + lo, xr + lo, static_cast<std::size_t>(hi - lo) * sizeof(T));
          else
            for (std::int64_t ox = lo; ox < hi; ++ox) r[ox] = xr[ox * g.sw];
          std::fill(r + hi, r + g.ow, T(0));
        }
      }
}

/// The adjoint of im2col: adds each column entry back to the input position it was read from.
template <class T>
void col2im(const T* col, std::int64_t cg, const ConvGeom& g, T* x) {
  const std::int64_t ohw = g.oh * g.ow;
  for (std::int64_t c = 0; c < cg; ++c)
    for (std::int64_t i = 0; i < g.kh; ++i)
      for (std::int64_t j = 0; j < g.kw; ++j) {
        const T* row = col + ((c * g.kh + i) * g.kw + j) * ohw;
        const std::int64_t off = j * g.dw - g.pw;
        std::int64_t lo, hi;
        column_range(g, off, lo, hi);
        for (std::int64_t oy = 0; oy < g.oh; ++oy) {
          const std::int64_t iy = oy * g.sh - g.ph + i * g.dh;
          if (iy < 0 || iy >= g.h) continue;
          const T* r = row + oy * g.ow;
          T* xr = x + (c * g.h + iy) * g.w + off;
          for (std::int64_t ox = lo; ox < hi; ++ox) xr[ox * g.sw] += r[ox];
        }
      }
}

/// Runs body(block, first sample, end sample) over blocks of `per` consecutive samples of the n, on several
/// threads when the convolution has at least kParallelMacs multiply-adds.
template <class F>
void for_sample_blocks(std::int64_t n, std::int64_t per, std::int64_t macs, F&& body) {
  if (n <= 0) return;
  const int threads = macs >= kParallelMacs ? get_num_threads() : 1;
  parallel_chunks(ceil_div(n, per), threads,
                  [&](std::int64_t b) { body(b, b * per, std::min(n, (b + 1) * per)); });
}

std::int64_t macs_of(const ConvGeom& g) {
  return g.n * g.o * (g.c / g.groups) * g.kh * g.kw * g.oh * g.ow;
}

/// Samples per block of the per-sample products (independent, so any split gives the same result): about two
/// blocks per thread.
std::int64_t samples_per_block(const ConvGeom& g) {
  const std::int64_t blocks = macs_of(g) >= kParallelMacs ? 2 * get_num_threads() : 1;
  return std::max<std::int64_t>(1, ceil_div(g.n, blocks));
}

}  // namespace

Tensor conv2d_forward(const Tensor& x_in, const Tensor& weight_in, const Tensor& bias_in, const ConvGeom& g) {
  const Tensor x = dense(x_in);
  const Tensor weight = dense(weight_in);
  const Tensor bias = dense(bias_in);
  Tensor y(g.output_shape(), x.dtype());
  const std::int64_t cg = g.c / g.groups, og = g.o / g.groups, k = cg * g.kh * g.kw, ohw = g.oh * g.ow;
  const bool pointwise = is_pointwise(g);
  const std::int64_t per = samples_per_block(g), blocks = std::max<std::int64_t>(1, ceil_div(g.n, per));
  Tensor cols = pointwise ? Tensor() : Tensor({blocks, k * ohw}, x.dtype());
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    const T* pw = weight.data<T>();
    const T* pb = bias.defined() ? bias.data<T>() : nullptr;
    T* py = y.data<T>();
    for_sample_blocks(g.n, per, macs_of(g), [&](std::int64_t b, std::int64_t s0, std::int64_t s1) {
      T* col = pointwise ? nullptr : cols.data<T>() + b * k * ohw;
      for (std::int64_t s = s0; s < s1; ++s)
        for (std::int64_t gi = 0; gi < g.groups; ++gi) {
          const T* xg = px + (s * g.c + gi * cg) * g.h * g.w;
          T* yg = py + (s * g.o + gi * og) * ohw;
          if (pb)
            for (std::int64_t oc = 0; oc < og; ++oc)
              std::fill(yg + oc * ohw, yg + (oc + 1) * ohw, pb[gi * og + oc]);
          if (!pointwise) im2col(xg, cg, g, col);
          gemm_raw(x.dtype(), pw + gi * og * k, k, false, pointwise ? xg : col, ohw, false, yg, og, ohw, k,
                   1.0, pb ? 1.0 : 0.0);
        }
    });
  });
  return y;
}

Tensor conv2d_input_grad(const Tensor& dy_in, const Tensor& weight_in, const ConvGeom& g) {
  const Tensor dy = dense(dy_in);
  const Tensor weight = dense(weight_in);
  const bool pointwise = is_pointwise(g);
  Tensor dx = pointwise ? Tensor(g.input_shape(), dy.dtype()) : zeros(g.input_shape(), dy.dtype());
  const std::int64_t cg = g.c / g.groups, og = g.o / g.groups, k = cg * g.kh * g.kw, ohw = g.oh * g.ow;
  const std::int64_t per = samples_per_block(g), blocks = std::max<std::int64_t>(1, ceil_div(g.n, per));
  Tensor cols = pointwise ? Tensor() : Tensor({blocks, k * ohw}, dy.dtype());
  dispatch(dy.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* pdy = dy.data<T>();
    const T* pw = weight.data<T>();
    T* pdx = dx.data<T>();
    for_sample_blocks(g.n, per, macs_of(g), [&](std::int64_t b, std::int64_t s0, std::int64_t s1) {
      T* col = pointwise ? nullptr : cols.data<T>() + b * k * ohw;
      for (std::int64_t s = s0; s < s1; ++s)
        for (std::int64_t gi = 0; gi < g.groups; ++gi) {
          const T* dyg = pdy + (s * g.o + gi * og) * ohw;
          T* dxg = pdx + (s * g.c + gi * cg) * g.h * g.w;
          gemm_raw(dy.dtype(), pw + gi * og * k, k, true, dyg, ohw, false, pointwise ? dxg : col, k, ohw, og,
                   1.0, 0.0);
          if (!pointwise) col2im(col, cg, g, dxg);
        }
    });
  });
  return dx;
}

Tensor conv2d_weight_grad(const Tensor& x_in, const Tensor& dy_in, const ConvGeom& g) {
  const Tensor x = dense(x_in);
  const Tensor dy = dense(dy_in);
  const std::int64_t cg = g.c / g.groups, og = g.o / g.groups, k = cg * g.kh * g.kw, ohw = g.oh * g.ow;
  const bool pointwise = is_pointwise(g);
  const std::int64_t per = ceil_div(std::max<std::int64_t>(g.n, 1), kSampleBlocks);
  const std::int64_t used = ceil_div(std::max<std::int64_t>(g.n, 1), per);
  const std::int64_t wn = g.o * k;
  Tensor partial({used, wn}, x.dtype());
  Tensor cols = pointwise ? Tensor() : Tensor({used, k * ohw}, x.dtype());
  Tensor dw(g.weight_shape(), x.dtype());
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    const T* pdy = dy.data<T>();
    T* pp = partial.data<T>();
    std::fill(pp, pp + used * wn, T(0));
    for_sample_blocks(g.n, per, macs_of(g), [&](std::int64_t b, std::int64_t s0, std::int64_t s1) {
      T* col = pointwise ? nullptr : cols.data<T>() + b * k * ohw;
      T* acc = pp + b * wn;
      for (std::int64_t s = s0; s < s1; ++s)
        for (std::int64_t gi = 0; gi < g.groups; ++gi) {
          const T* xg = px + (s * g.c + gi * cg) * g.h * g.w;
          const T* dyg = pdy + (s * g.o + gi * og) * ohw;
          if (!pointwise) im2col(xg, cg, g, col);
          gemm_raw(x.dtype(), dyg, ohw, false, pointwise ? xg : col, ohw, true, acc + gi * og * k, og, k, ohw,
                   1.0, 1.0);
        }
    });
    T* pdw = dw.data<T>();
    std::copy(pp, pp + wn, pdw);
    for (std::int64_t b = 1; b < used; ++b)
      for (std::int64_t i = 0; i < wn; ++i) pdw[i] += pp[b * wn + i];
  });
  return dw;
}

// ---- pooling ----------------------------------------------------------------------------------------------

namespace {
/// Planes per thread chunk: pooling is memory-bound, so it splits only past kParallelThreshold elements.
template <class F>
void for_planes(std::int64_t planes, std::int64_t plane_elems, F&& f) {
  parallel_range(planes,
                 std::max<std::int64_t>(1, kParallelThreshold / std::max<std::int64_t>(plane_elems, 1)),
                 std::forward<F>(f));
}
}  // namespace

namespace {
#if defined(__SSE2__)
/// Lanes where v > best or v is NaN (the scalar loop's `take`).
inline __m128 take_mask(__m128 v, __m128 best) {
  return _mm_or_ps(_mm_cmpgt_ps(v, best), _mm_cmpunord_ps(v, v));
}
inline __m128 select(__m128 mask, __m128 a, __m128 b) {
  return _mm_or_ps(_mm_and_ps(mask, a), _mm_andnot_ps(mask, b));
}
#endif

/// One output row of the 2x2, stride-2 max pool: rows r0 and r0 + w of the input, the window's maximum (the
/// first of equal ones; NaN wins, the last NaN) and its flat in-plane index, r0's index being `base`. Selects,
/// not branches (random data mispredicts half of them); f32 runs four windows at a time with SSE2 (the
/// compiler does not vectorise the stride-2 loads), the window corner kept in f32 like the index.
template <class T>
void max_pool_2x2_row(const T* r0, std::int64_t w, std::int64_t ow, T base, T* values, double* indices) {
  const T* r1 = r0 + w;
  const T fw = static_cast<T>(w);
  std::int64_t ox = 0;
#if defined(__SSE2__)
  if constexpr (std::is_same_v<T, float>) {
    const __m128 one = _mm_set1_ps(1.0f), right = _mm_set1_ps(fw), below = _mm_set1_ps(fw + 1.0f);
    for (; ox + 4 <= ow; ox += 4) {
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
#endif
  for (; ox < ow; ++ox) {
    T best = r0[2 * ox], corner = 0;
    const T b = r0[2 * ox + 1], c = r1[2 * ox], d = r1[2 * ox + 1];
    bool take = b > best || b != b;
    best = take ? b : best;
    corner = take ? T(1) : corner;
    take = c > best || c != c;
    best = take ? c : best;
    corner = take ? fw : corner;
    take = d > best || d != d;
    best = take ? d : best;
    corner = take ? fw + 1 : corner;
    values[ox] = best;
    indices[ox] = static_cast<double>(base + static_cast<T>(2 * ox) + corner);
  }
}
}  // namespace

void max_pool2d(const Tensor& x_in, const PoolGeom& g, const Shape& out, Tensor& values, Tensor& indices) {
  const Tensor x = dense(x_in);
  values = Tensor(out, x.dtype());
  indices = Tensor(out, f64);
  const std::int64_t hw = g.h * g.w, ohw = g.oh * g.ow;
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* pv = values.data<T>();
    double* pi = indices.data<double>();
    // The common 2x2 window with stride 2 and no padding: four loads, no bounds, in the general loop's order.
    const bool two_by_two =
        g.kh == 2 && g.kw == 2 && g.sh == 2 && g.sw == 2 && g.ph == 0 && g.pw == 0 && g.dh == 1 &&
        g.dw == 1 && 2 * g.oh <= g.h && 2 * g.ow <= g.w &&  // ceil_mode's last window may leave the input
        hw <= (std::int64_t{1} << 24);  // the window corner is kept in T: exact up to 2^24 in f32
    for_planes(g.planes, hw + ohw, [&](std::int64_t p0, std::int64_t p1) {
      for (std::int64_t p = p0; p < p1; ++p) {
        const T* xp = px + p * hw;
        if (two_by_two) {
          for (std::int64_t oy = 0; oy < g.oh; ++oy)
            max_pool_2x2_row(xp + 2 * oy * g.w, g.w, g.ow, static_cast<T>(2 * oy * g.w),
                             pv + p * ohw + oy * g.ow, pi + p * ohw + oy * g.ow);
          continue;
        }
        for (std::int64_t oy = 0; oy < g.oh; ++oy) {
          std::int64_t y0 = oy * g.sh - g.ph;
          const std::int64_t y1 = std::min(y0 + (g.kh - 1) * g.dh + 1, g.h);
          while (y0 < 0) y0 += g.dh;
          for (std::int64_t ox = 0; ox < g.ow; ++ox) {
            std::int64_t x0 = ox * g.sw - g.pw;
            const std::int64_t x1 = std::min(x0 + (g.kw - 1) * g.dw + 1, g.w);
            while (x0 < 0) x0 += g.dw;
            std::int64_t best_at = y0 * g.w + x0;
            T best = -std::numeric_limits<T>::infinity();
            for (std::int64_t iy = y0; iy < y1; iy += g.dh)
              for (std::int64_t ix = x0; ix < x1; ix += g.dw) {
                const T v = xp[iy * g.w + ix];
                const bool take = v > best || v != v;
                best = take ? v : best;
                best_at = take ? iy * g.w + ix : best_at;
              }
            pv[p * ohw + oy * g.ow + ox] = best;
            pi[p * ohw + oy * g.ow + ox] = static_cast<double>(best_at);
          }
        }
      }
    });
  });
}

Tensor pool_scatter(const Tensor& dy_in, const Tensor& indices_in, const Shape& in_shape) {
  const Tensor dy = dense(dy_in);
  const Tensor indices = dense(indices_in);
  Tensor dx = zeros(in_shape, dy.dtype());
  const std::int64_t h = in_shape[in_shape.size() - 2], w = in_shape.back();
  const std::int64_t hw = h * w, ohw = dy.size(dy.dim() - 2) * dy.size(dy.dim() - 1);
  const std::int64_t planes = dy.numel() / std::max<std::int64_t>(ohw, 1);
  dispatch(dy.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* pdy = dy.data<T>();
    const double* pi = indices.data<double>();
    T* pdx = dx.data<T>();
    for_planes(planes, hw + ohw, [&](std::int64_t p0, std::int64_t p1) {
      for (std::int64_t p = p0; p < p1; ++p)
        for (std::int64_t i = 0; i < ohw; ++i)
          pdx[p * hw + static_cast<std::int64_t>(pi[p * ohw + i])] += pdy[p * ohw + i];
    });
  });
  return dx;
}

Tensor pool_gather(const Tensor& x_in, const Tensor& indices_in) {
  const Tensor x = dense(x_in);
  const Tensor indices = dense(indices_in);
  Tensor y(indices.shape(), x.dtype());
  const std::int64_t hw = x.size(x.dim() - 2) * x.size(x.dim() - 1);
  const std::int64_t ohw = indices.size(indices.dim() - 2) * indices.size(indices.dim() - 1);
  const std::int64_t planes = indices.numel() / std::max<std::int64_t>(ohw, 1);
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    const double* pi = indices.data<double>();
    T* py = y.data<T>();
    for_planes(planes, hw + ohw, [&](std::int64_t p0, std::int64_t p1) {
      for (std::int64_t p = p0; p < p1; ++p)
        for (std::int64_t i = 0; i < ohw; ++i)
          py[p * ohw + i] = px[p * hw + static_cast<std::int64_t>(pi[p * ohw + i])];
    });
  });
  return y;
}

namespace {
Shape with_plane(const Shape& s, std::int64_t h, std::int64_t w) {
  Shape out = s;
  out[out.size() - 2] = h;
  out[out.size() - 1] = w;
  return out;
}
}  // namespace

Tensor avg_pool2d(const Tensor& x_in, const AvgGeom& g) {
  const Tensor x = dense(x_in);
  const std::int64_t oh = static_cast<std::int64_t>(g.rows.size()),
                     ow = static_cast<std::int64_t>(g.cols.size());
  Tensor y(with_plane(x.shape(), oh, ow), x.dtype());
  const std::int64_t hw = g.h * g.w, ohw = oh * ow, planes = x.numel() / std::max<std::int64_t>(hw, 1);
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    for_planes(planes, hw + ohw, [&](std::int64_t p0, std::int64_t p1) {
      for (std::int64_t p = p0; p < p1; ++p)
        for (std::int64_t i = 0; i < oh; ++i) {
          const Window& r = g.rows[static_cast<std::size_t>(i)];
          for (std::int64_t j = 0; j < ow; ++j) {
            const Window& c = g.cols[static_cast<std::size_t>(j)];
            T s = 0;
            for (std::int64_t iy = r.begin; iy < r.end; ++iy)
              for (std::int64_t ix = c.begin; ix < c.end; ++ix) s += px[p * hw + iy * g.w + ix];
            py[p * ohw + i * ow + j] = s / static_cast<T>(r.count * c.count);
          }
        }
    });
  });
  return y;
}

Tensor avg_pool2d_adjoint(const Tensor& dy_in, const AvgGeom& g) {
  const Tensor dy = dense(dy_in);
  const std::int64_t oh = static_cast<std::int64_t>(g.rows.size()),
                     ow = static_cast<std::int64_t>(g.cols.size());
  Tensor dx = zeros(with_plane(dy.shape(), g.h, g.w), dy.dtype());
  const std::int64_t hw = g.h * g.w, ohw = oh * ow, planes = dy.numel() / std::max<std::int64_t>(ohw, 1);
  dispatch(dy.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* pdy = dy.data<T>();
    T* pdx = dx.data<T>();
    for_planes(planes, hw + ohw, [&](std::int64_t p0, std::int64_t p1) {
      for (std::int64_t p = p0; p < p1; ++p)
        for (std::int64_t i = 0; i < oh; ++i) {
          const Window& r = g.rows[static_cast<std::size_t>(i)];
          for (std::int64_t j = 0; j < ow; ++j) {
            const Window& c = g.cols[static_cast<std::size_t>(j)];
            const T v = pdy[p * ohw + i * ow + j] / static_cast<T>(r.count * c.count);
            for (std::int64_t iy = r.begin; iy < r.end; ++iy)
              for (std::int64_t ix = c.begin; ix < c.end; ++ix) pdx[p * hw + iy * g.w + ix] += v;
          }
        }
    });
  });
  return dx;
}

// ---- batch normalisation over N, H, W -----------------------------------------------------------------------

namespace {
// Per-channel sums in f64 over 8 interleaved partial sums, added up in a fixed order: the compiler vectorises
// them (one serial f64 chain is bound by the add latency, ~4x slower) and the result depends only on the data.
constexpr int kLanes = 8;

double add_lanes(const double (&acc)[kLanes]) {
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

/// sum(x) over one channel: n planes of hw elements at p, p + stride, ...
template <class T>
double channel_sum(const T* p, std::int64_t n, std::int64_t stride, std::int64_t hw) {
  double acc[kLanes] = {};
  for (std::int64_t i = 0; i < n; ++i) {
    const T* q = p + i * stride;
    std::int64_t j = 0;
    for (; j + kLanes <= hw; j += kLanes)
      for (int l = 0; l < kLanes; ++l) acc[l] += static_cast<double>(q[j + l]);
    for (; j < hw; ++j) acc[j % kLanes] += static_cast<double>(q[j]);
  }
  return add_lanes(acc);
}

/// sum((x - mu)^2) over the channel's n planes.
template <class T>
double channel_sq_dev(const T* p, std::int64_t n, std::int64_t stride, std::int64_t hw, double mu) {
  double acc[kLanes] = {};
  for (std::int64_t i = 0; i < n; ++i) {
    const T* q = p + i * stride;
    std::int64_t j = 0;
    for (; j + kLanes <= hw; j += kLanes)
      for (int l = 0; l < kLanes; ++l) {
        const double d = static_cast<double>(q[j + l]) - mu;
        acc[l] += d * d;
      }
    for (; j < hw; ++j) {
      const double d = static_cast<double>(q[j]) - mu;
      acc[j % kLanes] += d * d;
    }
  }
  return add_lanes(acc);
}

/// sum(dy) and sum(dy (x - mu)) over the channel's n planes.
template <class T>
void channel_dy_sums(const T* d, const T* p, std::int64_t n, std::int64_t stride, std::int64_t hw, double mu,
                     double& sdy, double& sdyx) {
  double a[kLanes] = {}, b[kLanes] = {};
  for (std::int64_t i = 0; i < n; ++i) {
    const T* dq = d + i * stride;
    const T* q = p + i * stride;
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
  }
  sdy = add_lanes(a);
  sdyx = add_lanes(b);
}
}  // namespace

// One channel per task (independent, so the split never changes a result); the sums run in f64.
Tensor batch_norm_forward(const Tensor& x_in, const Tensor& gamma_in, const Tensor& beta_in, double eps,
                          Tensor& mean, Tensor& var, Tensor& invstd) {
  const Tensor x = dense(x_in), gamma = dense(gamma_in), beta = dense(beta_in);
  const std::int64_t n = x.size(0), c = x.size(1), hw = x.numel() / std::max<std::int64_t>(n * c, 1);
  const double count = static_cast<double>(n * hw);
  Tensor y(x.shape(), x.dtype());
  mean = Tensor({c}, f64);
  var = Tensor({c}, f64);
  invstd = Tensor({c}, f64);
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    const T* pg = gamma.defined() ? gamma.data<T>() : nullptr;
    const T* pb = beta.defined() ? beta.data<T>() : nullptr;
    T* py = y.data<T>();
    double *pm = mean.data<double>(), *pv = var.data<double>(), *pi = invstd.data<double>();
    parallel_range(c, std::max<std::int64_t>(1, kParallelThreshold / std::max<std::int64_t>(n * hw, 1)),
                   [&](std::int64_t c0, std::int64_t c1) {
                     for (std::int64_t ch = c0; ch < c1; ++ch) {
                       const double mu = channel_sum(px + ch * hw, n, c * hw, hw) / count;
                       const double v = channel_sq_dev(px + ch * hw, n, c * hw, hw, mu) / count,
                                    inv = 1.0 / std::sqrt(v + eps);
                       pm[ch] = mu;
                       pv[ch] = v;
                       pi[ch] = inv;
                       const T scale = static_cast<T>(inv * (pg ? static_cast<double>(pg[ch]) : 1.0));
                       const T shift = pb ? pb[ch] : T(0);
                       const T m = static_cast<T>(mu);
                       for (std::int64_t i = 0; i < n; ++i) {
                         const T* p = px + (i * c + ch) * hw;
                         T* q = py + (i * c + ch) * hw;
                         for (std::int64_t j = 0; j < hw; ++j) q[j] = (p[j] - m) * scale + shift;
                       }
                     }
                   });
  });
  return y;
}

void batch_norm_backward(const Tensor& dy_in, const Tensor& x_in, const Tensor& gamma_in, const Tensor& mean,
                         const Tensor& invstd, Tensor& dx, Tensor& dgamma, Tensor& dbeta) {
  const Tensor dy = dense(dy_in), x = dense(x_in), gamma = dense(gamma_in);
  const std::int64_t n = x.size(0), c = x.size(1), hw = x.numel() / std::max<std::int64_t>(n * c, 1);
  const double count = static_cast<double>(n * hw);
  dx = Tensor(x.shape(), x.dtype());
  dgamma = Tensor({c}, x.dtype());
  dbeta = Tensor({c}, x.dtype());
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    const T* pdy = dy.data<T>();
    const T* pg = gamma.defined() ? gamma.data<T>() : nullptr;
    const double *pm = mean.data<double>(), *pi = invstd.data<double>();
    T* pdx = dx.data<T>();
    T *pdg = dgamma.data<T>(), *pdb = dbeta.data<T>();
    parallel_range(c, std::max<std::int64_t>(1, kParallelThreshold / std::max<std::int64_t>(n * hw, 1)),
                   [&](std::int64_t c0, std::int64_t c1) {
                     for (std::int64_t ch = c0; ch < c1; ++ch) {
                       const double mu = pm[ch], inv = pi[ch];
                       double sdy = 0, sdyx = 0;
                       channel_dy_sums(pdy + ch * hw, px + ch * hw, n, c * hw, hw, mu, sdy, sdyx);
                       sdyx *= inv;  // sum(dy xhat)
                       pdg[ch] = static_cast<T>(sdyx);
                       pdb[ch] = static_cast<T>(sdy);
                       const double k = inv * (pg ? static_cast<double>(pg[ch]) : 1.0);
                       const T a = static_cast<T>(sdy / count), b = static_cast<T>(sdyx / count);
                       const T kk = static_cast<T>(k), m = static_cast<T>(mu), iv = static_cast<T>(inv);
                       for (std::int64_t i = 0; i < n; ++i) {
                         const T* p = px + (i * c + ch) * hw;
                         const T* d = pdy + (i * c + ch) * hw;
                         T* q = pdx + (i * c + ch) * hw;
                         for (std::int64_t j = 0; j < hw; ++j) q[j] = kk * (d[j] - a - (p[j] - m) * iv * b);
                       }
                     }
                   });
  });
}

}  // namespace backprop::kernels
