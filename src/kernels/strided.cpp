// Copies between tensors of any layout: the kernel behind contiguous(), to_vector() and in-place writes
// through views. Elements are moved as bytes of their size, so it serves every dtype.
#include <algorithm>
#include <cstring>

#include "kernels/device_kernels.hpp"
#include "kernels/kernels.hpp"

namespace backprop::kernels {

namespace {

/// dst[i] = src[i] for every index i of `shape`, each side read through its own strides (elements). Dims of
/// size 1 are dropped and neighbours laid out alike on both sides merged, so a row-major pair is one memcpy, a
/// narrow is a memcpy per row and a permute is a batch of 2-D transposes done in cache-sized tiles.
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
  // A transpose: dst walks `last` with stride 1 while src walks another dim q with stride 1. Tiling both
  // keeps the lines of each side in cache.
  std::size_t q = last;
  if (a[last] == 1 && b[last] != 1)
    for (std::size_t d = 0; d < last; ++d)
      if (b[d] == 1 && a[d] != 0) q = d;
  std::vector<std::size_t> rest;
  for (std::size_t d = 0; d < last; ++d)
    if (d != q) rest.push_back(d);
  std::int64_t outer = 1;
  for (std::size_t d : rest) outer *= n[d];
  std::vector<std::int64_t> c(rest.size(), 0);
  std::int64_t oo = 0, io = 0;
  const std::int64_t nl = n[last], al = a[last], bl = b[last];
  for (std::int64_t o = 0; o < outer; ++o) {
    if (q != last) {
      constexpr std::int64_t B = 32;
      const std::int64_t nq = n[q], aq = a[q];
      for (std::int64_t i0 = 0; i0 < nq; i0 += B)
        for (std::int64_t j0 = 0; j0 < nl; j0 += B) {
          const std::int64_t i1 = std::min(i0 + B, nq), j1 = std::min(j0 + B, nl);
          for (std::int64_t i = i0; i < i1; ++i) {
            E* drow = dst + oo + i * aq;
            const E* srow = src + io + i;
            for (std::int64_t j = j0; j < j1; ++j) drow[j] = srow[j * bl];
          }
        }
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

}  // namespace backprop::kernels
