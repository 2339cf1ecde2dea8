// backprop/io.hpp — tensors in files: the safetensors format, and crash-safe writes of any file.
//
// A model is saved as a safetensors file: an 8-byte little-endian header length, a JSON header naming every
// tensor (dtype, shape, byte range) plus string metadata, then the raw little-endian elements. The format is
// the one the wider ecosystem reads, so a backprop model opens in other tools and theirs open here.
// Every save is crash-safe (temporary file, fsync, rename, fsync of the directory): a power cut leaves either
// the previous file or the new one, never a mixture. Every load checks every length and offset before it
// allocates or reads, and verifies the checksum backprop writes, so a corrupt file is an exception that names
// the file and the byte, never a crash. docs/files.md lists every rule.
//
// Example:
//   bp::io::NamedTensors model{.tensors = {{"fc1.weight", w}, {"fc1.bias", b}},
//                              .metadata = {{"epoch", "3"}}};
//   bp::io::save_safetensors("model.safetensors", model);
//   bp::io::NamedTensors back = bp::io::load_safetensors("model.safetensors");
//   bp::Tensor w2 = back.at("fc1.weight");                 // same shape, dtype and bits as w
//   bp::io::write_file_atomic("metrics.json", R"({"loss": 0.31})");
#pragma once

#include <backprop/tensor.hpp>
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace backprop::io {

/// Tensors with names, in order, plus free-form string metadata (a safetensors file's "__metadata__").
struct NamedTensors {
  std::vector<std::pair<std::string, Tensor>> tensors;
  std::map<std::string, std::string> metadata;

  /// True if a tensor has this name.
  bool contains(const std::string& name) const;
  /// The tensor with this name. Throws IndexError naming the missing name and the names present.
  const Tensor& at(const std::string& name) const;
};

/// The largest JSON header load_safetensors accepts (the limit other safetensors readers use too).
inline constexpr std::uint64_t kMaxHeaderBytes = 100'000'000;
/// The default size limit of read_file: 1 GiB.
inline constexpr std::size_t kDefaultMaxReadBytes = std::size_t{1} << 30;
/// The metadata key under which save_safetensors records a checksum, as "crc32:" + 8 lowercase hex digits:
/// the CRC-32 (zlib's, the one of gzip and PNG) of every tensor's name, dtype, shape and elements and of the
/// other metadata, in a canonical order (docs/files.md gives the exact byte stream). A flipped bit anywhere
/// in what the file means is detected, while a rewrite by another tool that keeps the metadata still
/// verifies.
inline constexpr const char* kChecksumKey = "backprop.checksum";

/// Writes `data` to `path` in the safetensors format, crash-safely (see write_file_atomic).
///
/// Layout: 8-byte little-endian header length N (a multiple of 8), then N bytes of UTF-8 JSON
///   {"__metadata__": {...}, "<name>": {"dtype": "F32"|"F64", "shape": [...], "data_offsets": [begin, end]},
///   ...}
/// padded with spaces, then the elements of every tensor, packed in the order given, with no gaps. Offsets
/// count from the start of the data section. The metadata gains kChecksumKey.
///
/// Throws ValueError, before touching the file system, on: a duplicate or reserved ("__metadata__") tensor
/// name, a name or metadata text that is not valid UTF-8, an undefined tensor, a NaN or infinite element
/// (naming the tensor and the element), metadata that already holds kChecksumKey. Throws FileError naming the
/// file and the step that failed (create, write, fsync, rename) when writing fails; `path` is then left as it
/// was.
void save_safetensors(const std::string& path, const NamedTensors& data);

/// Reads a safetensors file written by backprop or by any other writer of F32/F64 tensors.
///
/// Everything is validated before any tensor is allocated or any element is read: the file is at least 8
/// bytes; the header length is at most kMaxHeaderBytes and lies within the file; the header is one valid
/// UTF-8 JSON object, nested at most 8 deep, with no duplicate key at any level; "__metadata__", if present,
/// maps strings to strings; each tensor entry has exactly "dtype" (F32 or F64), "shape" (at most 8
/// non-negative integers whose product, overflow-checked, fits in 63 bits) and "data_offsets" ([begin, end],
/// begin <= end, end - begin = elements x element size); the byte ranges, sorted, start at 0 and follow each
/// other without gap or overlap; and the data section ends exactly at the end of the file. Then the data is
/// read, the checksum (kChecksumKey) is verified when present, and every element must be finite.
///
/// Tensors come back in file order (by data offset), as leaves that do not require grad. The checksum entry
/// is removed from the returned metadata. Throws FileError naming the file, the byte offset or tensor, and
/// what was expected.
NamedTensors load_safetensors(const std::string& path);

/// Replaces `path` with `bytes`, crash-safely: writes PATH.tmp-<pid>-<n> in the same directory, fsyncs it,
/// renames it over PATH, and fsyncs the directory. A crash at any moment leaves either the old file or the
/// new one. An existing file's permission bits are kept. Throws FileError naming the path and the failed
/// step; the temporary file is removed and the previous file is untouched. (If only the last step, the fsync
/// of the directory, fails, the new file is already in place and the message says so.)
void write_file_atomic(const std::string& path, std::string_view bytes);

/// The whole content of `path`. Throws FileError if it cannot be opened or read, or if it holds more than
/// `max_bytes` bytes (the message gives both numbers).
std::string read_file(const std::string& path, std::size_t max_bytes = kDefaultMaxReadBytes);

}  // namespace backprop::io
