// Convolution through the project's GEMM: each sample's windows are unrolled into a column matrix (im2col,
// [C/groups * kh * kw, OH * OW]) and multiplied by the weight; the input gradient multiplies the transposed
// weight by dy and folds the columns back (col2im). A 1x1 convolution with stride 1 and no padding uses the
// input itself as the column matrix. Two paths, chosen by shape, skip the unrolling (conv_loops.hpp): direct
// loops for groups of one input channel, and broadcast loops (a vector of output channels per pixel, the result
// transposed to NCHW) for the forward and weight gradient of multi-channel ones. Samples are split into blocks,
// one scratch buffer each (from the caching allocator, so a fixed shape allocates nothing from the system after
// its first step); the weight gradient sums the blocks' partial products in block order, and the blocks do not
// depend on the thread count, so every result is the same on 1 or N threads. docs/performance.md has the
// measurements behind the choices.
#include "kernels/conv.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/conv_loops.hpp"
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
  const std::size_t esz = dtype_size(x.dtype());
  const bool direct = direct_conv_fits(g, esz), bcast = !direct && bcast_conv_fits(g, esz);
  const bool pointwise = !direct && !bcast && is_pointwise(g);
  const std::int64_t per = samples_per_block(g), blocks = std::max<std::int64_t>(1, ceil_div(g.n, per));
  Tensor cols = pointwise || direct || bcast ? Tensor() : Tensor({blocks, k * ohw}, x.dtype());
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const auto& loops = conv_loops<T>();
    const T* px = x.data<T>();
    const T* pw = weight.data<T>();
    const T* pb = bias.defined() ? bias.data<T>() : nullptr;
    T* py = y.data<T>();
    if (direct) {
      const std::int64_t scratch_size = direct_scratch<T>(g, og);
      Tensor scratch({blocks, scratch_size}, x.dtype());
      for_sample_blocks(g.n, per, macs_of(g), [&](std::int64_t b, std::int64_t s0, std::int64_t s1) {
        for (std::int64_t gi = 0; gi < g.groups; ++gi)
          loops.direct_conv(px + (s0 * g.c + gi) * g.h * g.w, g.c * g.h * g.w, pw + gi * og * k,
                            pb ? pb + gi * og : nullptr, s1 - s0, og, g, py + (s0 * g.o + gi * og) * ohw,
                            g.o * ohw, scratch.data<T>() + b * scratch_size);
      });
      return;
    }
    if (bcast) {
      // Each group's weight as [k][opad] rows and its bias as one more row (zero past og), then per sample
      // the pixel-major output, transposed into y.
      const std::int64_t opad = bcast_pad(og, esz), packed_size = (k + 1) * opad;
      Tensor packed = zeros({g.groups, packed_size}, x.dtype());
      T* pk = packed.data<T>();
      for (std::int64_t gi = 0; gi < g.groups; ++gi) {
        transpose_matrix(pk + gi * packed_size, opad, pw + gi * og * k, k, k, og, esz);
        if (pb) std::copy(pb + gi * og, pb + (gi + 1) * og, pk + gi * packed_size + k * opad);
      }
      const std::int64_t scratch_size = bcast_scratch(g, cg) + ohw * opad;
      Tensor scratch({blocks, scratch_size}, x.dtype());
      for_sample_blocks(g.n, per, macs_of(g), [&](std::int64_t b, std::int64_t s0, std::int64_t s1) {
        T* out = scratch.data<T>() + b * scratch_size;
        for (std::int64_t s = s0; s < s1; ++s)
          for (std::int64_t gi = 0; gi < g.groups; ++gi) {
            const T* wg = pk + gi * packed_size;
            loops.bcast_conv(px + (s * g.c + gi * cg) * g.h * g.w, cg, g, wg, opad, wg + k * opad, out,
                             out + ohw * opad);
            transpose_matrix(py + (s * g.o + gi * og) * ohw, ohw, out, opad, og, ohw, esz);
          }
      });
      return;
    }
    for_sample_blocks(g.n, per, macs_of(g), [&](std::int64_t b, std::int64_t s0, std::int64_t s1) {
      T* col = pointwise ? nullptr : cols.data<T>() + b * k * ohw;
      for (std::int64_t s = s0; s < s1; ++s)
        for (std::int64_t gi = 0; gi < g.groups; ++gi) {
          const T* xg = px + (s * g.c + gi * cg) * g.h * g.w;
          T* yg = py + (s * g.o + gi * og) * ohw;
          if (pb)
            for (std::int64_t oc = 0; oc < og; ++oc)
              std::fill(yg + oc * ohw, yg + (oc + 1) * ohw, pb[gi * og + oc]);
          if (!pointwise) loops.im2col(xg, cg, g, col);
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
  Tensor dx(g.input_shape(), dy.dtype());
  const std::int64_t cg = g.c / g.groups, og = g.o / g.groups, k = cg * g.kh * g.kw, ohw = g.oh * g.ow;
  const std::int64_t per = samples_per_block(g), blocks = std::max<std::int64_t>(1, ceil_div(g.n, per));
  Tensor cols = pointwise ? Tensor() : Tensor({blocks, k * ohw}, dy.dtype());
  dispatch(dy.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const auto& loops = conv_loops<T>();
    const T* pdy = dy.data<T>();
    const T* pw = weight.data<T>();
    T* pdx = dx.data<T>();
    for_sample_blocks(g.n, per, macs_of(g), [&](std::int64_t b, std::int64_t s0, std::int64_t s1) {
      T* col = pointwise ? nullptr : cols.data<T>() + b * k * ohw;
      // col2im adds into dx: each block zeroes its own samples, so their lines stay in the cache of the
      // thread that adds into them.
      if (!pointwise) std::fill(pdx + s0 * g.c * g.h * g.w, pdx + s1 * g.c * g.h * g.w, T(0));
      for (std::int64_t s = s0; s < s1; ++s)
        for (std::int64_t gi = 0; gi < g.groups; ++gi) {
          const T* dyg = pdy + (s * g.o + gi * og) * ohw;
          T* dxg = pdx + (s * g.c + gi * cg) * g.h * g.w;
          gemm_raw(dy.dtype(), pw + gi * og * k, k, true, dyg, ohw, false, pointwise ? dxg : col, k, ohw, og,
                   1.0, 0.0);
          if (!pointwise) loops.col2im(col, cg, g, dxg);
        }
    });
  });
  return dx;
}

Tensor conv2d_weight_grad(const Tensor& x_in, const Tensor& dy_in, const ConvGeom& g) {
  const Tensor x = dense(x_in);
  const Tensor dy = dense(dy_in);
  const std::int64_t cg = g.c / g.groups, og = g.o / g.groups, k = cg * g.kh * g.kw, ohw = g.oh * g.ow;
  const std::size_t esz = dtype_size(x.dtype());
  const bool direct = direct_wgrad_fits(g, esz), bcast = !direct && bcast_conv_fits(g, esz);
  const bool pointwise = !direct && !bcast && is_pointwise(g);
  const std::int64_t per = ceil_div(std::max<std::int64_t>(g.n, 1), kSampleBlocks);
  const std::int64_t used = ceil_div(std::max<std::int64_t>(g.n, 1), per);
  const std::int64_t wn = g.o * k;
  Tensor partial({used, wn}, x.dtype());
  Tensor cols = pointwise || direct || bcast ? Tensor() : Tensor({used, k * ohw}, x.dtype());
  Tensor dw(g.weight_shape(), x.dtype());
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const auto& loops = conv_loops<T>();
    const T* px = x.data<T>();
    const T* pdy = dy.data<T>();
    T* pp = partial.data<T>();
    std::fill(pp, pp + used * wn, T(0));
    if (direct) {
      const std::int64_t scratch_size = direct_scratch<T>(g, og);
      Tensor scratch({used, scratch_size}, x.dtype());
      for_sample_blocks(g.n, per, macs_of(g), [&](std::int64_t b, std::int64_t s0, std::int64_t s1) {
        for (std::int64_t gi = 0; gi < g.groups; ++gi)
          loops.direct_wgrad(px + (s0 * g.c + gi) * g.h * g.w, g.c * g.h * g.w,
                             pdy + (s0 * g.o + gi * og) * ohw, g.o * ohw, s1 - s0, og, g,
                             pp + b * wn + gi * og * k, scratch.data<T>() + b * scratch_size);
      });
    } else if (bcast) {
      // Per block: each group's sums as [k][opad] rows over its samples, whose dy goes pixel-major into dyT
      // first (zero past og); then transposed into the block's partial.
      const std::int64_t opad = bcast_pad(og, esz), acc_size = g.groups * k * opad;
      const std::int64_t scratch_size = acc_size + ohw * opad + bcast_scratch(g, cg);
      Tensor scratch({used, scratch_size}, x.dtype());
      for_sample_blocks(g.n, per, macs_of(g), [&](std::int64_t b, std::int64_t s0, std::int64_t s1) {
        T* acc = scratch.data<T>() + b * scratch_size;
        T* dyt = acc + acc_size;
        std::fill(acc, acc + acc_size, T(0));
        if (opad > og) std::fill(dyt, dyt + ohw * opad, T(0));
        for (std::int64_t s = s0; s < s1; ++s)
          for (std::int64_t gi = 0; gi < g.groups; ++gi) {
            transpose_matrix(dyt, opad, pdy + (s * g.o + gi * og) * ohw, ohw, ohw, og, esz);
            loops.bcast_wgrad(px + (s * g.c + gi * cg) * g.h * g.w, cg, g, dyt, opad, acc + gi * k * opad,
                              dyt + ohw * opad);
          }
        for (std::int64_t gi = 0; gi < g.groups; ++gi)
          transpose_matrix(pp + b * wn + gi * og * k, k, acc + gi * k * opad, opad, og, k, esz);
      });
    } else {
      for_sample_blocks(g.n, per, macs_of(g), [&](std::int64_t b, std::int64_t s0, std::int64_t s1) {
        T* col = pointwise ? nullptr : cols.data<T>() + b * k * ohw;
        T* acc = pp + b * wn;
        for (std::int64_t s = s0; s < s1; ++s)
          for (std::int64_t gi = 0; gi < g.groups; ++gi) {
            const T* xg = px + (s * g.c + gi * cg) * g.h * g.w;
            const T* dyg = pdy + (s * g.o + gi * og) * ohw;
            if (!pointwise) loops.im2col(xg, cg, g, col);
            gemm_raw(x.dtype(), dyg, ohw, false, pointwise ? xg : col, ohw, true, acc + gi * og * k, og, k,
                     ohw, 1.0, 1.0);
          }
      });
    }
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

void max_pool2d(const Tensor& x_in, const PoolGeom& g, const Shape& out, Tensor& values, Tensor& indices) {
  const Tensor x = dense(x_in);
  values = Tensor(out, x.dtype());
  indices = Tensor(out, f64);
  const std::int64_t hw = g.h * g.w, ohw = g.oh * g.ow;
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const auto& loops = conv_loops<T>();
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
            loops.max_pool_2x2_row(xp + 2 * oy * g.w, g.w, g.ow, static_cast<T>(2 * oy * g.w),
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
  Tensor dx(in_shape, dy.dtype());  // zeroed plane by plane below, while the plane is in the cache
  const std::int64_t h = in_shape[in_shape.size() - 2], w = in_shape.back();
  const std::int64_t hw = h * w, ohw = dy.size(dy.dim() - 2) * dy.size(dy.dim() - 1);
  const std::int64_t planes = dy.numel() / std::max<std::int64_t>(ohw, 1);
  dispatch(dy.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* pdy = dy.data<T>();
    const double* pi = indices.data<double>();
    T* pdx = dx.data<T>();
    for_planes(planes, hw + ohw, [&](std::int64_t p0, std::int64_t p1) {
      for (std::int64_t p = p0; p < p1; ++p) {
        std::fill(pdx + p * hw, pdx + (p + 1) * hw, T(0));
        for (std::int64_t i = 0; i < ohw; ++i)
          pdx[p * hw + static_cast<std::int64_t>(pi[p * ohw + i])] += pdy[p * ohw + i];
      }
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
/// Channel ch's forward coefficients from the f64 statistics, so the backward of the fused pool recomputes the
/// forward's values bit for bit.
template <class T>
BnCoeffs<T> bn_coeffs(const double* mean, const double* invstd, const T* gamma, const T* beta,
                      std::int64_t ch) {
  return {static_cast<T>(mean[ch]),
          static_cast<T>(invstd[ch] * (gamma ? static_cast<double>(gamma[ch]) : 1.0)),
          beta ? beta[ch] : T(0)};
}

/// Channels per task of BatchNorm2d's loops over x [n, c, hw...]: memory-bound, so they split only past
/// kParallelThreshold elements.
std::int64_t bn_grain(std::int64_t n, std::int64_t hw) {
  return std::max<std::int64_t>(1, kParallelThreshold / std::max<std::int64_t>(n * hw, 1));
}
}  // namespace

// One channel per task (independent, so the split never changes a result); the sums run in f64.
Tensor batch_norm_forward(const Tensor& x_in, const Tensor& gamma_in, const Tensor& beta_in, double eps,
                          Tensor& mean, Tensor& var, Tensor& invstd, BnEpilogue after) {
  const Tensor x = dense(x_in), gamma = dense(gamma_in), beta = dense(beta_in);
  const std::int64_t n = x.size(0), c = x.size(1), hw = x.numel() / std::max<std::int64_t>(n * c, 1);
  const double count = static_cast<double>(n * hw);
  const bool pool = after == BnEpilogue::relu_max_pool;
  Tensor y(pool ? Shape{n, c, x.size(2) / 2, x.size(3) / 2} : x.shape(), x.dtype());
  mean = Tensor({c}, f64);
  var = Tensor({c}, f64);
  invstd = Tensor({c}, f64);
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const auto& loops = conv_loops<T>();
    const T* px = x.data<T>();
    const T* pg = gamma.defined() ? gamma.data<T>() : nullptr;
    const T* pb = beta.defined() ? beta.data<T>() : nullptr;
    T* py = y.data<T>();
    double *pm = mean.data<double>(), *pv = var.data<double>(), *pi = invstd.data<double>();
    std::vector<BnCoeffs<T>> coeffs(static_cast<std::size_t>(c));
    parallel_range(c, bn_grain(n, hw), [&](std::int64_t c0, std::int64_t c1) {
      loops.channel_sums(px, n, c, hw, c0, c1, pm);
      for (std::int64_t ch = c0; ch < c1; ++ch) pm[ch] /= count;
      loops.channel_sq_devs(px, n, c, hw, c0, c1, pm, pv);
      for (std::int64_t ch = c0; ch < c1; ++ch) {
        pv[ch] /= count;
        pi[ch] = 1.0 / std::sqrt(pv[ch] + eps);
        coeffs[ch] = bn_coeffs(pm, pi, pg, pb, ch);
      }
      if (pool)
        loops.bn_relu_pool(px, py, n, c, x.size(2), x.size(3), c0, c1, coeffs.data());
      else
        loops.bn_apply(px, py, n, c, hw, c0, c1, coeffs.data(), after == BnEpilogue::relu);
    });
  });
  return y;
}

// The same split as the forward; with relu_max_pool the windows' ReLU values are recomputed from x with the
// forward's coefficients, so each window's maximum is the one the forward took.
void batch_norm_backward(const Tensor& dy_in, const Tensor& x_in, const Tensor& gamma_in,
                         const Tensor& beta_in, const Tensor& mean, const Tensor& invstd, Tensor& dx,
                         Tensor& dgamma, Tensor& dbeta, BnEpilogue after, const Tensor& relu_out_in) {
  const Tensor dy = dense(dy_in), x = dense(x_in), gamma = dense(gamma_in), beta = dense(beta_in);
  const Tensor relu_out = dense(relu_out_in);
  const std::int64_t n = x.size(0), c = x.size(1), hw = x.numel() / std::max<std::int64_t>(n * c, 1);
  const bool pool = after == BnEpilogue::relu_max_pool;
  const double count = static_cast<double>(n * hw);
  dx = Tensor(x.shape(), x.dtype());
  dgamma = Tensor({c}, x.dtype());
  dbeta = Tensor({c}, x.dtype());
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const auto& loops = conv_loops<T>();
    const T* px = x.data<T>();
    const T* pdy = dy.data<T>();
    const T* pr = after == BnEpilogue::relu ? relu_out.data<T>() : nullptr;
    const T* pg = gamma.defined() ? gamma.data<T>() : nullptr;
    const T* pb = beta.defined() ? beta.data<T>() : nullptr;
    const double *pm = mean.data<double>(), *pi = invstd.data<double>();
    T* pdx = dx.data<T>();
    T *pdg = dgamma.data<T>(), *pdb = dbeta.data<T>();
    std::vector<BnCoeffs<T>> fwd(pool ? static_cast<std::size_t>(c) : 0);
    for (std::int64_t ch = 0; ch < static_cast<std::int64_t>(fwd.size()); ++ch)
      fwd[ch] = bn_coeffs(pm, pi, pg, pb, ch);
    std::vector<double> sums(static_cast<std::size_t>(2 * c));
    std::vector<BnGradCoeffs<T>> coeffs(static_cast<std::size_t>(c));
    parallel_range(c, bn_grain(n, hw), [&](std::int64_t c0, std::int64_t c1) {
      double *sdy = sums.data(), *sdyx = sums.data() + c;
      if (pool)
        loops.bn_relu_pool_dy_sums(pdy, px, n, c, x.size(2), x.size(3), c0, c1, fwd.data(), pm, sdy, sdyx);
      else
        loops.channel_dy_sums(pdy, pr, px, n, c, hw, c0, c1, pm, sdy, sdyx);
      for (std::int64_t ch = c0; ch < c1; ++ch) {
        const double inv = pi[ch], dyx = sdyx[ch] * inv;  // sum(dy xhat)
        pdg[ch] = static_cast<T>(dyx);
        pdb[ch] = static_cast<T>(sdy[ch]);
        const double k = inv * (pg ? static_cast<double>(pg[ch]) : 1.0);
        coeffs[ch] = {static_cast<T>(k), static_cast<T>(sdy[ch] / count), static_cast<T>(pm[ch]),
                      static_cast<T>(inv), static_cast<T>(dyx / count)};
      }
      if (pool)
        loops.bn_relu_pool_grad(px, pdy, pdx, n, c, x.size(2), x.size(3), c0, c1, fwd.data(), coeffs.data());
      else
        loops.bn_grad_apply(px, pdy, pr, pdx, n, c, hw, c0, c1, coeffs.data());
    });
  });
}

}  // namespace backprop::kernels
