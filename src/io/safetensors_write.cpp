// Writing the safetensors format, and the NamedTensors look-ups.
#include <algorithm>
#include <backprop/io.hpp>
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

}  // namespace

void save_safetensors(const std::string& path, const NamedTensors& given) {
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

  // The header is written as text, one entry after another, so its cost is linear in the number of tensors
  // (a JSON object that keeps insertion order searches its keys on every insert). The bytes are those of
  // nlohmann::ordered_json's compact dump: metadata first, so a reader sees it before the tensors.
  std::string head(detail::kLengthBytes, '\0');
  std::vector<std::string_view> parts(1);  // parts[0] becomes the length and the header
  std::set<std::string_view> seen;
  try {
    std::string entries;  // ,"name":{...} for each tensor
    std::uint64_t offset = 0;
    for (std::size_t i = 0; i < data.tensors.size(); ++i) {
      const auto& [name, t] = data.tensors[i];
      BP_CHECK(name != detail::kMetadataKey, ValueError, who, ": tensor ", i, " is named '",
               detail::kMetadataKey, "', which the format reserves for metadata");
      BP_CHECK(seen.insert(name).second, ValueError, who, ": two tensors are named '", name,
               "'; names must be unique");
      BP_CHECK(t.defined(), ValueError, who, ": tensor '", name, "' is undefined (default-constructed)");
      const std::int64_t bad = detail::first_non_finite(t);
      BP_CHECK(bad < 0, ValueError, who, ": tensor '", name, "' ", t.shape(), " element ", bad, " (index ",
               detail::index_text(t.shape(), bad), ") is ", t.flat(bad), "; only finite values can be saved");
      const std::uint64_t nbytes = t.nbytes();
      entries +=
          "," + quoted(name) + ":{\"dtype\":\"" + detail::safetensors_dtype(t.dtype()) + "\",\"shape\":[";
      for (std::size_t d = 0; d < t.shape().size(); ++d)
        entries += (d ? "," : "") + std::to_string(t.shape()[d]);
      entries +=
          "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + nbytes) + "]}";
      parts.emplace_back(static_cast<const char*>(t.raw_data()), nbytes);
      offset += nbytes;
    }
    head += "{\"";
    head += detail::kMetadataKey;
    head += "\":{";
    for (const auto& [key, value] : data.metadata) head += quoted(key) + ":" + quoted(value) + ",";
    head += quoted(kChecksumKey) + ":" +
            quoted(detail::format_checksum(detail::content_checksum(data.tensors, data.metadata))) + "}";
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
