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
//   bp::io::save_safetensors("half.safetensors", model, {.float_dtype = "F16"});  // loads back as f32
//   bp::io::write_file_atomic("metrics.json", R"({"loss": 0.31})");
//   bp::io::write_file_atomic("-", "to standard output\n");          // "-", a FIFO or a device: a stream
//   if (bp::io::input_exists("model.safetensors", "info")) { /* a regular file: safe to open */ }
#pragma once

#include <backprop/tensor.hpp>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
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

/// How save_safetensors stores each tensor: the element type in the file. Tensors hold f32, f64, i64 or bool;
/// a narrower type is chosen here, where a PyTorch user would call .half() or .int() before saving:
///   bp::io::save_safetensors("model.safetensors", model, {.float_dtype = "F16"});
///   bp::io::save_safetensors("ids.safetensors", ids, {.dtypes = {{"labels", "U8"}}});
/// F16 and BF16 round to nearest even (f64 through f32), as torch's .half() and .bfloat16() do; a value they
/// cannot hold overflows to infinity, which saving refuses as for any infinity. F64 stored as F32 rounds the
/// same way. I32 and U8 take i64 tensors whose every value fits, else a ValueError names the tensor, the
/// element and the value. Loading gives back f32 for F16/BF16 and i64 for I32/U8, as docs/files.md says.
struct SafetensorsOptions {
  /// The type of every floating (f32 or f64) tensor: "F32", "F64", "F16" or "BF16"; empty keeps each
  /// tensor's own (F32 for f32, F64 for f64). Integer and bool tensors are not affected.
  std::string float_dtype;
  /// The type of tensors by name, over float_dtype: F32, F64, F16 or BF16 for a floating tensor; I64, I32 or
  /// U8 for an i64 tensor; BOOL for a bool tensor. Every name must be one of the tensors saved.
  std::map<std::string, std::string> dtypes;
};

/// Writes `data` to `path` in the safetensors format, crash-safely, through write_file_atomic's rules
/// (symbolic links followed, FIFOs and devices written as streams, an existing file of another kind refused).
///
/// Layout: 8-byte little-endian header length N (a multiple of 8), then N bytes of UTF-8 JSON
///   {"__metadata__": {...}, "<name>": {"dtype": "F32", "shape": [...], "data_offsets": [begin, end]},
///   ...}
/// padded with spaces, then the elements of every tensor, packed in the order given, with no gaps. Offsets
/// count from the start of the data section. Each tensor's "dtype" is its own (F32, F64, I64, BOOL) unless
/// `options` chooses another (F16, BF16, I32, U8, ...). The metadata gains kChecksumKey.
///
/// Throws ValueError, before touching the file system, on: a duplicate or reserved ("__metadata__") tensor
/// name, a name or metadata text that is not valid UTF-8, an undefined tensor, a NaN or infinite element
/// (naming the tensor and the element) or one that overflows its stored type, an integer outside the range
/// of I32 or U8, a stored type that does not fit the tensor's dtype or is unknown, a name in options.dtypes
/// that is not saved, metadata that already holds kChecksumKey. Throws FileError naming the file and the
/// step that failed (create, write, fsync, rename) when writing fails; `path` is then left as it was.
void save_safetensors(const std::string& path, const NamedTensors& data,
                      const SafetensorsOptions& options = {});

/// Reads a safetensors file written by backprop or by any other writer (PyTorch's state dicts included).
///
/// Everything is validated before any tensor is allocated or any element is read: the file is at least 8
/// bytes; the header length is at most kMaxHeaderBytes and lies within the file; the header is one valid
/// UTF-8 JSON object, nested at most 8 deep, with no duplicate key at any level; "__metadata__", if present,
/// maps strings to strings; each tensor entry has exactly "dtype" (F32, F64, F16, BF16, I64, I32, U8 or
/// BOOL), "shape" (at most 8 non-negative integers whose product, overflow-checked, fits in 63 bits) and
/// "data_offsets" ([begin, end], begin <= end, end - begin = elements x element size); the byte ranges,
/// sorted, start at 0 and follow each other without gap or overlap; and the data section ends exactly at the
/// end of the file. Then the data is read, the checksum (kChecksumKey) is verified when present, and every
/// element must be finite.
///
/// Tensors come back in file order (by data offset), as leaves that do not require grad. The checksum entry
/// is removed from the returned metadata. Throws FileError naming the file, the byte offset or tensor, and
/// what was expected.
NamedTensors load_safetensors(const std::string& path);

/// What a file holds, as far as a writer must know before it replaces it: judged by file_kind from the first
/// bytes alone.
enum class FileKind {
  empty,        // no bytes
  safetensors,  // an 8-byte little-endian header length, then '{'
  dot,          // Graphviz DOT text: "digraph", "graph" or "strict" first
  html,         // "<!DOCTYPE html" or "<html" first
  text,         // any other text (CSV, TSV, JSON, JSONL, TOML, SVG, ...): no NUL or other control bytes
  binary,       // anything else (IDX, gzip, images, executables)
};

/// The kind of a file that starts with `head` (its first bytes; 64 are enough). Leading whitespace and a
/// UTF-8 byte-order mark are skipped before the text kinds are recognised.
FileKind file_kind(std::string_view head);
/// The kind in words, for messages: "a safetensors model", "Graphviz DOT text", "an HTML page", "text", ...
const char* describe(FileKind kind);

/// What every writer does before it writes `path`, checked before anything is written. Follows symbolic
/// links to their final target. Throws FileError naming the path and its kind when the target is neither a
/// regular file, nor a FIFO or character device, nor missing (a directory, a socket, a block device, a link
/// loop). Returns the kind an existing regular file holds when content of `kind` may not replace it (an
/// empty file may be replaced by anything; otherwise the kinds must be the same, and empty content counts as
/// text); std::nullopt when the write may go ahead. "-" (standard output), FIFOs and character devices are
/// streams: nothing there is replaced, so they never conflict.
std::optional<FileKind> replaced_kind(const std::string& path, FileKind kind);

/// True when `path` is written as a stream rather than replaced (see write_file_atomic): "-", a FIFO or a
/// character device, through symbolic links. False for anything else, and for a path that cannot be
/// inspected.
bool is_stream(const std::string& path);

/// Options of write_file_atomic.
struct WriteOptions {
  /// Replace an existing file even when it holds another kind of content than what is written.
  bool force = false;
};

/// Writes `bytes` to `path`, the one way backprop writes every file it produces:
/// - a regular file or a new name is replaced crash-safely: PATH.tmp-<pid>-<n> is written in the same
///   directory, fsynced, renamed over PATH, and the directory fsynced. A crash at any moment leaves either
///   the old file or the new one. An existing file's permission bits are kept.
/// - a symbolic link is followed: its final target is replaced that way (the temporary file sits beside the
///   target) and the link stays a link.
/// - "-" (standard output), a FIFO or a character device (/dev/null, a terminal) is written as a stream, in
///   place: nothing is renamed over it. Opening a FIFO waits for its reader.
/// - anything else (a directory, a socket, a block device) is refused with a FileError naming its kind.
/// - an existing regular file whose kind (file_kind) differs from the kind of `bytes` is refused with a
///   FileError naming both kinds, unless options.force (see replaced_kind for the rule).
/// Throws FileError naming the path and the failed step; the temporary file is removed and the previous file
/// is untouched. (If only the last step, the fsync of the directory, fails, the new file is already in place
/// and the message says so.)
void write_file_atomic(const std::string& path, std::string_view bytes, const WriteOptions& options = {});

/// True when `path` (through symbolic links) is a regular file, false when nothing is there. Throws
/// FileError "WHO: 'PATH' is a FIFO, not a regular file" (or a directory, a socket, a device, ...) for
/// anything else. Every reader calls it before it opens a file: it only looks (stat), so a FIFO, whose
/// opening would block until a writer appears, is reported instead of waited for. `who` starts the message
/// (a flag or a function name; may be empty).
bool input_exists(const std::string& path, const std::string& who);

/// The whole content of `path`, which must be a regular file (input_exists). Throws FileError if it is
/// missing, not a regular file, cannot be read, or holds more than `max_bytes` bytes (the message gives both
/// numbers).
std::string read_file(const std::string& path, std::size_t max_bytes = kDefaultMaxReadBytes);

}  // namespace backprop::io
