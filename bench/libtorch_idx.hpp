// The LibTorch benchmarks' shared IDX reader (bench_libtorch, bench_libtorch_cnn).
#pragma once

#include <torch/torch.h>
#include <zlib.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace libtorch_bench {

// Reads an IDX file (gzip) straight into a uint8 tensor of its size: no intermediate copy, as backprop's
// reader.
inline torch::Tensor read_idx(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw std::runtime_error("cannot open " + path);
  const auto read = [&](void* dst, std::int64_t n) {
    auto* d = static_cast<unsigned char*>(dst);
    while (n > 0) {
      const int got = gzread(f, d, static_cast<unsigned>(std::min<std::int64_t>(n, 1 << 30)));
      if (got <= 0) throw std::runtime_error(path + ": truncated");
      d += got;
      n -= got;
    }
  };
  unsigned char head[4];
  read(head, 4);
  std::vector<std::int64_t> dims;
  for (int i = 0; i < head[3]; ++i) {
    unsigned char p[4];
    read(p, 4);
    dims.push_back((std::int64_t{p[0]} << 24) | (p[1] << 16) | (p[2] << 8) | p[3]);
  }
  auto t = torch::empty(dims, torch::kUInt8);
  read(t.data_ptr(), t.numel());
  gzclose(f);
  return t;
}

}  // namespace libtorch_bench
