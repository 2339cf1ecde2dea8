// Shape and indexing ops on any dim. permute, transpose, narrow, slice, expand and (where the strides allow)
// reshape and the ops built on it return views that share x's storage; the others copy. Each backward is the
// op's adjoint, itself a recorded op, so every derivative can be differentiated again.
#include <algorithm>
#include <backprop/ops.hpp>
#include <cmath>
#include <cstring>
#include <memory>
#include <optional>

#include "kernels/kernels.hpp"

namespace backprop {

namespace {
Shape resolve_shape(const Tensor& x, const Shape& shape) {
  Shape s = shape;
  std::int64_t known = 1, infer = -1;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      BP_CHECK(infer < 0, ShapeError, "reshape: more than one -1 in ", shape);
      infer = static_cast<std::int64_t>(i);
    } else {
      BP_CHECK(s[i] >= 0, ShapeError, "reshape: negative dimension in ", shape);
      known *= s[i];
    }
  }
  if (infer >= 0) {
    BP_CHECK(known > 0 && x.numel() % known == 0, ShapeError, "reshape: cannot reshape ", x.shape(), " (",
             x.numel(), " elements) to ", shape);
    s[static_cast<std::size_t>(infer)] = x.numel() / known;
  }
  BP_CHECK(numel(s) == x.numel(), ShapeError, "reshape: cannot reshape ", x.shape(), " (", x.numel(),
           " elements) to ", shape, " (", numel(s), " elements)");
  return s;
}

/// `dim` of a tensor of rank `rank` (negatives count from the end), or a ShapeError naming the op and argument.
std::int64_t wrap_dim(const char* op, const char* arg, std::int64_t dim, std::int64_t rank,
                      const Shape& shape) {
  const std::int64_t r = std::max<std::int64_t>(rank, 1);
  BP_CHECK(dim >= -r && dim < r, ShapeError, op, ": ", arg, " ", dim, " is out of range for shape ", shape,
           " (expected a dim in [", -r, ", ", r - 1, "])");
  return dim < 0 ? dim + r : dim;
}

std::vector<std::int64_t> contiguous_strides(const Shape& shape) {
  std::vector<std::int64_t> s(shape.size(), 1);
  for (std::size_t d = shape.size(); d-- > 1;) s[d - 1] = s[d] * shape[d];
  return s;
}

std::int64_t prod(const Shape& s, std::size_t from, std::size_t to) {
  std::int64_t n = 1;
  for (std::size_t d = from; d < to; ++d) n *= s[d];
  return n;
}

/// Per-dim index maps: entry d lists, for each position along output dim d, the input position it reads
/// (negative: the fill value). An empty entry is the identity.
using Maps = std::vector<std::vector<std::int64_t>>;

std::size_t last_mapped(const Maps& maps) {
  std::size_t last = maps.size();
  for (std::size_t d = 0; d < maps.size(); ++d)
    if (!maps[d].empty()) last = d;
  return last;
}

bool is_range(const std::vector<std::int64_t>& m) {
  for (std::size_t i = 1; i < m.size(); ++i)
    if (m[i] != m[0] + static_cast<std::int64_t>(i)) return false;
  return !m.empty() && m[0] >= 0;
}

/// Visits every block of contiguous elements that `maps` moves: f(out_offset, in_offset or -1), in elements,
/// each block `inner` elements long. `out` is the mapped shape, `in` the unmapped one.
template <class F>
std::int64_t for_each_block(const Shape& out, const Shape& in, const Maps& maps, F&& f) {
  const std::size_t last = last_mapped(maps);
  if (last == maps.size()) {
    f(std::int64_t{0}, std::int64_t{0}, numel(out));
    return 0;
  }
  const std::int64_t inner = prod(out, last + 1, out.size());
  const std::vector<std::int64_t> in_stride = contiguous_strides(in);
  bool only_last = true;
  for (std::size_t d = 0; d < last; ++d) only_last = only_last && maps[d].empty();
  if (only_last && is_range(maps[last])) {  // narrow: one block per position of the dims before it
    const std::int64_t outer = prod(out, 0, last), len = out[last] * inner;
    for (std::int64_t o = 0; o < outer; ++o)
      f(o * len, o * in_stride[last] * in[last] + maps[last][0] * inner, len);
    return 0;
  }
  const std::int64_t outer = prod(out, 0, last + 1);
  std::vector<std::int64_t> idx(last + 1, 0);
  for (std::int64_t o = 0; o < outer; ++o) {
    std::int64_t src = 0;
    for (std::size_t d = 0; d <= last && src >= 0; ++d) {
      const std::int64_t p = maps[d].empty() ? idx[d] : maps[d][static_cast<std::size_t>(idx[d])];
      src = p < 0 ? -1 : src + p * in_stride[d];
    }
    f(o * inner, src, inner);
    for (std::size_t d = last + 1; d-- > 0;) {
      if (++idx[d] < out[d]) break;
      idx[d] = 0;
    }
  }
  return 0;
}

Tensor put_add(const Tensor& dy, const Shape& in_shape, std::shared_ptr<const Maps> maps);

/// y[i] = x[maps(i)], or `fill` where a map entry is negative. Adjoint: put_add.
Tensor take(const Tensor& x, const Shape& out_shape, std::shared_ptr<const Maps> maps, double fill,
            const char* name) {
  Tensor y(out_shape, x.dtype());
  const Tensor xd = kernels::dense(x);
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* src = xd.data<T>();
    T* dst = y.data<T>();
    for_each_block(out_shape, x.shape(), *maps, [&](std::int64_t o, std::int64_t i, std::int64_t n) {
      if (i < 0)
        std::fill(dst + o, dst + o + n, static_cast<T>(fill));
      else
        std::memcpy(dst + o, src + i, static_cast<std::size_t>(n) * sizeof(T));
    });
  });
  return record(name, y, {x},
                [in = x.shape(), maps](const Tensor& g) { return Tensors{put_add(g, in, maps)}; },
                {.saves_inputs = false});
}

/// The adjoint of take(): a zero tensor of `in_shape` with dy added at the positions take() read from.
Tensor put_add(const Tensor& dy, const Shape& in_shape, std::shared_ptr<const Maps> maps) {
  Tensor y = zeros(in_shape, dy.dtype());
  const Tensor dyd = kernels::dense(dy);
  dispatch(dy.dtype(), "put_add", [&](auto tag) {
    using T = decltype(tag);
    const T* src = dyd.data<T>();
    T* dst = y.data<T>();
    for_each_block(dy.shape(), in_shape, *maps, [&](std::int64_t o, std::int64_t i, std::int64_t n) {
      if (i >= 0)
        for (std::int64_t j = 0; j < n; ++j) dst[i + j] += src[o + j];
    });
  });
  return record(
      "take_backward", y, {dy},
      [out = dy.shape(), maps](const Tensor& g) { return Tensors{take(g, out, maps, 0.0, "take")}; },
      {.saves_inputs = false});
}

/// take() along one dim.
Tensor take_dim(const Tensor& x, std::int64_t dim, std::vector<std::int64_t> map, double fill,
                const char* name) {
  Shape out = x.shape();
  out[static_cast<std::size_t>(dim)] = static_cast<std::int64_t>(map.size());
  auto maps = std::make_shared<Maps>(x.shape().size());
  (*maps)[static_cast<std::size_t>(dim)] = std::move(map);
  return take(x, out, std::move(maps), fill, name);
}

/// The values of an index tensor (i64, or whole numbers in f32/f64) or list, each checked against [0, size).
std::vector<std::int64_t> index_values(const char* op, const Tensor& index, std::int64_t dim,
                                       const Shape& shape) {
  BP_CHECK(index.defined(), ValueError, op, ": index is undefined");
  BP_CHECK(index.dtype() != bool_, DTypeError, op, ": index is a bool tensor ", index.shape(),
           "; expected i64 indices (or whole numbers in f32/f64)");
  std::vector<std::int64_t> out(static_cast<std::size_t>(index.numel()));
  if (index.dtype() == i64) {
    std::copy(index.data<std::int64_t>(), index.data<std::int64_t>() + index.numel(), out.begin());
  }
  const std::vector<double> v = index.dtype() == i64 ? std::vector<double>() : index.to_vector();
  for (std::size_t i = 0; i < v.size(); ++i) {
    BP_CHECK(std::isfinite(v[i]) && v[i] == std::floor(v[i]), ValueError, op, ": index ", v[i], " (position ",
             i, ") is not a whole number");
    out[i] = static_cast<std::int64_t>(v[i]);
  }
  const std::int64_t size = shape.empty() ? 1 : shape[static_cast<std::size_t>(dim)];
  for (std::size_t i = 0; i < out.size(); ++i)
    BP_CHECK(out[i] >= 0 && out[i] < size, IndexError, op, ": index ", out[i], " (position ", i,
             ") is out of range for dim ", dim, " of size ", size, " (shape ", shape, ")");
  return out;
}

std::vector<std::int64_t> check_list(const char* op, const std::vector<std::int64_t>& index, std::int64_t dim,
                                     const Shape& shape) {
  const std::int64_t size = shape.empty() ? 1 : shape[static_cast<std::size_t>(dim)];
  for (std::size_t i = 0; i < index.size(); ++i)
    BP_CHECK(index[i] >= 0 && index[i] < size, IndexError, op, ": index ", index[i], " (position ", i,
             ") is out of range for dim ", dim, " of size ", size, " (shape ", shape, ")");
  return index;
}

/// Checks gather/scatter_add's index against x (and src): same rank, no larger than x off `dim`.
void check_scatter_shapes(const char* op, const Tensor& x, std::int64_t dim, const Tensor& index) {
  BP_CHECK(index.dim() == x.dim(), ShapeError, op, ": index has shape ", index.shape(),
           " but input has shape ", x.shape(), " (expected the same number of dims)");
  for (std::int64_t d = 0; d < x.dim(); ++d)
    BP_CHECK(d == dim || index.size(d) <= x.size(d), ShapeError, op, ": index shape ", index.shape(),
             " is larger than input shape ", x.shape(), " at dim ", d);
}

/// Calls f(position in index, offset in a tensor of `shape`) for every element of the index, where the
/// offset's coordinate along `dim` is the index's value.
template <class F>
void for_each_scatter(const Shape& index_shape, const std::vector<std::int64_t>& idx, const Shape& shape,
                      std::int64_t dim, F&& f) {
  const std::vector<std::int64_t> stride = contiguous_strides(shape);
  const std::size_t r = index_shape.size();
  std::vector<std::int64_t> c(r, 0);
  const std::int64_t n = numel(index_shape);
  for (std::int64_t k = 0; k < n; ++k) {
    std::int64_t off = 0;
    for (std::size_t d = 0; d < r; ++d)
      off += (static_cast<std::int64_t>(d) == dim ? idx[static_cast<std::size_t>(k)] : c[d]) * stride[d];
    f(k, off);
    for (std::size_t d = r; d-- > 0;) {
      if (++c[d] < index_shape[d]) break;
      c[d] = 0;
    }
  }
}

Tensor scatter_add_zeros(const Tensor& src, std::int64_t dim, const Tensor& index, const Shape& shape);

Tensor gather_impl(const Tensor& x, std::int64_t dim, const Tensor& index) {
  const std::vector<std::int64_t> idx = index_values("gather", index, dim, x.shape());
  Tensor y(index.shape(), x.dtype());
  const Tensor xd = kernels::dense(x);
  dispatch_all(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* src = xd.data<T>();
    T* dst = y.data<T>();
    for_each_scatter(index.shape(), idx, x.shape(), dim,
                     [&](std::int64_t k, std::int64_t off) { dst[k] = src[off]; });
  });
  return record("gather", y, {x},
                [shape = x.shape(), dim, index](const Tensor& g) {
                  return Tensors{scatter_add_zeros(g, dim, index, shape)};
                },
                {.saves_inputs = false});
}

/// zeros(shape) with src[k] added at index position k (along dim). Adjoint of gather.
Tensor scatter_add_zeros(const Tensor& src, std::int64_t dim, const Tensor& index, const Shape& shape) {
  const std::vector<std::int64_t> idx = index_values("scatter_add", index, dim, shape);
  Tensor y = zeros(shape, src.dtype());
  const Tensor srcd = kernels::dense(src);
  dispatch(src.dtype(), "scatter_add", [&](auto tag) {
    using T = decltype(tag);
    const T* s = srcd.data<T>();
    T* dst = y.data<T>();
    for_each_scatter(index.shape(), idx, shape, dim,
                     [&](std::int64_t k, std::int64_t off) { dst[off] += s[k]; });
  });
  return record("scatter_add", y, {src},
                [dim, index](const Tensor& g) { return Tensors{gather_impl(g, dim, index)}; },
                {.saves_inputs = false});
}

/// Strides under which `x`'s elements read as `shape` (same count), or empty when none exist: the rule of
/// PyTorch's view. Dims are matched in chunks that are contiguous in x.
std::optional<Shape> view_strides(const Tensor& x, const Shape& shape) {
  if (x.is_contiguous() || x.numel() == 0) return contiguous_strides(shape);
  const Shape& old = x.shape();
  const Shape st = x.strides();
  Shape out(shape.size(), 0);
  auto view_d = static_cast<std::int64_t>(shape.size()) - 1;
  std::int64_t chunk_base = st.back(), tensor_numel = 1, view_numel = 1;
  for (auto d = static_cast<std::int64_t>(old.size()) - 1; d >= 0; --d) {
    const auto du = static_cast<std::size_t>(d);
    tensor_numel *= old[du];
    if (d == 0 || (old[du - 1] != 1 && st[du - 1] != tensor_numel * chunk_base)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[static_cast<std::size_t>(view_d)] == 1)) {
        out[static_cast<std::size_t>(view_d)] = view_numel * chunk_base;
        view_numel *= shape[static_cast<std::size_t>(view_d)];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (d > 0) {
        chunk_base = st[du - 1];
        tensor_numel = view_numel = 1;
      }
    }
  }
  if (view_d != -1) return std::nullopt;
  return out;
}

Tensor view_of(const Tensor& x, const Shape& shape, const Shape& strides, std::int64_t offset) {
  return Tensor(x.storage(), shape, strides, offset, x.dtype());
}

/// The map of positions a narrow or slice reads along its dim: start, start + step, ...
std::shared_ptr<const Maps> dim_map(const Tensor& x, std::int64_t dim, std::int64_t start, std::int64_t n,
                                    std::int64_t step) {
  auto maps = std::make_shared<Maps>(x.shape().size());
  auto& m = (*maps)[static_cast<std::size_t>(dim)];
  for (std::int64_t i = 0; i < n; ++i) m.push_back(start + i * step);
  return maps;
}

/// x[start : start + n * step : step] along dim, as a view; its backward places dy in zeros (put_add).
Tensor strided_slice(const Tensor& x, std::int64_t dim, std::int64_t start, std::int64_t n, std::int64_t step,
                     const char* name) {
  Shape shape = x.shape(), strides = x.strides();
  const auto du = static_cast<std::size_t>(dim);
  const std::int64_t offset = x.storage_offset() + (n > 0 ? start * strides[du] : 0);
  shape[du] = n;
  strides[du] *= step;
  Tensor y = view_of(x, shape, strides, offset);
  return record(name, y, {x},
                [in = x.shape(), maps = dim_map(x, dim, start, n, step)](const Tensor& g) {
                  return Tensors{put_add(g, in, maps)};
                },
                {.saves_inputs = false});
}

std::vector<std::int64_t> check_permutation(const char* op, const Tensor& x,
                                            const std::vector<std::int64_t>& dims) {
  BP_CHECK(static_cast<std::int64_t>(dims.size()) == x.dim(), ShapeError, op, ": dims ", Shape(dims), " has ",
           dims.size(), " entries but the input has shape ", x.shape());
  std::vector<std::int64_t> d(dims.size());
  std::vector<bool> seen(dims.size(), false);
  for (std::size_t i = 0; i < dims.size(); ++i) {
    d[i] = wrap_dim(op, "dim", dims[i], x.dim(), x.shape());
    BP_CHECK(!seen[static_cast<std::size_t>(d[i])], ShapeError, op, ": dims ", Shape(dims), " repeats dim ",
             dims[i], " (input shape ", x.shape(), ")");
    seen[static_cast<std::size_t>(d[i])] = true;
  }
  return d;
}
}  // namespace

// A view when the strides allow one, else a contiguous copy. The gradient is reshaped back.
Tensor reshape(const Tensor& x, const Shape& shape) {
  const Shape s = resolve_shape(x, shape);
  const std::optional<Shape> strides = view_strides(x, s);
  Tensor y;
  if (strides) {
    y = view_of(x, s, *strides, x.storage_offset());
  } else {
    const Tensor copy = kernels::dense(x);
    y = Tensor(copy.storage(), s, x.dtype(), copy.storage_offset());
  }
  return record("reshape", y, {x}, [xs = x.shape()](const Tensor& dy) { return Tensors{reshape(dy, xs)}; },
                {.saves_inputs = false});
}

Tensor view(const Tensor& x, const Shape& shape) {
  const Shape s = resolve_shape(x, shape);
  const std::optional<Shape> strides = view_strides(x, s);
  BP_CHECK(strides.has_value(), ShapeError, "view: cannot view shape ", x.shape(), " with strides ",
           x.strides(), " as ", s,
           " without a copy (the dims to merge are not contiguous); use reshape(), which copies");
  Tensor y = view_of(x, s, *strides, x.storage_offset());
  return record("view", y, {x}, [xs = x.shape()](const Tensor& dy) { return Tensors{reshape(dy, xs)}; },
                {.saves_inputs = false});
}

Tensor to_dtype(const Tensor& x, DType dtype) {
  if (x.dtype() == dtype) return x;
  Tensor y = kernels::convert(x, dtype);
  if (!is_floating(dtype)) return y;  // an i64 or bool result has no gradient: the graph ends here
  return record("to_dtype", y, {x},
                [from = x.dtype()](const Tensor& dy) { return Tensors{to_dtype(dy, from)}; },
                {.saves_inputs = false});
}

Tensor permute(const Tensor& x, const std::vector<std::int64_t>& dims) {
  const std::vector<std::int64_t> d = check_permutation("permute", x, dims);
  std::vector<std::int64_t> inverse(d.size());
  for (std::size_t i = 0; i < d.size(); ++i)
    inverse[static_cast<std::size_t>(d[i])] = static_cast<std::int64_t>(i);
  Shape shape(d.size()), strides(d.size());
  for (std::size_t i = 0; i < d.size(); ++i) {
    shape[i] = x.shape()[static_cast<std::size_t>(d[i])];
    strides[i] = x.stride(d[i]);
  }
  Tensor y = view_of(x, shape, strides, x.storage_offset());
  return record("permute", y, {x}, [inverse](const Tensor& g) { return Tensors{permute(g, inverse)}; },
                {.saves_inputs = false});
}

Tensor transpose(const Tensor& x, std::int64_t d0, std::int64_t d1) {
  const std::int64_t a = wrap_dim("transpose", "dim0", d0, x.dim(), x.shape());
  const std::int64_t b = wrap_dim("transpose", "dim1", d1, x.dim(), x.shape());
  if (x.dim() == 0) return permute(x, {});
  std::vector<std::int64_t> dims(static_cast<std::size_t>(x.dim()));
  for (std::size_t i = 0; i < dims.size(); ++i) dims[i] = static_cast<std::int64_t>(i);
  std::swap(dims[static_cast<std::size_t>(a)], dims[static_cast<std::size_t>(b)]);
  return permute(x, dims);
}

Tensor squeeze(const Tensor& x) {
  Shape s;
  for (std::int64_t n : x.shape())
    if (n != 1) s.push_back(n);
  return reshape(x, s);
}

Tensor squeeze(const Tensor& x, std::int64_t dim) {
  const std::int64_t d = wrap_dim("squeeze", "dim", dim, x.dim(), x.shape());
  if (x.dim() == 0 || x.size(d) != 1) return reshape(x, x.shape());
  Shape s = x.shape();
  s.erase(s.begin() + d);
  return reshape(x, s);
}

Tensor unsqueeze(const Tensor& x, std::int64_t dim) {
  const std::int64_t r = x.dim() + 1;
  BP_CHECK(dim >= -r && dim < r, ShapeError, "unsqueeze: dim ", dim, " is out of range for shape ", x.shape(),
           " (expected a dim in [", -r, ", ", r - 1, "])");
  BP_CHECK(r <= static_cast<std::int64_t>(kMaxRank), ShapeError, "unsqueeze: shape ", x.shape(),
           " already has ", kMaxRank, " dims");
  Shape s = x.shape();
  s.insert(s.begin() + (dim < 0 ? dim + r : dim), 1);
  return reshape(x, s);
}

Tensor flatten(const Tensor& x, std::int64_t start_dim, std::int64_t end_dim) {
  if (x.dim() == 0) return reshape(x, {1});
  const std::int64_t a = wrap_dim("flatten", "start_dim", start_dim, x.dim(), x.shape());
  const std::int64_t b = wrap_dim("flatten", "end_dim", end_dim, x.dim(), x.shape());
  BP_CHECK(a <= b, ShapeError, "flatten: start_dim ", start_dim, " comes after end_dim ", end_dim,
           " for shape ", x.shape());
  const Shape& in = x.shape();
  Shape s(in.begin(), in.begin() + a);
  s.push_back(prod(in, static_cast<std::size_t>(a), static_cast<std::size_t>(b + 1)));
  s.insert(s.end(), in.begin() + b + 1, in.end());
  return reshape(x, s);
}

Tensor unflatten(const Tensor& x, std::int64_t dim, const Shape& sizes) {
  const std::int64_t d = wrap_dim("unflatten", "dim", dim, x.dim(), x.shape());
  BP_CHECK(x.dim() > 0 && !sizes.empty(), ShapeError, "unflatten: sizes ", sizes, " cannot split dim ", dim,
           " of shape ", x.shape());
  std::int64_t known = 1, infer = -1;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    if (sizes[i] == -1 && infer < 0)
      infer = static_cast<std::int64_t>(i);
    else
      known *= sizes[i];
  }
  Shape sz = sizes;
  const std::int64_t n = x.size(d);
  if (infer >= 0 && known > 0 && n % known == 0) sz[static_cast<std::size_t>(infer)] = n / known;
  BP_CHECK(numel(sz) == n && std::all_of(sz.begin(), sz.end(), [](std::int64_t v) { return v >= 0; }),
           ShapeError, "unflatten: sizes ", sizes, " do not multiply to ", n, ", the size of dim ", dim,
           " of shape ", x.shape());
  Shape s(x.shape().begin(), x.shape().begin() + d);
  s.insert(s.end(), sz.begin(), sz.end());
  s.insert(s.end(), x.shape().begin() + d + 1, x.shape().end());
  BP_CHECK(s.size() <= kMaxRank, ShapeError, "unflatten: the result ", s, " has more than ", kMaxRank,
           " dims");
  return reshape(x, s);
}

Tensor narrow(const Tensor& x, std::int64_t start, std::int64_t length) {
  return narrow(x, 0, start, length);
}

Tensor narrow(const Tensor& x, std::int64_t dim, std::int64_t start, std::int64_t length) {
  BP_CHECK(x.dim() >= 1, ShapeError, "narrow: expected at least 1 dimension, got a scalar");
  const std::int64_t d = wrap_dim("narrow", "dim", dim, x.dim(), x.shape());
  const std::int64_t n = x.size(d);
  const std::int64_t s = start < 0 && start >= -n ? start + n : start;
  BP_CHECK(s >= 0 && length >= 0 && s + length <= n, IndexError, "narrow: [", start, ", ", start + length,
           ") is out of range for dim ", dim, " of size ", n, " (shape ", x.shape(), ")");
  return strided_slice(x, d, s, length, 1, "narrow");
}

Tensor slice(const Tensor& x, std::int64_t dim, std::int64_t start, std::int64_t end, std::int64_t step) {
  BP_CHECK(x.dim() >= 1, ShapeError, "slice: expected at least 1 dimension, got a scalar");
  const std::int64_t d = wrap_dim("slice", "dim", dim, x.dim(), x.shape());
  BP_CHECK(step > 0, ValueError, "slice: step must be positive, got ", step);
  const std::int64_t n = x.size(d);
  auto clampi = [n](std::int64_t v) { return std::clamp<std::int64_t>(v < 0 ? v + n : v, 0, n); };
  const std::int64_t a = clampi(start), b = std::max(clampi(end), a);
  return strided_slice(x, d, a, (b - a + step - 1) / step, step, "slice");
}

Tensor expand(const Tensor& x, const Shape& shape) {
  BP_CHECK(shape.size() >= x.shape().size(), ShapeError, "expand: shape ", shape,
           " has fewer dims than input ", x.shape());
  Shape s = shape;
  const std::size_t lead = shape.size() - x.shape().size();
  for (std::size_t i = 0; i < s.size(); ++i)
    if (s[i] == -1) {
      BP_CHECK(i >= lead, ShapeError, "expand: -1 at new leading dim ", i, " of ", shape);
      s[i] = x.shape()[i - lead];
    }
  return broadcast_to(x, s);
}

Tensor index_select(const Tensor& x, std::int64_t dim, const std::vector<std::int64_t>& index) {
  BP_CHECK(x.dim() >= 1, ShapeError, "index_select: expected at least 1 dimension, got a scalar");
  const std::int64_t d = wrap_dim("index_select", "dim", dim, x.dim(), x.shape());
  return take_dim(x, d, check_list("index_select", index, d, x.shape()), 0.0, "index_select");
}

Tensor index_select(const Tensor& x, std::int64_t dim, const Tensor& index) {
  BP_CHECK(index.defined() && index.dim() <= 1, ShapeError,
           "index_select: index must be 0-D or 1-D, got shape ", index.defined() ? index.shape() : Shape{});
  BP_CHECK(x.dim() >= 1, ShapeError, "index_select: expected at least 1 dimension, got a scalar");
  const std::int64_t d = wrap_dim("index_select", "dim", dim, x.dim(), x.shape());
  return take_dim(x, d, index_values("index_select", index, d, x.shape()), 0.0, "index_select");
}

Tensor index_select(const Tensor& x, const std::vector<std::int64_t>& indices) {
  return index_select(x, 0, indices);
}

Tensor index_add(const Tensor& x, std::int64_t dim, const std::vector<std::int64_t>& index,
                 const Tensor& src) {
  BP_CHECK(x.dim() >= 1, ShapeError, "index_add: expected at least 1 dimension, got a scalar");
  const std::int64_t d = wrap_dim("index_add", "dim", dim, x.dim(), x.shape());
  Shape want = x.shape();
  want[static_cast<std::size_t>(d)] = static_cast<std::int64_t>(index.size());
  BP_CHECK(src.shape() == want, ShapeError, "index_add: source has shape ", src.shape(), " but input ",
           x.shape(), " with ", index.size(), " indices along dim ", dim, " needs ", want);
  auto maps = std::make_shared<Maps>(x.shape().size());
  (*maps)[static_cast<std::size_t>(d)] = check_list("index_add", index, d, x.shape());
  return add(x, put_add(src, x.shape(), std::move(maps)));
}

Tensor index_add(const Tensor& x, std::int64_t dim, const Tensor& index, const Tensor& src) {
  BP_CHECK(index.defined() && index.dim() <= 1, ShapeError, "index_add: index must be 0-D or 1-D, got shape ",
           index.defined() ? index.shape() : Shape{});
  BP_CHECK(x.dim() >= 1, ShapeError, "index_add: expected at least 1 dimension, got a scalar");
  const std::int64_t d = wrap_dim("index_add", "dim", dim, x.dim(), x.shape());
  return index_add(x, dim, index_values("index_add", index, d, x.shape()), src);
}

Tensor gather(const Tensor& x, std::int64_t dim, const Tensor& index) {
  const std::int64_t d = wrap_dim("gather", "dim", dim, x.dim(), x.shape());
  check_scatter_shapes("gather", x, d, index);
  return gather_impl(x, d, index);
}

Tensor scatter_add(const Tensor& x, std::int64_t dim, const Tensor& index, const Tensor& src) {
  const std::int64_t d = wrap_dim("scatter_add", "dim", dim, x.dim(), x.shape());
  check_scatter_shapes("scatter_add", x, d, index);
  BP_CHECK(src.shape() == index.shape(), ShapeError, "scatter_add: src has shape ", src.shape(),
           " but index has shape ", index.shape(), " (they must match)");
  BP_CHECK(src.dtype() == x.dtype(), DTypeError, "scatter_add: src is ", src.dtype(), " but input is ",
           x.dtype());
  return add(x, scatter_add_zeros(src, d, index, x.shape()));
}

Tensor cat(const Tensors& xs, std::int64_t dim) {
  BP_CHECK(!xs.empty(), ValueError, "cat: no tensors given");
  const Shape& first = xs[0].shape();
  BP_CHECK(!first.empty(), ShapeError, "cat: cannot join scalars (tensor 0 is 0-D)");
  const std::int64_t d = wrap_dim("cat", "dim", dim, xs[0].dim(), first);
  const auto du = static_cast<std::size_t>(d);
  Shape shape = first;
  shape[du] = 0;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    Shape s = xs[i].shape();
    BP_CHECK(s.size() == first.size() && xs[i].dtype() == xs[0].dtype(), ShapeError, "cat: tensor ", i,
             " is ", s, " ", xs[i].dtype(), " but tensor 0 is ", first, " ", xs[0].dtype());
    s[du] = first[du];
    BP_CHECK(s == first, ShapeError, "cat: tensor ", i, " has shape ", xs[i].shape(),
             " which differs from tensor 0 ", first, " beyond dim ", dim);
    shape[du] += xs[i].size(d);
  }
  Tensor y(shape, xs[0].dtype());
  const std::int64_t outer = prod(shape, 0, du), inner = prod(shape, du + 1, shape.size());
  const std::size_t es = dtype_size(y.dtype());
  std::vector<std::int64_t> starts, lengths;
  std::int64_t off = 0;
  for (const Tensor& x_in : xs) {
    const Tensor x = kernels::dense(x_in);
    starts.push_back(off);
    lengths.push_back(x.size(d));
    const std::size_t block = static_cast<std::size_t>(x.size(d) * inner) * es;
    for (std::int64_t o = 0; o < outer; ++o)
      std::memcpy(
          static_cast<char*>(y.raw_data()) + static_cast<std::size_t>((o * shape[du] + off) * inner) * es,
          static_cast<const char*>(x.raw_data()) + static_cast<std::size_t>(o) * block, block);
    off += x.size(d);
  }
  return record("cat", y, xs,
                [d, starts, lengths](const Tensor& dy) {
                  Tensors grads;
                  for (std::size_t i = 0; i < starts.size(); ++i)
                    grads.push_back(narrow(dy, d, starts[i], lengths[i]));
                  return grads;
                },
                {.saves_inputs = false});
}

Tensor concat(const Tensors& xs) {
  return cat(xs, 0);
}

Tensor stack(const Tensors& xs, std::int64_t dim) {
  BP_CHECK(!xs.empty(), ValueError, "stack: no tensors given");
  const std::int64_t r = xs[0].dim() + 1;
  BP_CHECK(dim >= -r && dim < r, ShapeError, "stack: dim ", dim, " is out of range for tensors of shape ",
           xs[0].shape(), " (expected a dim in [", -r, ", ", r - 1, "])");
  Tensors parts;
  for (std::size_t i = 0; i < xs.size(); ++i) {
    BP_CHECK(xs[i].shape() == xs[0].shape(), ShapeError, "stack: tensor ", i, " has shape ", xs[i].shape(),
             " but tensor 0 has shape ", xs[0].shape());
    parts.push_back(unsqueeze(xs[i], dim));
  }
  return cat(parts, dim);
}

Tensors split(const Tensor& x, const std::vector<std::int64_t>& sizes, std::int64_t dim) {
  BP_CHECK(x.dim() >= 1, ShapeError, "split: expected at least 1 dimension, got a scalar");
  const std::int64_t d = wrap_dim("split", "dim", dim, x.dim(), x.shape());
  std::int64_t total = 0;
  for (std::int64_t s : sizes) {
    BP_CHECK(s >= 0, ValueError, "split: negative size ", s, " in ", Shape(sizes));
    total += s;
  }
  BP_CHECK(total == x.size(d), ShapeError, "split: sizes ", Shape(sizes), " add up to ", total, " but dim ",
           dim, " of shape ", x.shape(), " has size ", x.size(d));
  Tensors out;
  std::int64_t start = 0;
  for (std::int64_t s : sizes) {
    out.push_back(narrow(x, d, start, s));
    start += s;
  }
  return out;
}

Tensors split(const Tensor& x, std::int64_t split_size, std::int64_t dim) {
  BP_CHECK(x.dim() >= 1, ShapeError, "split: expected at least 1 dimension, got a scalar");
  const std::int64_t d = wrap_dim("split", "dim", dim, x.dim(), x.shape());
  const std::int64_t n = x.size(d);
  BP_CHECK(split_size > 0 || (split_size == 0 && n == 0), ValueError,
           "split: split_size must be positive, got ", split_size);
  std::vector<std::int64_t> sizes;
  for (std::int64_t s = 0; s < n; s += split_size) sizes.push_back(std::min(split_size, n - s));
  if (sizes.empty()) sizes.push_back(0);
  return split(x, sizes, d);
}

Tensors chunk(const Tensor& x, std::int64_t chunks, std::int64_t dim) {
  BP_CHECK(chunks > 0, ValueError, "chunk: chunks must be positive, got ", chunks);
  BP_CHECK(x.dim() >= 1, ShapeError, "chunk: expected at least 1 dimension, got a scalar");
  const std::int64_t d = wrap_dim("chunk", "dim", dim, x.dim(), x.shape());
  const std::int64_t n = x.size(d);
  return split(x, std::max<std::int64_t>((n + chunks - 1) / chunks, n == 0 ? 0 : 1), d);
}

namespace {
Tensor triangle(const char* op, const Tensor& x, std::int64_t k, bool lower) {
  BP_CHECK(x.dim() >= 2, ShapeError, op, ": expected at least 2 dims, got shape ", x.shape());
  const std::int64_t rows = x.size(-2), cols = x.size(-1);
  std::vector<double> m(static_cast<std::size_t>(x.numel()));
  for (std::size_t i = 0; i < m.size(); ++i) {
    const auto ii = static_cast<std::int64_t>(i);
    const std::int64_t c = ii % cols, r = (ii / cols) % rows;
    m[i] = (lower ? c - r <= k : c - r >= k) ? 1.0 : 0.0;
  }
  if (!is_floating(x.dtype())) {
    // i64 and bool tensors (a causal attention mask) take no gradient: the entries outside are zeroed in a copy.
    Tensor y = x.contiguous().clone();
    auto* bytes = static_cast<unsigned char*>(y.raw_data());
    const std::size_t size = dtype_size(x.dtype());
    for (std::size_t i = 0; i < m.size(); ++i)
      if (m[i] == 0.0) std::memset(bytes + i * size, 0, size);
    return y;
  }
  // masked_scale's backward applies the same constant mask: tril's adjoint is tril.
  return masked_scale(x, from_vector(m, x.shape(), x.dtype()), 1.0);
}
}  // namespace

Tensor tril(const Tensor& x, std::int64_t k) {
  return triangle("tril", x, k, true);
}

Tensor triu(const Tensor& x, std::int64_t k) {
  return triangle("triu", x, k, false);
}

Tensor pad(const Tensor& x, const std::vector<std::int64_t>& pads, PadMode mode, double value) {
  const bool reflect = mode == PadMode::reflect;
  BP_CHECK(pads.size() % 2 == 0 && pads.size() / 2 <= x.shape().size(), ShapeError, "pad: pads ", Shape(pads),
           " must have an even length of at most twice the dims of input shape ", x.shape());
  auto maps = std::make_shared<Maps>(x.shape().size());
  Shape out = x.shape();
  for (std::size_t k = 0; k < pads.size() / 2; ++k) {
    const std::size_t d = x.shape().size() - 1 - k;
    const std::int64_t n = x.shape()[d], before = pads[2 * k], after = pads[2 * k + 1];
    const std::int64_t size = n + before + after;
    BP_CHECK(size >= 0, ShapeError, "pad: pads ", Shape(pads), " leave dim ", d, " of shape ", x.shape(),
             " with a negative size");
    if (reflect)
      BP_CHECK(before >= 0 && after >= 0 && before < n && after < n, ShapeError, "pad: reflect pads (",
               before, ", ", after, ") of dim ", d, " must be non-negative and below its size ", n,
               " (shape ", x.shape(), ")");
    std::vector<std::int64_t> map(static_cast<std::size_t>(size));
    for (std::int64_t i = 0; i < size; ++i) {
      std::int64_t s = i - before;
      if (reflect) s = s < 0 ? -s : s >= n ? 2 * (n - 1) - s : s;
      map[static_cast<std::size_t>(i)] = s >= 0 && s < n ? s : -1;
    }
    out[d] = size;
    (*maps)[d] = std::move(map);
  }
  return take(x, out, std::move(maps), reflect ? 0.0 : value, "pad");
}

}  // namespace backprop
