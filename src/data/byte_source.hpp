// Internal: a file read as a stream of bytes, transparently gunzipped when it starts with the gzip magic.
//
// Offsets are positions in the logical stream (the decompressed data for gzip); where() turns one into the
// words an error message needs. Nothing is buffered beyond a 64 KiB input chunk, so reading the first records
// of a large file reads (and decompresses) only those.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

namespace backprop::data::detail {

class ByteSource {
 public:
  /// Opens `path`; throws FileError if it cannot be opened or is not a regular file.
  explicit ByteSource(const std::string& path);
  ~ByteSource();
  ByteSource(const ByteSource&) = delete;
  ByteSource& operator=(const ByteSource&) = delete;

  /// Reads up to n bytes into dst and returns how many were read: fewer than n only at the end of the data.
  /// Throws FileError on corrupt gzip data.
  std::size_t read(void* dst, std::size_t n);
  /// Bytes of logical data consumed so far.
  std::uint64_t offset() const { return offset_; }
  bool gzip() const { return gzip_; }
  /// Size of the file on disk (compressed size for gzip).
  std::uint64_t file_size() const { return file_size_; }
  const std::string& path() const { return path_; }
  /// The most logical bytes this file could hold: its size, or for gzip the deflate limit (about 1032:1).
  std::uint64_t max_logical_size() const;
  /// "byte offset 12" or "byte offset 12 of the decompressed data".
  std::string where(std::uint64_t offset) const;
  /// After the expected data: throws FileError if any byte follows (naming `expected_bytes`, what the format
  /// declared) or if a gzip stream ends without its trailer (a truncated download).
  void expect_end(std::uint64_t expected_bytes);

 private:
  std::size_t read_gzip(unsigned char* dst, std::size_t n);
  bool refill();

  std::string path_;
  std::FILE* file_ = nullptr;
  std::uint64_t file_size_ = 0;
  std::uint64_t offset_ = 0;
  bool gzip_ = false;
  // gzip state (zlib's z_stream, kept opaque here so this header does not include zlib.h)
  struct Inflater;
  std::unique_ptr<Inflater> z_;
  std::vector<unsigned char> in_;
  std::uint64_t compressed_consumed_ = 0;
  bool input_eof_ = false;
  bool stream_ended_ = false;
};

/// Reads a whole small-or-large file into memory (raw bytes, no decompression). Throws FileError.
std::string read_text_file(const std::string& path);

/// Names a file that is plainly not what a reader expected, from its first bytes: "an HTML page (...)",
/// "a Git LFS pointer (...)", "a zip archive", ...; empty when nothing is recognised.
std::string describe_wrong_file(const unsigned char* bytes, std::size_t n);

}  // namespace backprop::data::detail
