// Reductions and softmax. Summation orders are fixed (independent of the thread count) so results are
// bit-identical whatever set_num_threads() says.
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "kernels/kernels.hpp"
#include "kernels/parallel.hpp"

namespace backprop::kernels {
namespace {
constexpr std::int64_t kBlock = 4096;

Shape reduced_shape(const Shape& shape, std::int64_t axis, bool keepdim) {
  Shape out;
  for (std::int64_t i = 0; i < static_cast<std::int64_t>(shape.size()); ++i) {
    if (i != axis)
      out.push_back(shape[i]);
    else if (keepdim)
      out.push_back(1);
  }
  return out;
}
}  // namespace

Tensor sum_all(const Tensor& x_in) {
  const Tensor x = dense(x_in);
  Tensor out({}, x.dtype());
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* p = x.data<T>();
    const std::int64_t n = x.numel();
    const std::int64_t blocks = (n + kBlock - 1) / kBlock;
    std::vector<double> partial(static_cast<std::size_t>(blocks), 0.0);
    parallel_range(blocks, std::max<std::int64_t>(1, kParallelThreshold / kBlock),
                   [&](std::int64_t b, std::int64_t e) {
                     for (std::int64_t k = b; k < e; ++k) {
                       const std::int64_t lo = k * kBlock, hi = std::min(n, lo + kBlock);
                       double s = 0;
                       for (std::int64_t i = lo; i < hi; ++i) s += p[i];
                       partial[static_cast<std::size_t>(k)] = s;
                     }
                   });
    double s = 0;
    for (double v : partial) s += v;
    out.data<T>()[0] = static_cast<T>(s);
  });
  return out;
}

namespace {
/// The f64 sum of src[0, n) in eight interleaved partial sums: independent chains the compiler vectorises,
/// where one running sum would wait on each add.
template <class T>
double sum_row(const T* src, std::int64_t n) {
  constexpr int lanes = 8;
  double acc[lanes] = {};
  std::int64_t k = 0;
  for (; k + lanes <= n; k += lanes)
    for (int l = 0; l < lanes; ++l) acc[l] += static_cast<double>(src[k + l]);
  for (; k < n; ++k) acc[0] += static_cast<double>(src[k]);
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}
}  // namespace

Tensor sum_axis(const Tensor& x_in, std::int64_t axis, bool keepdim) {
  const Tensor x = dense(x_in);
  const AxisSplit sp = split_axis(x.shape(), axis);
  Tensor out = zeros(reduced_shape(x.shape(), axis, keepdim), x.dtype());
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* po = out.data<T>();
    const std::int64_t work_per_outer = sp.n * sp.inner;
    parallel_range(sp.outer,
                   std::max<std::int64_t>(1, kParallelThreshold / std::max<std::int64_t>(1, work_per_outer)),
                   [&](std::int64_t b, std::int64_t e) {
                     for (std::int64_t o = b; o < e; ++o) {
                       const T* src = px + o * sp.n * sp.inner;
                       T* dst = po + o * sp.inner;
                       if (sp.inner == 1) {
                         dst[0] = static_cast<T>(sum_row(src, sp.n));
                       } else {
                         for (std::int64_t k = 0; k < sp.n; ++k)
                           for (std::int64_t i = 0; i < sp.inner; ++i) dst[i] += src[k * sp.inner + i];
                       }
                     }
                   });
  });
  return out;
}

void max_axis(const Tensor& x, std::int64_t axis, bool keepdim, Tensor& values, Tensor& indices) {
  extreme_axis(x, axis, keepdim, true, "max", values, indices);
}

namespace {
// a beats b for max (largest) or min: NaN beats every number, as in PyTorch, so NaN propagates.
template <class T>
bool beats(T a, T b, bool largest) {
  if (std::isnan(a)) return !std::isnan(b);
  return largest ? a > b : a < b;
}
}  // namespace

void extreme_axis(const Tensor& x_in, std::int64_t axis, bool keepdim, bool largest, const char* op,
                  Tensor& values, Tensor& indices) {
  const Tensor x = dense(x_in);
  const AxisSplit sp = split_axis(x.shape(), axis);
  BP_CHECK(sp.n > 0, ShapeError, op, ": cannot reduce an empty axis ", axis, " of shape ", x.shape());
  const Shape shape = reduced_shape(x.shape(), axis, keepdim);
  values = Tensor(shape, x.dtype());
  indices = Tensor(shape, i64);
  std::int64_t* pi = indices.data<std::int64_t>();
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* pv = values.data<T>();
    for (std::int64_t o = 0; o < sp.outer; ++o) {
      const T* src = px + o * sp.n * sp.inner;
      T* best = pv + o * sp.inner;
      std::int64_t* arg = pi + o * sp.inner;
      // Row by row, so the inner dimension is read contiguously (axis 0 of [N, C] is not a strided walk).
      for (std::int64_t i = 0; i < sp.inner; ++i) {
        best[i] = src[i];
        arg[i] = 0;
      }
      for (std::int64_t k = 1; k < sp.n; ++k) {
        const T* row = src + k * sp.inner;
        for (std::int64_t i = 0; i < sp.inner; ++i)
          if (beats(row[i], best[i], largest)) {
            best[i] = row[i];
            arg[i] = k;
          }
      }
    }
  });
}

Tensor topk_indices(const Tensor& x_in, std::int64_t axis, std::int64_t k, bool largest, bool sorted) {
  const Tensor x = dense(x_in);
  const AxisSplit sp = split_axis(x.shape(), axis);
  Shape shape = x.shape();
  shape[static_cast<std::size_t>(axis)] = k;
  Tensor indices(shape, i64);
  std::int64_t* pi = indices.data<std::int64_t>();
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    std::vector<std::int64_t> order(static_cast<std::size_t>(sp.n));
    for (std::int64_t o = 0; o < sp.outer; ++o)
      for (std::int64_t i = 0; i < sp.inner; ++i) {
        const T* src = px + o * sp.n * sp.inner + i;
        for (std::int64_t j = 0; j < sp.n; ++j) order[static_cast<std::size_t>(j)] = j;
        // Best first; equal values keep their index order, so the result is deterministic.
        auto better = [&](std::int64_t a, std::int64_t b) {
          const T va = src[a * sp.inner], vb = src[b * sp.inner];
          if (beats(va, vb, largest)) return true;
          if (beats(vb, va, largest)) return false;
          return a < b;
        };
        std::partial_sort(order.begin(), order.begin() + k, order.end(), better);
        if (!sorted) std::sort(order.begin(), order.begin() + k);
        for (std::int64_t j = 0; j < k; ++j)
          pi[(o * k + j) * sp.inner + i] = order[static_cast<std::size_t>(j)];
      }
  });
  return indices;
}

namespace {
// Finite iff the exponent bits are not all ones. The test is an AND, a compare and an OR per element, which
// vectorises with the baseline instruction set (a max over unsigned integers needs SSE4.1, and
// std::isfinite with an early return does not vectorise at all).
template <class T, class U>
bool finite_bits(const T* p, std::int64_t n) {
  constexpr U exp_bits = std::bit_cast<U>(std::numeric_limits<T>::infinity());
  for (std::int64_t lo = 0; lo < n; lo += kBlock) {
    const std::int64_t hi = std::min(n, lo + kBlock);
    U bad = 0;
    for (std::int64_t i = lo; i < hi; ++i) bad |= U((std::bit_cast<U>(p[i]) & exp_bits) == exp_bits);
    if (bad != 0) return false;
  }
  return true;
}
}  // namespace

bool all_finite(const Tensor& x_in) {
  if (!is_floating(x_in.dtype())) return true;
  const Tensor x = dense(x_in);
  if (x.dtype() == f32) return finite_bits<float, std::uint32_t>(x.data<float>(), x.numel());
  return finite_bits<double, std::uint64_t>(x.data<double>(), x.numel());
}

std::int64_t count_argmax_matches(const Tensor& outputs_in, const Tensor& targets_in) {
  const Tensor outputs = dense(outputs_in);
  const Tensor targets = dense(targets_in);
  BP_CHECK(outputs.dim() == 2 && targets.numel() == outputs.size(0), ShapeError,
           "accuracy: expected outputs [N, C] and N targets, got ", outputs.shape(), " and ",
           targets.shape());
  const std::int64_t rows = outputs.size(0), classes = outputs.size(1);
  BP_CHECK(rows == 0 || classes > 0, ShapeError, "accuracy: outputs ", outputs.shape(), " have no classes");
  std::int64_t matches = 0;
  dispatch(outputs.dtype(), [&](auto out_tag) {
    using T = decltype(out_tag);
    dispatch_all(targets.dtype(), [&](auto target_tag) {
      using L = decltype(target_tag);
      const T* po = outputs.data<T>();
      const L* pt = targets.data<L>();
      for (std::int64_t r = 0; r < rows; ++r) {
        const T* row = po + r * classes;
        T best = row[0];
        std::int64_t arg = 0;
        for (std::int64_t k = 1; k < classes; ++k) {
          const T v = row[k];
          if (v > best || (std::isnan(v) && !std::isnan(best))) {
            best = v;
            arg = k;
          }
        }
        matches += static_cast<double>(arg) == static_cast<double>(pt[r]);
      }
    });
  });
  return matches;
}

Tensor argmax_mask(const Tensor& x, std::int64_t axis) {
  Tensor values, indices;
  max_axis(x, axis, true, values, indices);
  const AxisSplit sp = split_axis(x.shape(), axis);
  Tensor mask = zeros(x.shape(), x.dtype());
  const std::int64_t* pi = indices.data<std::int64_t>();
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* pm = mask.data<T>();
    for (std::int64_t o = 0; o < sp.outer; ++o)
      for (std::int64_t i = 0; i < sp.inner; ++i) {
        const std::int64_t k = pi[o * sp.inner + i];
        pm[(o * sp.n + k) * sp.inner + i] = T(1);
      }
  });
  return mask;
}

namespace {
// Softmax over a middle or leading axis: blocks of up to kLanes neighbouring inner positions are done
// together, walking the axis row by row so every read is contiguous (not a stride of `inner` per element).
// Per position the arithmetic is the same as the last-axis path's, so the results agree bit for bit.
template <class T>
void softmax_strided(const T* px, T* py, const AxisSplit& sp, bool log) {
  constexpr std::int64_t kLanes = 256;
  const std::int64_t blocks = (sp.inner + kLanes - 1) / kLanes;
  parallel_range(sp.outer * blocks,
                 std::max<std::int64_t>(1, kParallelThreshold / std::max<std::int64_t>(1, sp.n * kLanes)),
                 [&](std::int64_t b, std::int64_t e) {
                   T m[kLanes], s[kLanes];
                   for (std::int64_t t = b; t < e; ++t) {
                     const std::int64_t o = t / blocks, lo = (t % blocks) * kLanes;
                     const std::int64_t w = std::min(kLanes, sp.inner - lo);
                     const T* src = px + o * sp.n * sp.inner + lo;
                     T* dst = py + o * sp.n * sp.inner + lo;
                     for (std::int64_t i = 0; i < w; ++i) {
                       m[i] = -std::numeric_limits<T>::infinity();
                       s[i] = 0;
                     }
                     for (std::int64_t k = 0; k < sp.n; ++k)
                       for (std::int64_t i = 0; i < w; ++i) m[i] = std::max(m[i], src[k * sp.inner + i]);
                     for (std::int64_t i = 0; i < w; ++i)
                       if (!std::isfinite(m[i])) m[i] = T(0);
                     for (std::int64_t k = 0; k < sp.n; ++k)
                       for (std::int64_t i = 0; i < w; ++i) s[i] += std::exp(src[k * sp.inner + i] - m[i]);
                     for (std::int64_t i = 0; i < w; ++i) s[i] = log ? std::log(s[i]) : T(1) / s[i];
                     for (std::int64_t k = 0; k < sp.n; ++k)
                       for (std::int64_t i = 0; i < w; ++i) {
                         const std::int64_t at = k * sp.inner + i;
                         dst[at] = log ? (src[at] - m[i]) - s[i] : std::exp(src[at] - m[i]) * s[i];
                       }
                   }
                 });
}
}  // namespace

Tensor softmax(const Tensor& x_in, std::int64_t axis, bool log) {
  const Tensor x = dense(x_in);
  const AxisSplit sp = split_axis(x.shape(), axis);
  Tensor y(x.shape(), x.dtype());
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    if (sp.inner > 1) {
      softmax_strided(px, py, sp, log);
      return;
    }
    parallel_range(sp.outer, std::max<std::int64_t>(1, kParallelThreshold / std::max<std::int64_t>(1, sp.n)),
                   [&](std::int64_t b, std::int64_t e) {
                     for (std::int64_t o = b; o < e; ++o) {
                       const T* src = px + o * sp.n;
                       T* dst = py + o * sp.n;
                       T m = -std::numeric_limits<T>::infinity();
                       for (std::int64_t k = 0; k < sp.n; ++k) m = std::max(m, src[k]);
                       if (!std::isfinite(m)) m = T(0);
                       T s = 0;
                       for (std::int64_t k = 0; k < sp.n; ++k) s += std::exp(src[k] - m);
                       if (log) {
                         // (x - m) - log(s), not x - (m + log(s)): with large logits m + log(s) would round
                         // log(s) away (in f32 at |x| ~ 1000 the spacing of floats is 6e-5).
                         const T log_s = std::log(s);
                         for (std::int64_t k = 0; k < sp.n; ++k) dst[k] = (src[k] - m) - log_s;
                       } else {
                         const T inv = T(1) / s;
                         for (std::int64_t k = 0; k < sp.n; ++k) dst[k] = std::exp(src[k] - m) * inv;
                       }
                     }
                   });
  });
  return y;
}

}  // namespace backprop::kernels
