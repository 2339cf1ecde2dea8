// write_file_atomic, read_file, and what a failed save leaves behind: the previous file, whole, and no
// temporary file.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <backprop/backprop.hpp>
#include <backprop/io.hpp>
#include <csignal>

#include "io/io_test_util.hpp"

namespace bp = backprop;
using ::testing::HasSubstr;

namespace {

// Limits the size of any file this process writes, as a full disk would. Writing past it fails with EFBIG
// (the SIGXFSZ signal that would kill the process is ignored meanwhile).
class FileSizeLimit {
 public:
  explicit FileSizeLimit(rlim_t bytes) {
    old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    ::getrlimit(RLIMIT_FSIZE, &old_);
    rlimit limited = old_;
    limited.rlim_cur = bytes;
    ok_ = ::setrlimit(RLIMIT_FSIZE, &limited) == 0;
  }
  ~FileSizeLimit() {
    ::setrlimit(RLIMIT_FSIZE, &old_);
    std::signal(SIGXFSZ, old_handler_);
  }
  bool ok() const { return ok_; }

 private:
  rlimit old_{};
  void (*old_handler_)(int) = nullptr;
  bool ok_ = false;
};

}  // namespace

TEST(WriteFileAtomic, WritesAndReplacesContent) {
  iotest::ScratchDir dir;
  const std::string path = dir.file("metrics.json");
  bp::io::write_file_atomic(path, "first version, longer than the second");
  EXPECT_EQ(bp::io::read_file(path), "first version, longer than the second");
  bp::io::write_file_atomic(path, std::string("second\0binary", 13), {.force = true});  // text -> binary
  EXPECT_EQ(bp::io::read_file(path), std::string("second\0binary", 13));
  bp::io::write_file_atomic(path, "", {.force = true});  // binary -> empty
  EXPECT_EQ(bp::io::read_file(path), "");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"metrics.json"});
}

TEST(WriteFileAtomic, KeepsThePermissionsOfTheFileItReplaces) {
  iotest::ScratchDir dir;
  const std::string path = dir.file("private.txt");
  bp::io::write_file_atomic(path, "a");
  ASSERT_EQ(::chmod(path.c_str(), 0600), 0);
  bp::io::write_file_atomic(path, "b");
  struct stat st {};
  ASSERT_EQ(::stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(WriteFileAtomic, MissingDirectoryIsAFileErrorNamingIt) {
  iotest::ScratchDir dir;
  const std::string path = dir.file("no/such/dir/model.safetensors");
  iotest::expect_file_error(
      [&] { bp::io::write_file_atomic(path, "x"); },
      {"write_file_atomic: cannot create temporary file", "no/such/dir", "No such file"});
  iotest::expect_file_error(
      [&] {
        bp::io::save_safetensors(path, {.tensors = {{"w", bp::zeros({2})}}});
      },
      {"save_safetensors: cannot create temporary file", "is unchanged"});
  iotest::expect_file_error([] { bp::io::write_file_atomic("", "x"); }, {"empty file path"});
}

TEST(WriteFileAtomic, ReadOnlyDirectoryLeavesThePreviousFile) {
  if (::geteuid() == 0)
    GTEST_SKIP() << "root ignores directory permissions; see FailedWrite* for the same check";
  iotest::ScratchDir dir;
  const std::string path = dir.file("model.safetensors");
  bp::io::save_safetensors(path, {.tensors = {{"w", bp::tensor({1, 2})}}});
  const std::string before = iotest::read_bytes(path);
  ASSERT_EQ(::chmod(dir.path().c_str(), 0500), 0);
  iotest::expect_file_error(
      [&] {
        bp::io::save_safetensors(path, {.tensors = {{"w", bp::tensor({3, 4})}}});
      },
      {"cannot create temporary file", "Permission denied", "is unchanged"});
  ASSERT_EQ(::chmod(dir.path().c_str(), 0700), 0);
  EXPECT_EQ(iotest::read_bytes(path), before);
}

TEST(WriteFileAtomic, FailedWriteMidwayLeavesThePreviousFileAndNoTemporary) {
  iotest::ScratchDir dir;
  const std::string path = dir.file("model.safetensors");
  bp::io::save_safetensors(path, {.tensors = {{"w", bp::tensor({1, 2, 3})}}});
  const std::string before = iotest::read_bytes(path);
  {
    FileSizeLimit limit(4096);  // the new model is 40 KB: its write fails part way, like a full disk
    ASSERT_TRUE(limit.ok());
    iotest::expect_file_error(
        [&] {
          bp::io::save_safetensors(path, {.tensors = {{"w", bp::zeros({10000})}}});
        },
        {"save_safetensors: cannot write to temporary file", "File too large",
         "'" + path + "' is unchanged"});
    iotest::expect_file_error(
        [&] { bp::io::write_file_atomic(path, std::string(10000, 'x'), {.force = true}); },
        {"write_file_atomic: cannot write", "is unchanged"});
  }
  EXPECT_EQ(iotest::read_bytes(path), before);
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"model.safetensors"});
  EXPECT_TRUE(iotest::same_bits(bp::io::load_safetensors(path).at("w"), bp::tensor({1, 2, 3})));
}

TEST(WriteFileAtomic, FailedRenameLeavesTheTargetAndNoTemporary) {
  iotest::ScratchDir dir;
  const std::string path = dir.file("taken");
  iotest::fs::create_directories(iotest::fs::path(path) /
                                 "inside");  // a directory is never written over (tests/io/writer_test.cpp)
  iotest::expect_file_error([&] { bp::io::write_file_atomic(path, "x"); },
                            {"'" + path + "' is a directory", "'" + path + "' is unchanged"});
  EXPECT_TRUE(iotest::fs::is_directory(iotest::fs::path(path) / "inside"));
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"taken"});
}

TEST(ReadFile, ReadsWholeFilesAndEnforcesTheLimit) {
  iotest::ScratchDir dir;
  const std::string path = dir.file("config.toml");
  iotest::write_bytes(path, std::string(1000, 'a'));
  EXPECT_EQ(bp::io::read_file(path).size(), 1000u);
  EXPECT_EQ(bp::io::read_file(path, 1000).size(), 1000u);
  try {
    (void)bp::io::read_file(path, 999);
    ADD_FAILURE() << "expected FileError";
  } catch (const bp::FileError& e) {
    EXPECT_THAT(e.what(), HasSubstr("config.toml' is 1000 bytes, more than the limit of 999 bytes"));
  }
}

TEST(ReadFile, MissingFileAndDirectoryAreFileErrors) {
  iotest::ScratchDir dir;
  iotest::expect_file_error([&] { (void)bp::io::read_file(dir.file("absent.txt")); },
                            {"read_file: cannot open", "absent.txt", "No such file or directory"});
  iotest::expect_file_error([&] { (void)bp::io::read_file(dir.path().string()); },
                            {"is a directory, not a regular file"});
}

TEST(ReadFile, ReadsFilesWithoutAKnownSize) {
  // /proc files report a size of 0; read_file reads to the end instead of trusting it.
  if (!iotest::fs::exists("/proc/self/status")) GTEST_SKIP() << "no /proc";
  EXPECT_THAT(bp::io::read_file("/proc/self/status"), HasSubstr("Pid:"));
  iotest::expect_file_error([] { (void)bp::io::read_file("/proc/self/status", 10); },
                            {"more than the limit of 10"});
}
