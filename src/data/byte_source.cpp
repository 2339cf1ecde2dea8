#include "data/byte_source.hpp"

#include <zlib.h>

#include <algorithm>
#include <backprop/error.hpp>
#include <backprop/io.hpp>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <string_view>

namespace backprop::data::detail {

struct ByteSource::Inflater {
  z_stream z{};
  bool initialised = false;
};

namespace {
constexpr std::size_t kChunk = 64 * 1024;
// Deflate's best case is about 1032:1 (a 258-byte match coded in 2 bits per symbol); a few KiB of slack
// covers gzip headers and tiny files.
constexpr std::uint64_t kMaxDeflateRatio = 1032;
constexpr std::uint64_t kDeflateSlack = 4096;
}  // namespace

ByteSource::ByteSource(const std::string& path) : path_(path), z_(std::make_unique<Inflater>()) {
  BP_CHECK(io::input_exists(path, ""), FileError, path, ": cannot open: no such file");
  std::error_code ec;
  file_size_ = std::filesystem::file_size(path, ec);
  BP_CHECK(!ec, FileError, path, ": cannot read the file size: ", ec.message());
  file_ = std::fopen(path.c_str(), "rb");
  BP_CHECK(file_ != nullptr, FileError, path, ": cannot open for reading: ", std::strerror(errno));
  unsigned char magic[2] = {0, 0};
  const std::size_t got = std::fread(magic, 1, 2, file_);
  gzip_ = got == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
  std::rewind(file_);
  if (gzip_) {
    // windowBits 15 + 16: a gzip wrapper (not zlib, not raw deflate), full 32 KiB window.
    const int rc = inflateInit2(&z_->z, 15 + 16);
    if (rc != Z_OK) {
      std::fclose(file_);
      file_ = nullptr;
      BP_CHECK(false, FileError, path, ": cannot start gzip decompression (zlib error ", rc, ")");
    }
    z_->initialised = true;
    in_.resize(kChunk);
  }
}

ByteSource::~ByteSource() {
  if (z_ && z_->initialised) inflateEnd(&z_->z);
  if (file_) std::fclose(file_);
}

std::uint64_t ByteSource::max_logical_size() const {
  return gzip_ ? file_size_ * kMaxDeflateRatio + kDeflateSlack : file_size_;
}

std::string ByteSource::where(std::uint64_t offset) const {
  std::string s = "byte offset " + std::to_string(offset);
  if (gzip_) s += " of the decompressed data";
  return s;
}

std::size_t ByteSource::read(void* dst, std::size_t n) {
  std::size_t got = 0;
  if (!gzip_) {
    got = std::fread(dst, 1, n, file_);
    BP_CHECK(got == n || !std::ferror(file_), FileError, path_, ": read error at ", where(offset_ + got),
             ": ", std::strerror(errno));
  } else {
    got = read_gzip(static_cast<unsigned char*>(dst), n);
  }
  offset_ += got;
  return got;
}

bool ByteSource::refill() {
  if (input_eof_) return false;
  const std::size_t got = std::fread(in_.data(), 1, in_.size(), file_);
  BP_CHECK(got == in_.size() || !std::ferror(file_), FileError, path_,
           ": read error at compressed byte offset ", compressed_consumed_, ": ", std::strerror(errno));
  if (got == 0) {
    input_eof_ = true;
    return false;
  }
  z_->z.next_in = in_.data();
  z_->z.avail_in = static_cast<uInt>(got);
  return true;
}

std::size_t ByteSource::read_gzip(unsigned char* dst, std::size_t n) {
  z_stream& z = z_->z;
  std::size_t produced = 0;
  while (produced < n) {
    if (stream_ended_) {
      // A gzip file may hold several members back to back (`cat a.gz b.gz`); anything else after the end of a
      // member is garbage.
      if (z.avail_in == 0 && !refill()) break;
      const std::uint64_t at = compressed_consumed_;
      if (z.avail_in < 2 && !input_eof_) {
        // Need two bytes to see the next magic; move the leftover to the front and read more.
        std::memmove(in_.data(), z.next_in, z.avail_in);
        const std::size_t keep = z.avail_in;
        const std::size_t got = std::fread(in_.data() + keep, 1, in_.size() - keep, file_);
        if (got == 0) input_eof_ = true;
        z.next_in = in_.data();
        z.avail_in = static_cast<uInt>(keep + got);
      }
      const bool member = z.avail_in >= 2 && z.next_in[0] == 0x1f && z.next_in[1] == 0x8b;
      BP_CHECK(member, FileError, path_,
               ": unexpected bytes after the end of the gzip stream at compressed byte offset ", at,
               " (expected the end of the file or another gzip member)");
      inflateReset(&z);
      stream_ended_ = false;
    }
    if (z.avail_in == 0 && !refill()) break;  // input ended inside a member: expect_end reports it
    const std::size_t want = std::min<std::size_t>(n - produced, 1u << 30);
    z.next_out = dst + produced;
    z.avail_out = static_cast<uInt>(want);
    const uInt before_in = z.avail_in;
    const int rc = inflate(&z, Z_NO_FLUSH);
    const std::size_t made = want - z.avail_out;
    produced += made;
    compressed_consumed_ += before_in - z.avail_in;
    if (rc == Z_STREAM_END) {
      stream_ended_ = true;
      continue;
    }
    BP_CHECK(rc == Z_OK || rc == Z_BUF_ERROR, FileError, path_,
             ": corrupt gzip data at compressed byte offset ", compressed_consumed_, " (",
             where(offset_ + produced), "): ", z.msg ? z.msg : "zlib error", " (rc ", rc, ")");
  }
  return produced;
}

void ByteSource::expect_end(std::uint64_t expected_bytes) {
  unsigned char extra[256];
  const std::uint64_t at = offset_;
  const std::size_t got = read(extra, sizeof extra);
  BP_CHECK(
      got == 0, FileError, path_, ": unexpected data at ", where(at), ": the header declares ",
      expected_bytes, " bytes in all, but the ", gzip_ ? "decompressed stream" : "file", " continues",
      gzip_ ? " (decompression stopped there)" : (" for " + std::to_string(file_size_ - at) + " more bytes"));
  BP_CHECK(!gzip_ || stream_ended_, FileError, path_,
           ": the gzip stream ends without its trailer at compressed byte ", "offset ", compressed_consumed_,
           " (", where(at), "): the file is truncated");
}

std::string read_text_file(const std::string& path) {
  ByteSource src(path);
  BP_CHECK(!src.gzip(), FileError, path,
           ": is gzip-compressed; expected a plain text file (decompress it first)");
  std::string text(src.file_size(), '\0');
  const std::size_t got = src.read(text.data(), text.size());
  text.resize(got);
  return text;
}

std::string describe_wrong_file(const unsigned char* bytes, std::size_t n) {
  const std::string_view s(reinterpret_cast<const char*>(bytes), n);
  if (s.starts_with("version https://git-lfs"))
    return "a Git LFS pointer, not the data it points to (fetch the real file, e.g. with `git lfs pull`)";
  std::string lower;
  for (char c : s) lower += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  std::size_t start = 0;
  if (lower.starts_with("\xef\xbb\xbf")) start = 3;
  while (start < lower.size() && std::isspace(static_cast<unsigned char>(lower[start]))) ++start;
  const std::string_view rest = std::string_view(lower).substr(start);
  if (rest.starts_with("<!doctype html") || rest.starts_with("<html") || rest.starts_with("<head") ||
      (rest.starts_with("<") && lower.find("html") != std::string::npos))
    return "an HTML page, not a data file (a download that saved an error or login page?)";
  if (s.starts_with("PK\x03\x04")) return "a zip archive (unpack it first)";
  if (s.starts_with("BZh")) return "a bzip2 file (decompress it first)";
  if (s.starts_with("\xfd"
                    "7zXZ"))
    return "an xz file (decompress it first)";
  if (n >= 262 && s.substr(257, 5) == "ustar") return "a tar archive (unpack it first)";
  return {};
}

}  // namespace backprop::data::detail
