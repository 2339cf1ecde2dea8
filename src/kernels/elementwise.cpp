// Element-wise kernels: unary maps, broadcasting binary ops, conversions and in-place updates.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "kernels/conv_loops.hpp"
#include "kernels/device_kernels.hpp"
#include "kernels/kernels.hpp"
#include "kernels/parallel.hpp"

namespace backprop::kernels {
namespace {

template <class T, class F>
void map(const T* x, T* y, std::int64_t n, F f) {
  parallel_range(n, kParallelThreshold, [&](std::int64_t b, std::int64_t e) {
    for (std::int64_t i = b; i < e; ++i) y[i] = f(x[i]);
  });
}

template <class T>
T stable_sigmoid(T v) {
  if (v >= T(0)) return T(1) / (T(1) + std::exp(-v));
  const T e = std::exp(v);
  return e / (T(1) + e);
}

template <class T>
void unary_typed(Unary op, const T* x, T* y, std::int64_t n, T a, T b) {
  switch (op) {
    case Unary::neg:
      return map(x, y, n, [](T v) { return -v; });
    case Unary::exp:
      return map(x, y, n, [](T v) { return std::exp(v); });
    case Unary::log:
      return map(x, y, n, [](T v) { return std::log(v); });
    case Unary::sqrt:
      return map(x, y, n, [](T v) { return std::sqrt(v); });
    case Unary::abs:
      return map(x, y, n, [](T v) { return std::abs(v); });
    case Unary::sign:
      return map(x, y, n, [](T v) { return T((v > T(0)) - (v < T(0))); });
    case Unary::sigmoid:
      return map(x, y, n, [](T v) { return stable_sigmoid(v); });
    case Unary::tanh:
      return map(x, y, n, [](T v) { return std::tanh(v); });
    case Unary::relu:
      return parallel_range(n, kParallelThreshold, [&](std::int64_t b, std::int64_t e) {
        conv_loops<T>().relu(x + b, y + b, e - b);
      });
    case Unary::leaky_relu:
      return map(x, y, n, [a](T v) { return v > T(0) ? v : a * v; });
    case Unary::relu_mask:
      return map(x, y, n, [](T v) { return v > T(0) ? T(1) : T(0); });
    case Unary::leaky_relu_slope:
      return map(x, y, n, [a](T v) { return v > T(0) ? T(1) : a; });
    case Unary::pow:
      if (a == T(2)) return map(x, y, n, [](T v) { return v * v; });
      return map(x, y, n, [a](T v) { return std::pow(v, a); });
    case Unary::add_scalar:
      return map(x, y, n, [a](T v) { return v + a; });
    case Unary::mul_scalar:
      return map(x, y, n, [a](T v) { return v * a; });
    case Unary::rsub_scalar:
      return map(x, y, n, [a](T v) { return a - v; });
    case Unary::rdiv_scalar:
      return map(x, y, n, [a](T v) { return a / v; });
    case Unary::clamp:
      return map(x, y, n, [a, b](T v) { return std::min(std::max(v, a), b); });
    case Unary::clamp_mask:
      return map(x, y, n, [a, b](T v) { return (v >= a && v <= b) ? T(1) : T(0); });
    case Unary::greater_scalar:
      return map(x, y, n, [a](T v) { return v > a ? T(1) : T(0); });
  }
}

/// Contiguous strides of `shape`, right-aligned to `rank`, with 0 for broadcast (size-1) dimensions.
std::vector<std::int64_t> broadcast_strides(const Shape& shape, const Shape& out) {
  const std::size_t rank = out.size();
  std::vector<std::int64_t> strides(rank, 0);
  std::int64_t s = 1;
  for (std::size_t i = shape.size(); i-- > 0;) {
    const std::size_t o = i + (rank - shape.size());
    strides[o] = shape[i] == 1 ? 0 : s;
    s *= shape[i];
  }
  return strides;
}

/// Calls row(offset_a, offset_b, out_row_start) for each row of the output's last dimension.
template <class F>
void for_each_row(const Shape& out, const std::vector<std::int64_t>& sa, const std::vector<std::int64_t>& sb,
                  std::int64_t inner, F row) {
  const std::size_t rank = out.size();
  const std::int64_t total = numel(out);
  const std::int64_t outer = inner == 0 ? 0 : total / inner;
  parallel_range(outer, std::max<std::int64_t>(1, kParallelThreshold / std::max<std::int64_t>(inner, 1)),
                 [&](std::int64_t b, std::int64_t e) {
                   for (std::int64_t o = b; o < e; ++o) {
                     std::int64_t rem = o, oa = 0, ob = 0;
                     for (std::size_t d = rank - 1; d-- > 0;) {
                       const std::int64_t i = rem % out[d];
                       rem /= out[d];
                       oa += i * sa[d];
                       ob += i * sb[d];
                     }
                     row(oa, ob, o * inner);
                   }
                 });
}

template <class T, class F>
void binary_typed(const Tensor& a, const Tensor& b, Tensor& out, F f) {
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  T* po = out.data<T>();
  const std::int64_t n = out.numel();
  if (a.numel() == n && b.numel() == n) {
    parallel_range(n, kParallelThreshold, [&](std::int64_t s, std::int64_t e) {
      for (std::int64_t i = s; i < e; ++i) po[i] = f(pa[i], pb[i]);
    });
    return;
  }
  if (b.numel() == 1 && a.numel() == n) {
    const T vb = pb[0];
    parallel_range(n, kParallelThreshold, [&](std::int64_t s, std::int64_t e) {
      for (std::int64_t i = s; i < e; ++i) po[i] = f(pa[i], vb);
    });
    return;
  }
  if (a.numel() == 1 && b.numel() == n) {
    const T va = pa[0];
    parallel_range(n, kParallelThreshold, [&](std::int64_t s, std::int64_t e) {
      for (std::int64_t i = s; i < e; ++i) po[i] = f(va, pb[i]);
    });
    return;
  }
  const Shape& so = out.shape();
  const auto sa = broadcast_strides(a.shape(), so);
  const auto sb = broadcast_strides(b.shape(), so);
  const std::int64_t inner = so.back();
  const std::int64_t ia = sa.back(), ib = sb.back();
  for_each_row(so, sa, sb, inner, [&](std::int64_t oa, std::int64_t ob, std::int64_t oo) {
    const T* ra = pa + oa;
    const T* rb = pb + ob;
    T* ro = po + oo;
    if (ia == 1 && ib == 1) {
      for (std::int64_t j = 0; j < inner; ++j) ro[j] = f(ra[j], rb[j]);
    } else if (ia == 1) {
      for (std::int64_t j = 0; j < inner; ++j) ro[j] = f(ra[j], rb[0]);
    } else if (ib == 1) {
      for (std::int64_t j = 0; j < inner; ++j) ro[j] = f(ra[0], rb[j]);
    } else {
      for (std::int64_t j = 0; j < inner; ++j) ro[j] = f(ra[0], rb[0]);
    }
  });
}

void check_same_dtype(const Tensor& a, const Tensor& b, const char* op) {
  BP_CHECK(a.dtype() == b.dtype(), DTypeError, op, ": dtypes differ (", a.dtype(), " ", a.shape(), " vs ",
           b.dtype(), " ", b.shape(), "); convert one with .to()");
}

/// The op's name in errors (the public op that runs the kernel).
const char* unary_name(Unary op) {
  static constexpr const char* kNames[] = {
      "neg",  "exp",        "log", "sqrt", "abs", "sign", "sigmoid", "tanh",  "relu",  "leaky_relu",
      "relu", "leaky_relu", "pow", "add",  "mul", "rsub", "rdiv",    "clamp", "clamp", "greater"};
  static_assert(std::size(kNames) == static_cast<std::size_t>(Unary::greater_scalar) + 1);
  return kNames[static_cast<std::size_t>(op)];
}
}  // namespace

Tensor unary(Unary op, const Tensor& x_in, double alpha, double beta) {
  check_floating(x_in, unary_name(op), "x");
  if (!x_in.device().is_cpu()) return device_kernels(x_in.device()).unary(op, x_in, alpha, beta);
  const Tensor x = dense(x_in);
  Tensor y(x.shape(), x.dtype());
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    unary_typed<T>(op, x.data<T>(), y.data<T>(), x.numel(), static_cast<T>(alpha), static_cast<T>(beta));
  });
  return y;
}

Tensor binary(Binary op, const Tensor& a_in, const Tensor& b_in) {
  if (!a_in.device().is_cpu() || !b_in.device().is_cpu()) {
    check_same_device("binary op", a_in.device(), b_in.device());
    return device_kernels(a_in.device()).binary(op, a_in, b_in);
  }
  const Tensor a = dense(a_in);
  const Tensor b = dense(b_in);
  check_same_dtype(a, b, "binary op");
  const Shape shape = a.shape() == b.shape() ? a.shape() : broadcast_shapes(a.shape(), b.shape());
  Tensor out(shape, a.dtype());
  dispatch(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    switch (op) {
      case Binary::add:
        return binary_typed<T>(a, b, out, [](T x, T y) { return x + y; });
      case Binary::sub:
        return binary_typed<T>(a, b, out, [](T x, T y) { return x - y; });
      case Binary::mul:
        return binary_typed<T>(a, b, out, [](T x, T y) { return x * y; });
      case Binary::div:
        return binary_typed<T>(a, b, out, [](T x, T y) { return x / y; });
      case Binary::maximum:
        return binary_typed<T>(a, b, out, [](T x, T y) { return x >= y ? x : y; });
      case Binary::ge_mask:
        return binary_typed<T>(a, b, out, [](T x, T y) { return x >= y ? T(1) : T(0); });
      case Binary::eq:
        return binary_typed<T>(a, b, out, [](T x, T y) { return x == y ? T(1) : T(0); });
    }
  });
  return out;
}

Tensor masked_scale(const Tensor& x_in, const Tensor& mask_in, double scale) {
  const Tensor x = dense(x_in);
  const Tensor mask = dense(mask_in);
  Tensor y(x.shape(), x.dtype());
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    const T* pm = mask.data<T>();
    T* py = y.data<T>();
    const T s = static_cast<T>(scale);
    parallel_range(x.numel(), kParallelThreshold, [&](std::int64_t b, std::int64_t e) {
      for (std::int64_t i = b; i < e; ++i) py[i] = px[i] * pm[i] * s;
    });
  });
  return y;
}

Tensor activation_backward(ActivationGrad kind, const Tensor& dy_in, const Tensor& y_in) {
  const Tensor dy = dense(dy_in);
  const Tensor y = dense(y_in);
  Tensor dx(dy.shape(), dy.dtype());
  dispatch(dy.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* pd = dy.data<T>();
    const T* py = y.data<T>();
    T* px = dx.data<T>();
    parallel_range(dy.numel(), kParallelThreshold, [&](std::int64_t b, std::int64_t e) {
      // The expressions mirror masked_scale(dy, relu_mask(y), 1), mul(dy, mul(y, 1 - y)), ...
      switch (kind) {
        case ActivationGrad::relu:
          conv_loops<T>().relu_grad(pd + b, py + b, px + b, e - b);
          break;
        case ActivationGrad::sigmoid:
          for (std::int64_t i = b; i < e; ++i) px[i] = pd[i] * (py[i] * (T(1) - py[i]));
          break;
        case ActivationGrad::tanh:
          // Two loops on purpose: in one, the compiler would contract 1 - y y into a fused multiply-add (one
          // rounding instead of two) and the result would no longer match the composed ops bit for bit.
          for (std::int64_t i = b; i < e; ++i) px[i] = py[i] * py[i];
          for (std::int64_t i = b; i < e; ++i) px[i] = pd[i] * (T(1) - px[i]);
          break;
      }
    });
  });
  return dx;
}

Tensor broadcast_to(const Tensor& x_in, const Shape& shape) {
  const Tensor x = dense(x_in);
  Tensor out(shape, x.dtype());
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* po = out.data<T>();
    if (x.numel() == 1) {
      std::fill(po, po + out.numel(), px[0]);
      return;
    }
    if (shape.empty()) {
      po[0] = px[0];
      return;
    }
    const auto sx = broadcast_strides(x.shape(), shape);
    const std::int64_t inner = shape.back();
    const std::int64_t ix = sx.back();
    for_each_row(shape, sx, sx, inner, [&](std::int64_t ox, std::int64_t, std::int64_t oo) {
      for (std::int64_t j = 0; j < inner; ++j) po[oo + j] = px[ox + j * ix];
    });
  });
  return out;
}

Tensor sum_to(const Tensor& x_in, const Shape& shape) {
  if (x_in.shape() == shape) return x_in;
  const Tensor x = dense(x_in);
  Tensor out = zeros(shape, x.dtype());
  if (x.numel() == 0) return out;
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* po = out.data<T>();
    if (numel(shape) == 1) {
      double s = 0;
      for (std::int64_t i = 0; i < x.numel(); ++i) s += px[i];
      po[0] = static_cast<T>(s);
      return;
    }
    const Shape& sx = x.shape();
    const auto so = broadcast_strides(shape, sx);  // where each element of x lands in out
    const std::int64_t inner = sx.back();
    const std::int64_t io = so.back();
    const std::int64_t outer = x.numel() / inner;
    for (std::int64_t o = 0; o < outer; ++o) {  // sequential: a fixed summation order
      std::int64_t rem = o, off = 0;
      for (std::size_t d = sx.size() - 1; d-- > 0;) {
        off += (rem % sx[d]) * so[d];
        rem /= sx[d];
      }
      const T* row = px + o * inner;
      T* dst = po + off;
      if (io == 1) {
        for (std::int64_t j = 0; j < inner; ++j) dst[j] += row[j];
      } else {
        T s = 0;
        for (std::int64_t j = 0; j < inner; ++j) s += row[j];
        dst[0] += s;
      }
    }
  });
  return out;
}

Tensor convert(const Tensor& x_in, DType dtype) {
  const Tensor x = dense(x_in);
  Tensor y(x.shape(), dtype);
  dispatch_all(x.dtype(), [&](auto from_tag) {
    using From = decltype(from_tag);
    dispatch_all(dtype, [&](auto to_tag) {
      using To = decltype(to_tag);
      const From* px = x.data<From>();
      To* py = y.data<To>();
      for (std::int64_t i = 0; i < x.numel(); ++i) py[i] = convert_value<To>(px[i]);
    });
  });
  return y;
}

void axpy(Tensor& dst, const Tensor& src_in, double alpha) {
  const Tensor src = dense(src_in);
  if (!dst.is_contiguous()) {  // through a view: update a dense copy, then write it back
    Tensor tmp = dense(dst);
    axpy(tmp, src, alpha);
    return copy_elements(dst, tmp);
  }
  BP_CHECK(dst.numel() == src.numel(), ShapeError, "add_: shapes ", dst.shape(), " and ", src.shape(),
           " differ");
  check_same_dtype(dst, src, "add_");
  dispatch(dst.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* pd = dst.data<T>();
    const T* ps = src.data<T>();
    const T a = static_cast<T>(alpha);
    parallel_range(dst.numel(), kParallelThreshold, [&](std::int64_t b, std::int64_t e) {
      if (a == T(1)) {
        for (std::int64_t i = b; i < e; ++i) pd[i] += ps[i];
      } else {
        for (std::int64_t i = b; i < e; ++i) pd[i] += a * ps[i];
      }
    });
  });
}

void scale(Tensor& dst, double factor) {
  if (!dst.is_contiguous()) {
    Tensor tmp = dense(dst);
    scale(tmp, factor);
    return copy_elements(dst, tmp);
  }
  dispatch(dst.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* p = dst.data<T>();
    const T f = static_cast<T>(factor);
    for (std::int64_t i = 0; i < dst.numel(); ++i) p[i] *= f;
  });
}

void fill(Tensor& dst, double value) {
  if (!dst.device().is_cpu()) return device_kernels(dst.device()).fill(dst, value);
  if (!dst.is_contiguous()) {
    Tensor tmp = dense(dst);
    fill(tmp, value);
    return copy_elements(dst, tmp);
  }
  dispatch_all(dst.dtype(), [&](auto tag) {
    using T = decltype(tag);
    std::fill(dst.data<T>(), dst.data<T>() + dst.numel(), convert_value<T>(value));
  });
}

void copy(Tensor& dst, const Tensor& src) {
  BP_CHECK(dst.numel() == src.numel(), ShapeError, "copy_: shapes ", dst.shape(), " and ", src.shape(),
           " differ");
  // A source sharing dst's storage is copied out first, so no element is read after it was overwritten.
  const bool same_storage = src.storage() == dst.storage();
  const Tensor converted =
      dense(src.dtype() == dst.dtype() && !same_storage ? src : convert(src, dst.dtype()));
  if (dst.is_contiguous()) {
    std::memcpy(dst.raw_data(), converted.raw_data(), dst.nbytes());
    return;
  }
  // Into a view: the source's elements in row-major order, laid over dst's shape.
  copy_elements(dst, Tensor(converted.storage(), dst.shape(), dst.dtype(), converted.storage_offset()));
}

AxisSplit split_axis(const Shape& shape, std::int64_t axis) {
  AxisSplit s;
  for (std::int64_t i = 0; i < static_cast<std::int64_t>(shape.size()); ++i) {
    if (i < axis)
      s.outer *= shape[i];
    else if (i == axis)
      s.n = shape[i];
    else
      s.inner *= shape[i];
  }
  return s;
}

}  // namespace backprop::kernels
