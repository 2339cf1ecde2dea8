// Helpers shared by the tests of src/io: a scratch directory per test and hand-made safetensors files.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <backprop/io.hpp>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace iotest {

namespace fs = std::filesystem;

/// A fresh directory for one test, removed afterwards.
class ScratchDir {
 public:
  /// Under the system's temporary directory, or under `base` (the fuzz tests use the memory file system
  /// /dev/shm when there is one, since they create thousands of files).
  explicit ScratchDir(const fs::path& base = fs::temp_directory_path()) {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = base / ("backprop_io_" + std::to_string(::getpid()) + "_" +
                   (info ? std::string(info->test_suite_name()) + "." + info->name() : "x"));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::add, ec);
    fs::remove_all(dir_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const fs::path& path() const { return dir_; }
  std::string file(const std::string& name) const { return (dir_ / name).string(); }
  /// Names of the entries in the directory, sorted.
  std::vector<std::string> entries() const {
    std::vector<std::string> names;
    for (const auto& e : fs::directory_iterator(dir_)) names.push_back(e.path().filename().string());
    std::sort(names.begin(), names.end());
    return names;
  }

 private:
  fs::path dir_;
};

inline void write_bytes(const std::string& path, const std::string& bytes) {
  // A new file rather than a truncated one: ext4 flushes a truncated-and-rewritten file to disk on close,
  // which would make the thousands of writes of the fuzz test slow.
  std::error_code ec;
  fs::remove(path, ec);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << "cannot write " << path;
}

inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

/// An 8-byte little-endian length followed by `header` and `data`, with no padding and no checksum: the
/// simplest file another writer could produce.
inline std::string raw_file(const std::string& header, const std::string& data = {}) {
  std::string out(8, '\0');
  const std::uint64_t n = header.size();
  for (int b = 0; b < 8; ++b) out[static_cast<std::size_t>(b)] = static_cast<char>((n >> (8 * b)) & 0xff);
  return out + header + data;
}

/// The bytes of some floats, as a file stores them.
inline std::string f32_bytes(const std::vector<float>& values) {
  std::string out(values.size() * sizeof(float), '\0');
  if (!values.empty()) std::memcpy(out.data(), values.data(), out.size());
  return out;
}
inline std::string f64_bytes(const std::vector<double>& values) {
  std::string out(values.size() * sizeof(double), '\0');
  if (!values.empty()) std::memcpy(out.data(), values.data(), out.size());
  return out;
}

/// /dev/shm if it is a directory, else the system's temporary directory.
inline fs::path fast_temp_directory() {
  std::error_code ec;
  return fs::is_directory("/dev/shm", ec) ? fs::path("/dev/shm") : fs::temp_directory_path();
}

/// True if both tensors have the same shape, dtype and bits.
inline bool same_bits(const backprop::Tensor& a, const backprop::Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         (a.nbytes() == 0 || std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0);
}

/// Runs `f`, expecting a backprop::FileError whose message contains every one of `parts`.
template <class F>
void expect_file_error(F&& f, std::initializer_list<std::string> parts) {
  try {
    f();
    ADD_FAILURE() << "expected a FileError mentioning '" << *parts.begin() << "', but nothing was thrown";
  } catch (const backprop::FileError& e) {
    const std::string what = e.what();
    for (const std::string& p : parts)
      EXPECT_NE(what.find(p), std::string::npos) << "'" << p << "' not in: " << what;
  }
}

}  // namespace iotest
