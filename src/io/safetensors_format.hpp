// Facts about the safetensors format shared by its reader and writer. Internal; see backprop/io.hpp.
#pragma once

#include <algorithm>
#include <backprop/tensor.hpp>
#include <bit>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <map>
#include <string>
#include <type_traits>
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

/// "F32", "F64", "I64", "BOOL": the format's names of backprop's dtypes (what a tensor is written as).
inline const char* safetensors_dtype(DType dt) {
  switch (dt) {
    case DType::f32:
      return "F32";
    case DType::f64:
      return "F64";
    case DType::i64:
      return "I64";
    case DType::bool_:
      break;
  }
  return "BOOL";
}

/// An element type a file may hold, and the dtype it becomes in memory: F16 and BF16 widen to f32, I32 and
/// U8 to i64 (every value exactly); the others load as they are.
struct StoredDType {
  const char* name;
  std::size_t bytes;
  DType loads_as;
};
inline constexpr StoredDType kStoredDTypes[] = {
    {"F32", 4, DType::f32}, {"F64", 8, DType::f64},  {"I64", 8, DType::i64}, {"BOOL", 1, DType::bool_},
    {"F16", 2, DType::f32}, {"BF16", 2, DType::f32}, {"I32", 4, DType::i64}, {"U8", 1, DType::i64}};

/// IEEE half precision (1 sign, 5 exponent, 10 fraction bits) to float, exactly: subnormals, signed zeros,
/// infinities and NaN (payload kept in the high fraction bits) included.
inline float f16_to_f32(std::uint16_t h) {
  const std::uint32_t sign = std::uint32_t{h & 0x8000u} << 16;
  const std::uint32_t exponent = (h >> 10) & 0x1fu;
  std::uint32_t fraction = h & 0x3ffu;
  std::uint32_t bits = 0;
  if (exponent == 0x1f) {
    bits = sign | 0x7f800000u | (fraction << 13);  // inf or NaN
  } else if (exponent != 0) {
    bits = sign | ((exponent + 112) << 23) | (fraction << 13);  // normal: rebias 15 -> 127
  } else if (fraction != 0) {
    // Subnormal: fraction * 2^-24; normalise it (shift until the implicit bit appears).
    int e = -1;
    do {
      ++e;
      fraction <<= 1;
    } while ((fraction & 0x400u) == 0);
    bits = sign | (static_cast<std::uint32_t>(112 - e) << 23) | ((fraction & 0x3ffu) << 13);
  } else {
    bits = sign;  // +-0
  }
  return std::bit_cast<float>(bits);
}

/// bfloat16 (the top half of a float's bits) to float: exact by construction.
inline float bf16_to_f32(std::uint16_t b) {
  return std::bit_cast<float>(std::uint32_t{b} << 16);
}

/// float to IEEE half precision, rounding to nearest even as PyTorch's .half() does: values from 65520 up
/// overflow to infinity, tiny values become subnormals or zero, NaN becomes 0x7e00 (with its sign). Exact for
/// every float (F. Giesen's float_to_half_fast3_rtne: the hardware's float addition rounds the subnormals).
inline std::uint16_t f32_to_f16(float value) {
  std::uint32_t bits = std::bit_cast<std::uint32_t>(value);
  const auto sign = static_cast<std::uint16_t>((bits >> 16) & 0x8000u);
  bits &= 0x7fffffffu;
  if (bits >= 0x47800000u)  // 65536 and above, inf, NaN
    return sign | (bits > 0x7f800000u ? 0x7e00u : 0x7c00u);
  if (bits < 0x38800000u) {                                   // below 2^-14: a subnormal half or zero
    const float aligned = std::bit_cast<float>(bits) + 0.5f;  // puts the 10 kept bits at the bottom, rounded
    return sign | static_cast<std::uint16_t>(std::bit_cast<std::uint32_t>(aligned) - 0x3f000000u);
  }
  const std::uint32_t odd = (bits >> 13) & 1u;
  bits += 0xc8000fffu + odd;  // rebias 127 -> 15 (wrapping) and round half to even
  return sign | static_cast<std::uint16_t>(bits >> 13);
}

/// float to bfloat16 (the top 16 bits), rounding to nearest even as PyTorch does; overflow gives infinity,
/// NaN becomes 0x7fc0 (with its sign).
inline std::uint16_t f32_to_bf16(float value) {
  const std::uint32_t bits = std::bit_cast<std::uint32_t>(value);
  if (std::isnan(value)) return static_cast<std::uint16_t>(((bits >> 16) & 0x8000u) | 0x7fc0u);
  return static_cast<std::uint16_t>((bits + 0x7fffu + ((bits >> 16) & 1u)) >> 16);
}

/// The stored type named `name`, or nullptr when the format has no such name (or backprop cannot hold it).
inline const StoredDType* find_stored_dtype(const std::string& name) {
  for (const StoredDType& d : kStoredDTypes)
    if (name == d.name) return &d;
  return nullptr;
}

/// The checksum backprop records under kChecksumKey: CRC-32 over a canonical byte stream of everything the
/// file means, independent of how the header is formatted or in which order the data lies (so a file
/// rewritten by another tool that keeps the metadata still verifies). All integers are u64 little-endian,
/// strings are their byte length then their bytes:
///   number of tensors; for each tensor in byte-wise order of names: name, dtype (safetensors_dtype of the dtype
///   it loads as), rank, each dimension, the raw elements as loaded (F16 widened to f32, I32 to i64, ...);
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
  if (!is_floating(t.dtype())) return -1;  // integers and bools are always finite
  const std::int64_t n = t.numel();
  return dispatch(t.dtype(), [&](auto tag) -> std::int64_t {
    using T = decltype(tag);
    // An IEEE value is NaN or infinite exactly when its exponent bits are all ones. Testing the bits, OR-ed
    // over a block, is branch-free and vectorises (a floating-point test does not); only a block that holds a
    // bad value is searched element by element.
    using Bits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
    constexpr Bits kExponent = [] {
      if constexpr (sizeof(T) == 4)
        return Bits{0x7f800000u};
      else
        return Bits{0x7ff0000000000000ull};
    }();
    const T* p = t.data<T>();
    constexpr std::int64_t kBlock = 4096;
    for (std::int64_t start = 0; start < n; start += kBlock) {
      const std::int64_t end = std::min(n, start + kBlock);
      Bits bad = 0;
      for (std::int64_t i = start; i < end; ++i) bad |= (std::bit_cast<Bits>(p[i]) & kExponent) == kExponent;
      if (bad == 0) continue;
      for (std::int64_t i = start; i < end; ++i)
        if (!std::isfinite(p[i])) return i;
    }
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
