// The content checksum of a safetensors file; the byte stream it covers is described in
// safetensors_format.hpp.
#include <algorithm>
#include <backprop/io.hpp>
#include <numeric>

#include "io/file.hpp"
#include "io/safetensors_format.hpp"
#include "kernels/kernels.hpp"

namespace backprop::io::detail {
namespace {

struct Crc {
  std::uint32_t value = 0;
  void bytes(const void* p, std::size_t n) { value = crc32(value, p, n); }
  void u64(std::uint64_t x) {
    unsigned char le[8];
    for (int b = 0; b < 8; ++b) le[b] = static_cast<unsigned char>(x >> (8 * b));
    bytes(le, sizeof le);
  }
  void text(std::string_view s) {
    u64(s.size());
    bytes(s.data(), s.size());
  }
};

}  // namespace

std::uint32_t content_checksum(const std::vector<std::pair<std::string, Tensor>>& tensors,
                               const std::map<std::string, std::string>& metadata) {
  std::vector<std::size_t> order(tensors.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  // std::string compares as unsigned bytes, the same order as Python's sorting of bytes.
  std::sort(order.begin(), order.end(),
            [&](std::size_t a, std::size_t b) { return tensors[a].first < tensors[b].first; });
  Crc crc;
  crc.u64(tensors.size());
  for (const std::size_t i : order) {
    const auto& [name, t] = tensors[i];
    crc.text(name);
    crc.text(safetensors_dtype(t.dtype()));
    crc.u64(t.shape().size());
    for (const std::int64_t d : t.shape()) crc.u64(static_cast<std::uint64_t>(d));
    const Tensor bytes = kernels::dense(t);  // a view's elements, row-major
    crc.bytes(bytes.raw_data(), bytes.nbytes());
  }
  const std::size_t entries = metadata.size() - metadata.count(kChecksumKey);
  crc.u64(entries);
  for (const auto& [key, value] : metadata) {
    if (key == kChecksumKey) continue;
    crc.text(key);
    crc.text(value);
  }
  return crc.value;
}

}  // namespace backprop::io::detail
