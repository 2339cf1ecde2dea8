// Special files for the tests of the writer and the readers: a character device, a FIFO and the FIFO's
// reading end opened without waiting.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

namespace testutil {

/// The kind of file at `path` (S_IFREG, S_IFLNK, S_IFIFO, ...): of the link itself, or of its target with
/// `follow`.
inline mode_t kind_of(const std::string& path, bool follow = false) {
  struct stat st {};
  EXPECT_EQ(follow ? ::stat(path.c_str(), &st) : ::lstat(path.c_str(), &st), 0) << path;
  return st.st_mode & S_IFMT;
}

/// A character device to write to: /dev/null itself only where a writer that wrongly replaced it would be
/// stopped by the permissions of /dev; as root, a node for the same device made in `dir`, so that even a
/// broken writer cannot replace the system's /dev/null. Empty if neither can be had.
inline std::string null_device(const std::string& dir) {
  if (::geteuid() != 0) return "/dev/null";
  const std::string node = dir + "/null";
  if (::mknod(node.c_str(), S_IFCHR | 0666, ::makedev(1, 3)) != 0) return "";
  const int fd = ::open(node.c_str(), O_WRONLY);  // a file system mounted nodev refuses to open it
  if (fd < 0) return "";
  ::close(fd);
  return node;
}

inline void make_fifo(const std::string& path) {
  ASSERT_EQ(::mkfifo(path.c_str(), 0600), 0) << std::strerror(errno);
}

/// Opens a FIFO's reading end without waiting for a writer, so a writer that opens it next does not wait
/// either; read_all then takes what was written. A writer that never opens the FIFO leaves it empty, and
/// nothing waits.
struct FifoReader {
  int fd = -1;
  explicit FifoReader(const std::string& path) : fd(::open(path.c_str(), O_RDONLY | O_NONBLOCK)) {}
  ~FifoReader() {
    if (fd >= 0) ::close(fd);
  }
  FifoReader(const FifoReader&) = delete;
  FifoReader& operator=(const FifoReader&) = delete;
  std::string read_all() const {
    std::string out;
    char buffer[4096];
    for (;;) {
      const ssize_t n = ::read(fd, buffer, sizeof buffer);
      if (n <= 0) break;  // 0: the writer closed; -1 (EAGAIN): nothing was ever written
      out.append(buffer, static_cast<std::size_t>(n));
    }
    return out;
  }
};

}  // namespace testutil
