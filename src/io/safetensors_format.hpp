// Facts about the safetensors format shared by its reader and writer. Internal; see backprop/io.hpp.
#pragma once

#include <backprop/tensor.hpp>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace backprop::io::detail {

// The format stores elements little-endian; backprop copies them without conversion.
static_assert(std::endian::native == std::endian::little,
              "backprop's safetensors reader and writer assume a little-endian machine");

/// The header length is one little-endian u64 before the JSON header.
inline constexpr std::uint64_t kLengthBytes = 8;
/// Key of the metadata object inside the header.
inline constexpr const char* kMetadataKey = "__metadata__";
/// The value of kChecksumKey starts with this, then 8 lowercase hex digits.
inline constexpr const char* kChecksumPrefix = "crc32:";

/// "F32" / "F64": the format's names of backprop's dtypes.
inline const char* safetensors_dtype(DType dt) {
  return dt == DType::f32 ? "F32" : "F64";
}

/// The checksum backprop records under kChecksumKey: CRC-32 over a canonical byte stream of everything the
/// file means, independent of how the header is formatted or in which order the data lies (so a file
/// rewritten by another tool that keeps the metadata still verifies). All integers are u64 little-endian,
/// strings are their byte length then their bytes:
///   number of tensors; for each tensor in byte-wise order of names: name, dtype ("F32"/"F64"), rank, each
///   dimension, the raw elements;
///   number of metadata entries (kChecksumKey excluded); for each in byte-wise order of keys: key, value.
/// `tensors` must be defined, with unique names.
std::uint32_t content_checksum(const std::vector<std::pair<std::string, Tensor>>& tensors,
                               const std::map<std::string, std::string>& metadata);

inline std::string format_checksum(std::uint32_t crc) {
  char hex[9];
  std::snprintf(hex, sizeof hex, "%08x", static_cast<unsigned>(crc));
  return std::string(kChecksumPrefix) + hex;
}

/// Flat index of the first NaN or infinite element of `t`, or -1 if every element is finite.
inline std::int64_t first_non_finite(const Tensor& t) {
  return dispatch(t.dtype(), [&](auto tag) -> std::int64_t {
    using T = decltype(tag);
    const T* p = t.data<T>();
    for (std::int64_t i = 0; i < t.numel(); ++i)
      if (!std::isfinite(p[i])) return i;
    return -1;
  });
}

/// The full index of flat element `flat` of a row-major tensor of `shape`, as "[i, j, ...]".
inline std::string index_text(const Shape& shape, std::int64_t flat) {
  Shape index(shape.size());
  for (std::size_t d = shape.size(); d-- > 0;) {
    index[d] = flat % shape[d];
    flat /= shape[d];
  }
  return to_string(index);
}

}  // namespace backprop::io::detail
