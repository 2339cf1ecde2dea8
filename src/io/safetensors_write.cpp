// Writing the safetensors format, and the NamedTensors look-ups.
#include <algorithm>
#include <backprop/io.hpp>
#include <cstring>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>
#include <string_view>

#include "io/file.hpp"
#include "io/safetensors_format.hpp"
#include "kernels/kernels.hpp"

namespace backprop::io {

bool NamedTensors::contains(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return true;
  return false;
}

const Tensor& NamedTensors::at(const std::string& name) const {
  for (const auto& [n, t] : tensors)
    if (n == name) return t;
  std::string present;
  constexpr std::size_t kListed = 16;
  for (std::size_t i = 0; i < tensors.size() && i < kListed; ++i)
    present += (i ? ", '" : "'") + tensors[i].first + "'";
  if (tensors.size() > kListed) present += ", ...";
  throw IndexError(::backprop::detail::cat("NamedTensors: no tensor named '", name, "' (", tensors.size(),
                                           " tensors: ", present.empty() ? "none" : present, ")"));
}

namespace {

// `text` as a JSON string literal; nlohmann::json::type_error if it is not valid UTF-8.
std::string quoted(const std::string& text) {
  return nlohmann::json(text).dump(-1, ' ', false, nlohmann::json::error_handler_t::strict);
}

// A tensor as the file will hold it: its stored type, the bytes written, and the tensor it loads back as
// (which the checksum covers).
struct Stored {
  const detail::StoredDType* dtype;
  std::string bytes;  // converted elements; empty when the tensor's own bytes are written
  Tensor loads_as;
};

// The stored type of tensor `name`: options.dtypes, else options.float_dtype for a floating tensor, else the
// tensor's own. Throws ValueError when the name is unknown or does not fit the tensor's dtype.
const detail::StoredDType* stored_dtype(const std::string& name, const Tensor& t,
                                        const SafetensorsOptions& options) {
  constexpr const char* who = "save_safetensors";
  std::string wanted = detail::safetensors_dtype(t.dtype());
  const char* from = "";
  if (const auto it = options.dtypes.find(name); it != options.dtypes.end()) {
    wanted = it->second;
    from = "options.dtypes";
  } else if (is_floating(t.dtype()) && !options.float_dtype.empty()) {
    wanted = options.float_dtype;
    from = "options.float_dtype";
  }
  const detail::StoredDType* d = detail::find_stored_dtype(wanted);
  BP_CHECK(d != nullptr, ValueError, who, ": ", from, " asks to store tensor '", name, "' as '", wanted,
           "', which is not a dtype backprop writes (F32, F64, F16, BF16, I64, I32, U8, BOOL)");
  const char* fits = is_floating(t.dtype()) ? "F32, F64, F16 or BF16"
                     : t.dtype() == i64     ? "I64, I32 or U8"
                                            : "BOOL";
  const bool ok = is_floating(t.dtype()) ? is_floating(d->loads_as) : d->loads_as == t.dtype();
  BP_CHECK(ok, ValueError, who, ": ", from, " asks to store tensor '", name, "' (", t.dtype(), ") as ",
           wanted, "; a tensor of dtype ", t.dtype(), " is stored as ", fits,
           " (convert it with to_dtype first)");
  return d;
}

// Converts dense tensor `t` to its stored type. Integers must fit it (the error names the tensor, the element
// and the value); floats round to nearest even, and a value beyond the stored type's range becomes infinite,
// as in PyTorch, which the finiteness check of the caller then reports.
Stored convert(const std::string& name, const Tensor& t, const detail::StoredDType* d) {
  Stored out{d, {}, t};
  const std::string stored = d->name;
  const auto n = static_cast<std::size_t>(t.numel());
  if (stored == "F32" || stored == "F64") {
    if (d->loads_as != t.dtype()) out.loads_as = t.to(d->loads_as);  // its own bytes are then written
    return out;
  }
  if (stored == "F16" || stored == "BF16") {
    // f64 goes through f32 first, as torch's .half() and .bfloat16() do.
    const Tensor f = t.dtype() == f32 ? t : t.to(f32);
    const float* p = f.data<float>();
    std::vector<std::uint16_t> half(n);
    Tensor back(t.shape(), f32);
    float* q = back.data<float>();
    for (std::size_t i = 0; i < n; ++i) {
      half[i] = stored == "F16" ? detail::f32_to_f16(p[i]) : detail::f32_to_bf16(p[i]);
      q[i] = stored == "F16" ? detail::f16_to_f32(half[i]) : detail::bf16_to_f32(half[i]);
    }
    out.bytes.assign(reinterpret_cast<const char*>(half.data()), n * 2);
    out.loads_as = back;
    return out;
  }
  if (stored == "I32" || stored == "U8") {
    const std::int64_t lo = stored == "U8" ? 0 : std::numeric_limits<std::int32_t>::min();
    const std::int64_t hi = stored == "U8" ? 255 : std::numeric_limits<std::int32_t>::max();
    const std::int64_t* p = t.data<std::int64_t>();
    out.bytes.resize(n * d->bytes);
    for (std::size_t i = 0; i < n; ++i) {
      BP_CHECK(p[i] >= lo && p[i] <= hi, ValueError, "save_safetensors: tensor '", name, "' ", t.shape(),
               " element ", i, " (index ", detail::index_text(t.shape(), static_cast<std::int64_t>(i)),
               ") is ", p[i], ", outside the range of ", stored, " [", lo, ", ", hi, "]");
      if (stored == "U8") {
        out.bytes[i] = static_cast<char>(static_cast<std::uint8_t>(p[i]));
      } else {
        const auto v = static_cast<std::int32_t>(p[i]);
        std::memcpy(&out.bytes[i * 4], &v, 4);
      }
    }
  }
  return out;  // I64 and BOOL: the tensor's own bytes
}

}  // namespace

void save_safetensors(const std::string& path, const NamedTensors& given, const SafetensorsOptions& options) {
  constexpr const char* who = "save_safetensors";
  // The file holds each tensor's elements row-major: views (non-contiguous) are written from a dense copy.
  NamedTensors dense_copy;
  const bool all_dense = std::all_of(given.tensors.begin(), given.tensors.end(), [](const auto& e) {
    return !e.second.defined() || e.second.is_contiguous();
  });
  if (!all_dense) {
    dense_copy = given;
    for (auto& e : dense_copy.tensors) e.second = kernels::dense(e.second);
  }
  const NamedTensors& data = all_dense ? given : dense_copy;
  BP_CHECK(!data.metadata.contains(kChecksumKey), ValueError, who, ": metadata key '", kChecksumKey,
           "' is reserved: backprop computes and writes the checksum itself");
  for (const auto& [name, _] : options.dtypes)
    BP_CHECK(data.contains(name), ValueError, who, ": options.dtypes names tensor '", name,
             "', which is not among the tensors saved");

  // The header is written as text, one entry after another, so its cost is linear in the number of tensors
  // (a JSON object that keeps insertion order searches its keys on every insert). The bytes are those of
  // nlohmann::ordered_json's compact dump: metadata first, so a reader sees it before the tensors.
  std::string head(detail::kLengthBytes, '\0');
  std::vector<std::string_view> parts(1);  // parts[0] becomes the length and the header
  std::set<std::string_view> seen;
  std::vector<Stored> stored;  // parts point into these: reserved, so they never move
  stored.reserve(data.tensors.size());
  try {
    std::string entries;  // ,"name":{...} for each tensor
    std::uint64_t offset = 0;
    std::vector<std::pair<std::string, Tensor>> loads_as;  // what load_safetensors will give back
    for (std::size_t i = 0; i < data.tensors.size(); ++i) {
      const auto& [name, t] = data.tensors[i];
      BP_CHECK(name != detail::kMetadataKey, ValueError, who, ": tensor ", i, " is named '",
               detail::kMetadataKey, "', which the format reserves for metadata");
      BP_CHECK(seen.insert(name).second, ValueError, who, ": two tensors are named '", name,
               "'; names must be unique");
      BP_CHECK(t.defined(), ValueError, who, ": tensor '", name, "' is undefined (default-constructed)");
      std::int64_t bad = detail::first_non_finite(t);
      BP_CHECK(bad < 0, ValueError, who, ": tensor '", name, "' ", t.shape(), " element ", bad, " (index ",
               detail::index_text(t.shape(), bad), ") is ", t.flat(bad), "; only finite values can be saved");
      const Stored& s = stored.emplace_back(convert(name, t, stored_dtype(name, t, options)));
      // A converted tensor is checked again: rounding to a narrower type may overflow to infinity.
      if (s.loads_as.raw_data() != t.raw_data()) bad = detail::first_non_finite(s.loads_as);
      BP_CHECK(bad < 0, ValueError, who, ": tensor '", name, "' ", t.shape(), " element ", bad, " (index ",
               detail::index_text(t.shape(), bad), ") is ", t.flat(bad), ", beyond the range of ",
               s.dtype->name, " (it would be stored as infinity); only finite values can be saved");
      loads_as.emplace_back(name, s.loads_as);
      const std::uint64_t nbytes = s.bytes.empty() ? s.loads_as.nbytes() : s.bytes.size();
      entries += "," + quoted(name) + ":{\"dtype\":\"" + s.dtype->name + "\",\"shape\":[";
      for (std::size_t d = 0; d < t.shape().size(); ++d)
        entries += (d ? "," : "") + std::to_string(t.shape()[d]);
      entries +=
          "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + nbytes) + "]}";
      parts.emplace_back(s.bytes.empty() ? static_cast<const char*>(s.loads_as.raw_data()) : s.bytes.data(),
                         nbytes);
      offset += nbytes;
    }
    head += "{\"";
    head += detail::kMetadataKey;
    head += "\":{";
    for (const auto& [key, value] : data.metadata) head += quoted(key) + ":" + quoted(value) + ",";
    head += quoted(kChecksumKey) + ":" +
            quoted(detail::format_checksum(detail::content_checksum(loads_as, data.metadata))) + "}";
    head += entries;
    head += "}";
  } catch (const nlohmann::json::type_error& e) {
    throw ValueError(
        ::backprop::detail::cat(who, ": a tensor name or metadata text is not valid UTF-8 (", e.what(), ")"));
  }
  // Pad the header with spaces so the data section starts on an 8-byte boundary, as other writers do.
  head.resize((head.size() + 7) / 8 * 8, ' ');
  const std::uint64_t header_bytes = head.size() - detail::kLengthBytes;
  for (std::size_t b = 0; b < detail::kLengthBytes; ++b)
    head[b] = static_cast<char>((header_bytes >> (8 * b)) & 0xff);
  parts[0] = head;
  detail::write_parts_atomic(path, parts, who);
}

}  // namespace backprop::io
