// Fashion-MNIST as the benchmark programs keep it: the images stay bytes, as the IDX files hold them (60,000 x
// 784 bytes = 45 MiB instead of 180 MiB as f32), and each batch is converted to f32 in [0, 1] when it is
// gathered. The LibTorch and PyTorch twins do the same.
#pragma once

#include <algorithm>
#include <backprop/backprop.hpp>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace bench {

struct ByteImages {
  std::vector<std::uint8_t> pixels;  // [n, 784]
  std::vector<float> labels;         // [n]
  std::int64_t n = 0;
};

/// The training or test split of the IDX files in `dir`; `limit` > 0 keeps the first `limit` examples.
inline ByteImages load_bytes(const std::string& dir, bool train, std::int64_t limit) {
  const std::string prefix = dir + (train ? "/train" : "/t10k");
  backprop::data::IdxArray images = backprop::data::read_idx(prefix + "-images-idx3-ubyte.gz", limit);
  const backprop::data::IdxArray labels = backprop::data::read_idx(prefix + "-labels-idx1-ubyte.gz", limit);
  if (images.dims.size() != 3 || images.dims[1] * images.dims[2] != 784 || labels.dims[0] != images.dims[0])
    throw std::runtime_error("bench: " + prefix + ": expected 28x28 images with one label each");
  ByteImages d;
  d.n = images.dims[0];
  d.pixels = std::move(images.data);
  d.labels.assign(labels.data.begin(), labels.data.end());
  return d;
}

/// Rows order[begin, begin + x.size(0)) of the byte images into x (f32, pixel / 255; [rows, 784] or
/// [rows, 1, 28, 28], the same bytes) and their labels into y. An empty order means rows begin, begin + 1, ...
inline void gather_batch(const ByteImages& src, const std::vector<std::int64_t>& order, std::int64_t begin,
                         backprop::Tensor& x, backprop::Tensor& y) {
  float* xd = x.data<float>();
  float* yd = y.data<float>();
  const std::int64_t rows = x.size(0);
  auto row_of = [&](std::int64_t r) {
    return order.empty() ? begin + r : order[static_cast<std::size_t>(begin + r)];
  };
  constexpr std::int64_t kAhead = 4;  // rows are scattered over the data set: fetch a few rows ahead
  for (std::int64_t r = 0; r < std::min(kAhead, rows); ++r)
    for (int c = 0; c < 784; c += 64) __builtin_prefetch(src.pixels.data() + row_of(r) * 784 + c);
  for (std::int64_t r = 0; r < rows; ++r) {
    if (r + kAhead < rows)
      for (int c = 0; c < 784; c += 64) __builtin_prefetch(src.pixels.data() + row_of(r + kAhead) * 784 + c);
    const std::int64_t i = row_of(r);
    const std::uint8_t* p = src.pixels.data() + i * 784;
    float* d = xd + r * 784;
    for (int c = 0; c < 784; ++c) d[c] = static_cast<float>(p[c]) / 255.0f;  // vectorised (a table is not)
    yd[r] = src.labels[static_cast<std::size_t>(i)];
  }
}

}  // namespace bench
