// Crash-safe writes and checked reads of whole files.
//
// The write protocol: the new content goes to a temporary file in the target's own directory (rename is only
// atomic within one file system), is fsynced so its bytes are on disk before its name is, then is renamed
// over the target, and finally the directory is fsynced so the rename itself survives a power cut. Until the
// rename the old file is untouched; after it the new file is complete. Any failure removes the temporary
// file.
#include "io/file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <atomic>
#include <backprop/error.hpp>
#include <backprop/io.hpp>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <limits>

namespace backprop::io {
namespace detail {
namespace {

std::string errno_text(int err) {
  return std::strerror(err);
}

// Closes a descriptor on scope exit unless released.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  int release() {
    const int f = fd;
    fd = -1;
    return f;
  }
};

std::string parent_directory(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  return parent.empty() ? std::string(".") : parent.string();
}

// A name no other writer in this process or any other process uses at the same time.
std::string temporary_name(const std::string& path) {
  static std::atomic<std::uint64_t> counter{0};
  return path + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1));
}

void write_all(int fd, std::string_view bytes, const std::string& tmp, const char* who) {
  const char* p = bytes.data();
  std::size_t left = bytes.size();
  while (left > 0) {
    const std::size_t chunk = std::min<std::size_t>(left, std::size_t{1} << 30);
    const ssize_t n = ::write(fd, p, chunk);
    if (n < 0 && errno == EINTR) continue;
    BP_CHECK(n > 0, FileError, who, ": cannot write to temporary file '", tmp,
             "': ", n < 0 ? errno_text(errno) : std::string("no progress"));
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

}  // namespace

InputFile::InputFile(const std::string& path, const char* who) : path_(path), who_(who) {
  BP_CHECK(!path.empty(), FileError, who, ": empty file path");
  do {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (fd_ < 0 && errno == EINTR);
  BP_CHECK(fd_ >= 0, FileError, who, ": cannot open '", path, "': ", errno_text(errno));
  struct stat st {};
  const bool stat_ok = ::fstat(fd_, &st) == 0;
  const int err = errno;
  if (!stat_ok || !S_ISREG(st.st_mode)) {
    ::close(fd_);  // the destructor does not run for a constructor that throws
    fd_ = -1;
    BP_CHECK(stat_ok, FileError, who, ": cannot stat '", path, "': ", errno_text(err));
    BP_CHECK(false, FileError, who, ": '", path, "' is not a regular file");
  }
  size_ = static_cast<std::uint64_t>(st.st_size);
}

InputFile::~InputFile() {
  if (fd_ >= 0) ::close(fd_);
}

void InputFile::read_at(std::uint64_t offset, void* dst, std::size_t n) const {
  auto* out = static_cast<char*>(dst);
  std::size_t done = 0;
  while (done < n) {
    const std::size_t chunk = std::min<std::size_t>(n - done, std::size_t{1} << 30);
    const ssize_t got = ::pread(fd_, out + done, chunk, static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    BP_CHECK(got >= 0, FileError, who_, ": '", path_, "' byte ", offset + done,
             ": read failed: ", errno_text(errno));
    BP_CHECK(got > 0, FileError, who_, ": '", path_, "' byte ", offset + done,
             ": unexpected end of file (expected ", n, " bytes from byte ", offset,
             "; the file shrank while it was read)");
    done += static_cast<std::size_t>(got);
  }
}

void write_parts_atomic(const std::string& path, std::span<const std::string_view> parts, const char* who) {
  BP_CHECK(!path.empty(), FileError, who, ": empty file path");
  const std::string dir = parent_directory(path);
  const std::string tmp = temporary_name(path);

  Fd file;
  do {
    file.fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0666);
  } while (file.fd < 0 && errno == EINTR);
  BP_CHECK(file.fd >= 0, FileError, who, ": cannot create temporary file '", tmp, "' in directory '", dir,
           "': ", errno_text(errno), "; '", path, "' is unchanged");

  try {
    // Keep the permission bits of the file being replaced, so a save does not widen or narrow access.
    struct stat old {};
    if (::stat(path.c_str(), &old) == 0 && S_ISREG(old.st_mode)) ::fchmod(file.fd, old.st_mode & 07777);
    for (std::string_view part : parts) write_all(file.fd, part, tmp, who);
    BP_CHECK(::fsync(file.fd) == 0, FileError, who, ": cannot fsync temporary file '", tmp,
             "': ", errno_text(errno));
    // close() can report a deferred write error (NFS, quota), so it is checked like a write.
    const int closed = ::close(file.release());
    BP_CHECK(closed == 0, FileError, who, ": cannot close temporary file '", tmp, "': ", errno_text(errno));
    BP_CHECK(::rename(tmp.c_str(), path.c_str()) == 0, FileError, who, ": cannot rename '", tmp, "' to '",
             path, "': ", errno_text(errno));
  } catch (const FileError& e) {
    ::unlink(tmp.c_str());
    throw FileError(e.what() + ("; '" + path + "' is unchanged"));
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }

  // The new file is in place; make the rename durable. Some file systems cannot fsync a directory (EINVAL):
  // there is nothing more to do on those.
  Fd directory;
  directory.fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  BP_CHECK(directory.fd >= 0, FileError, who, ": wrote '", path, "' but cannot open its directory '", dir,
           "' to make the rename durable: ", errno_text(errno));
  const int synced = ::fsync(directory.fd);
  BP_CHECK(synced == 0 || errno == EINVAL || errno == ENOTSUP, FileError, who, ": wrote '", path,
           "' but cannot fsync its directory '", dir, "': ", errno_text(errno));
}

std::uint32_t crc32(std::uint32_t crc, const void* data, std::size_t n) {
  return static_cast<std::uint32_t>(::crc32_z(crc, static_cast<const Bytef*>(data), n));
}

}  // namespace detail

void write_file_atomic(const std::string& path, std::string_view bytes) {
  const std::string_view parts[] = {bytes};
  detail::write_parts_atomic(path, parts, "write_file_atomic");
}

std::string read_file(const std::string& path, std::size_t max_bytes) {
  BP_CHECK(!path.empty(), FileError, "read_file: empty file path");
  detail::Fd file;
  do {
    file.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (file.fd < 0 && errno == EINTR);
  BP_CHECK(file.fd >= 0, FileError, "read_file: cannot open '", path, "': ", detail::errno_text(errno));
  struct stat st {};
  BP_CHECK(::fstat(file.fd, &st) == 0, FileError, "read_file: cannot stat '", path,
           "': ", detail::errno_text(errno));
  BP_CHECK(!S_ISDIR(st.st_mode), FileError, "read_file: '", path, "' is a directory, expected a file");
  if (S_ISREG(st.st_mode))
    BP_CHECK(static_cast<std::uint64_t>(st.st_size) <= max_bytes, FileError, "read_file: '", path, "' is ",
             st.st_size, " bytes, more than the limit of ", max_bytes, " bytes");

  // Read to the end rather than trusting st_size: pipes and /proc files report 0.
  std::string out;
  if (S_ISREG(st.st_mode)) out.reserve(static_cast<std::size_t>(st.st_size));
  char buffer[1 << 16];
  for (;;) {
    const ssize_t got = ::read(file.fd, buffer, sizeof buffer);
    if (got < 0 && errno == EINTR) continue;
    BP_CHECK(got >= 0, FileError, "read_file: '", path, "' byte ", out.size(),
             ": read failed: ", detail::errno_text(errno));
    if (got == 0) break;
    BP_CHECK(static_cast<std::size_t>(got) <= max_bytes - out.size(), FileError, "read_file: '", path,
             "' holds more than the limit of ", max_bytes, " bytes");
    out.append(buffer, static_cast<std::size_t>(got));
  }
  return out;
}

}  // namespace backprop::io
