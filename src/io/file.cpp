// Crash-safe writes and checked reads of whole files.
//
// Every write first resolves where it goes (resolve_output): a symbolic link is followed to its final target,
// "-", a FIFO or a character device is a stream written in place, a regular file may only be replaced by
// content of its own kind, and anything else is refused. Every read first checks that its path is a regular
// file (input_exists) without opening it, since opening a FIFO blocks until a writer appears.
//
// The write protocol for a regular file: the new content goes to a temporary file in the target's own
// directory (rename is only atomic within one file system), is fsynced so its bytes are on disk before its
// name is, then is renamed over the target, and finally the directory is fsynced so the rename itself
// survives a power cut. Until the rename the old file is untouched; after it the new file is complete. Any
// failure removes the temporary file.
#include "io/file.hpp"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <atomic>
#include <backprop/error.hpp>
#include <backprop/io.hpp>
#include <cctype>
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

void write_all(int fd, std::string_view bytes, const std::string& name, const char* who) {
  const char* p = bytes.data();
  std::size_t left = bytes.size();
  while (left > 0) {
    const std::size_t chunk = std::min<std::size_t>(left, std::size_t{1} << 30);
    const ssize_t n = ::write(fd, p, chunk);
    if (n < 0 && errno == EINTR) continue;
    BP_CHECK(n > 0, FileError, who, ": cannot write to ", name, ": ",
             n < 0 ? errno_text(errno) : std::string("no progress"));
    p += n;
    left -= static_cast<std::size_t>(n);
  }
}

// "a FIFO", "a directory", ... for a file type that is not a regular file.
const char* node_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO";
  if (S_ISSOCK(mode)) return "a socket";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISLNK(mode)) return "a symbolic link";
  return "not a regular file";
}

// Where a write to a path lands: `path` after following symbolic links, and what is there now.
struct OutputTarget {
  enum class What { missing, regular, stream } what;
  std::string path;  // the final target ("-" for standard output)
};

constexpr int kMaxLinks = 40;  // as the kernel's own limit (ELOOP)

OutputTarget resolve_output(const std::string& path, const char* who) {
  const std::string prefix = *who ? std::string(who) + ": " : std::string();
  BP_CHECK(!path.empty(), FileError, prefix, "empty file path");
  if (path == "-") return {OutputTarget::What::stream, path};
  std::string at = path;
  for (int hops = 0; hops <= kMaxLinks; ++hops) {
    struct stat st {};
    if (::lstat(at.c_str(), &st) != 0) {
      BP_CHECK(errno == ENOENT, FileError, prefix, "cannot inspect '", at, "': ", errno_text(errno));
      return {OutputTarget::What::missing, at};
    }
    if (S_ISREG(st.st_mode)) return {OutputTarget::What::regular, at};
    if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode)) return {OutputTarget::What::stream, at};
    BP_CHECK(S_ISLNK(st.st_mode), FileError, prefix, "'", path, "' is ", node_kind(st.st_mode),
             (at == path ? "" : " (the target of a symbolic link)"),
             "; expected a regular file, a FIFO, a character device or '-'; '", path, "' is unchanged");
    std::string target(static_cast<std::size_t>(st.st_size > 0 ? st.st_size : 4096) + 1, '\0');
    const ssize_t n = ::readlink(at.c_str(), target.data(), target.size());
    BP_CHECK(n >= 0, FileError, prefix, "cannot read the symbolic link '", at, "': ", errno_text(errno));
    target.resize(static_cast<std::size_t>(n));
    const std::filesystem::path next(target);
    at = next.is_absolute() ? target : (std::filesystem::path(at).parent_path() / next).string();
  }
  throw FileError(prefix + "'" + path + "': more than " + std::to_string(kMaxLinks) +
                  " symbolic links to follow (a loop?); nothing was written");
}

// The first bytes of an existing regular file, for file_kind.
std::string head_of(const std::string& path, const char* who) {
  const std::string prefix = *who ? std::string(who) + ": " : std::string();
  Fd file;
  file.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  BP_CHECK(file.fd >= 0, FileError, prefix, "cannot read '", path,
           "' to see what it holds: ", errno_text(errno));
  char buffer[64];
  ssize_t n = 0;
  do {
    n = ::read(file.fd, buffer, sizeof buffer);
  } while (n < 0 && errno == EINTR);
  BP_CHECK(n >= 0, FileError, prefix, "cannot read '", path, "' to see what it holds: ", errno_text(errno));
  return std::string(buffer, static_cast<std::size_t>(n));
}

// The first bytes of the concatenation of `parts`, for file_kind.
std::string head_of(std::span<const std::string_view> parts) {
  std::string head;
  for (std::string_view part : parts) {
    head.append(part.substr(0, std::min<std::size_t>(part.size(), 64 - head.size())));
    if (head.size() == 64) break;
  }
  return head;
}

// The rule of replaced_kind: what an existing file of kind `held` may be replaced with.
bool may_replace(FileKind held, FileKind written) {
  return held == FileKind::empty || held == (written == FileKind::empty ? FileKind::text : written);
}

// While alive, SIGPIPE is blocked for this thread, so writing to a pipe or FIFO whose reader went away is
// an EPIPE error rather than a signal that ends the process; a SIGPIPE such a write left pending is consumed.
class SigpipeBlocked {
 public:
  SigpipeBlocked() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
    sigset_t pending;
    sigpending(&pending);
    was_pending_ = sigismember(&pending, SIGPIPE) == 1;
  }
  ~SigpipeBlocked() {
    sigset_t pending;
    sigpending(&pending);
    if (!was_pending_ && sigismember(&pending, SIGPIPE) == 1) {
      const timespec now{};
      sigtimedwait(&pipe_, nullptr, &now);
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  SigpipeBlocked(const SigpipeBlocked&) = delete;
  SigpipeBlocked& operator=(const SigpipeBlocked&) = delete;

 private:
  sigset_t pipe_{}, old_{};
  bool was_pending_ = false;
};

// Writes to a FIFO, a character device or standard output, in place.
void write_stream(const std::string& path, std::span<const std::string_view> parts, const char* who) {
  const SigpipeBlocked no_sigpipe;
  Fd file;
  if (path == "-") {
    file.fd = ::dup(STDOUT_FILENO);
  } else {
    do {
      file.fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC | O_NOCTTY);
    } while (file.fd < 0 && errno == EINTR);
  }
  BP_CHECK(file.fd >= 0, FileError, who, ": cannot open '", path, "' for writing: ", errno_text(errno));
  for (std::string_view part : parts) write_all(file.fd, part, "'" + path + "'", who);
  const int closed = ::close(file.release());
  BP_CHECK(closed == 0, FileError, who, ": cannot close '", path, "': ", errno_text(errno));
}

}  // namespace

InputFile::InputFile(const std::string& path, const char* who) : path_(path), who_(who) {
  BP_CHECK(!path.empty(), FileError, who, ": empty file path");
  input_exists(path, who);
  // O_NONBLOCK: should a FIFO replace the file after the check, opening it still does not wait.
  do {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  } while (fd_ < 0 && errno == EINTR);
  BP_CHECK(fd_ >= 0, FileError, who, ": cannot open '", path, "': ", errno_text(errno));
  struct stat st {};
  const bool stat_ok = ::fstat(fd_, &st) == 0;
  const int err = errno;
  if (!stat_ok || !S_ISREG(st.st_mode)) {
    ::close(fd_);  // the destructor does not run for a constructor that throws
    fd_ = -1;
    BP_CHECK(stat_ok, FileError, who, ": cannot stat '", path, "': ", errno_text(err));
    BP_CHECK(false, FileError, who, ": '", path, "' is ", node_kind(st.st_mode), ", not a regular file");
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

void write_parts_atomic(const std::string& requested, std::span<const std::string_view> parts,
                        const char* who, const WriteOptions& options) {
  const OutputTarget target = resolve_output(requested, who);
  if (target.what == OutputTarget::What::stream) return write_stream(target.path, parts, who);
  const std::string& path = target.path;
  if (target.what == OutputTarget::What::regular && !options.force) {
    const FileKind held = file_kind(head_of(path, who));
    const FileKind written = file_kind(head_of(parts));
    BP_CHECK(may_replace(held, written), FileError, who, ": '", requested, "' holds ", describe(held),
             "; refusing to replace it with ", describe(written), " (remove it first, or force the write); '",
             requested, "' is unchanged");
  }
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
    for (std::string_view part : parts) write_all(file.fd, part, "temporary file '" + tmp + "'", who);
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

FileKind file_kind(std::string_view head) {
  if (head.empty()) return FileKind::empty;
  if (head.size() >= 9 && head[8] == '{') {
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = (n << 8) | static_cast<unsigned char>(head[static_cast<std::size_t>(i)]);
    if (n >= 2 && n <= kMaxHeaderBytes) return FileKind::safetensors;
  }
  for (char c : head) {
    const auto u = static_cast<unsigned char>(c);
    if ((u < 0x20 && u != '\t' && u != '\n' && u != '\r' && u != '\f') || u == 0x7f) return FileKind::binary;
  }
  std::string_view s = head;
  if (s.starts_with("\xef\xbb\xbf")) s.remove_prefix(3);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  std::string lower(s);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  auto word = [&](std::string_view w) {
    return lower.starts_with(w) &&
           (lower.size() == w.size() || std::isspace(static_cast<unsigned char>(lower[w.size()])) ||
            lower[w.size()] == '{');
  };
  if (word("digraph") || word("graph") || word("strict")) return FileKind::dot;
  if (lower.starts_with("<!doctype html") || lower.starts_with("<html")) return FileKind::html;
  return FileKind::text;
}

const char* describe(FileKind kind) {
  switch (kind) {
    case FileKind::empty:
      return "nothing (an empty file)";
    case FileKind::safetensors:
      return "a safetensors model";
    case FileKind::dot:
      return "Graphviz DOT text";
    case FileKind::html:
      return "an HTML page";
    case FileKind::text:
      return "text";
    case FileKind::binary:
      return "binary data";
  }
  return "unknown content";
}

std::optional<FileKind> replaced_kind(const std::string& path, FileKind kind) {
  const detail::OutputTarget target = detail::resolve_output(path, "");
  if (target.what != detail::OutputTarget::What::regular) return std::nullopt;
  const FileKind held = file_kind(detail::head_of(target.path, ""));
  if (detail::may_replace(held, kind)) return std::nullopt;
  return held;
}

bool is_stream(const std::string& path) {
  try {
    return detail::resolve_output(path, "").what == detail::OutputTarget::What::stream;
  } catch (const FileError&) {
    return false;
  }
}

void write_file_atomic(const std::string& path, std::string_view bytes, const WriteOptions& options) {
  const std::string_view parts[] = {bytes};
  detail::write_parts_atomic(path, parts, "write_file_atomic", options);
}

bool input_exists(const std::string& path, const std::string& who) {
  const std::string prefix = who.empty() ? "" : who + ": ";
  BP_CHECK(!path.empty(), FileError, prefix, "empty file path");
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    const int err = errno;
    if (err == ENOENT || err == ENOTDIR) return false;
    BP_CHECK(false, FileError, prefix, "cannot inspect '", path, "': ", detail::errno_text(err));
  }
  BP_CHECK(S_ISREG(st.st_mode), FileError, prefix, "'", path, "' is ", detail::node_kind(st.st_mode),
           ", not a regular file");
  return true;
}

std::string read_file(const std::string& path, std::size_t max_bytes) {
  BP_CHECK(!path.empty(), FileError, "read_file: empty file path");
  BP_CHECK(input_exists(path, "read_file"), FileError, "read_file: cannot open '", path,
           "': ", detail::errno_text(ENOENT));
  detail::Fd file;
  do {
    file.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  } while (file.fd < 0 && errno == EINTR);
  BP_CHECK(file.fd >= 0, FileError, "read_file: cannot open '", path, "': ", detail::errno_text(errno));
  struct stat st {};
  BP_CHECK(::fstat(file.fd, &st) == 0, FileError, "read_file: cannot stat '", path,
           "': ", detail::errno_text(errno));
  BP_CHECK(S_ISREG(st.st_mode), FileError, "read_file: '", path, "' is ", detail::node_kind(st.st_mode),
           ", not a regular file");
  BP_CHECK(static_cast<std::uint64_t>(st.st_size) <= max_bytes, FileError, "read_file: '", path, "' is ",
           st.st_size, " bytes, more than the limit of ", max_bytes, " bytes");

  // Read to the end rather than trusting st_size: /proc files report 0.
  std::string out;
  out.reserve(static_cast<std::size_t>(st.st_size));
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
