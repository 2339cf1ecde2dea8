// Low-level file access shared by the readers and writers of src/io: a checked reader of byte ranges and a
// crash-safe writer of several buffers as one file. Internal; the public API is backprop/io.hpp.
#pragma once

#include <backprop/io.hpp>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

namespace backprop::io::detail {

/// A regular file opened for reading. Every read states its offset and length and fails with a FileError
/// naming the file, the offset and how many bytes were expected, so a file that shrinks while it is read is
/// an error, not a short buffer.
class InputFile {
 public:
  /// Opens `path`; `who` starts error messages ("load_safetensors"). Throws FileError if it cannot be opened
  /// or is not a regular file.
  InputFile(const std::string& path, const char* who);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  /// Size in bytes when it was opened.
  std::uint64_t size() const { return size_; }
  const std::string& path() const { return path_; }
  /// Reads exactly `n` bytes at `offset` into `dst`.
  void read_at(std::uint64_t offset, void* dst, std::size_t n) const;

 private:
  std::string path_;
  const char* who_;
  int fd_ = -1;
  std::uint64_t size_ = 0;
};

/// Writes the concatenation of `parts` to `path` the way write_file_atomic does (symbolic links followed,
/// streams written in place, regular files replaced by temporary file, fsync, rename, fsync of the directory;
/// the kind check unless `options.force`). `who` starts error messages.
void write_parts_atomic(const std::string& path, std::span<const std::string_view> parts, const char* who,
                        const WriteOptions& options = {});

/// CRC-32 (zlib's polynomial) of `n` bytes, continuing from `crc` (start with 0).
std::uint32_t crc32(std::uint32_t crc, const void* data, std::size_t n);

}  // namespace backprop::io::detail
