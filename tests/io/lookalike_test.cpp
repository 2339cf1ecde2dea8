// A file that is not safetensors at all says so, and what it looks like, before any number read from its first
// bytes is quoted as a header length.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/io.hpp>

#include "io/io_test_util.hpp"

namespace bp = backprop;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

std::string load_error(const std::string& path) {
  try {
    bp::io::load_safetensors(path);
  } catch (const bp::FileError& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(NotSafetensors, CommonContentIsNamedBeforeTheHeaderLength) {
  iotest::ScratchDir dir;
  const struct {
    const char* name;
    std::string bytes;
    const char* looks_like;
  } cases[] = {
      {"notes.txt", "these are my notes about the model\nline two\n", "text"},
      {"short.txt", "hi\n", "text"},
      {"page.html", "<!DOCTYPE html>\n<html><body>404 Not Found</body></html>\n", "an HTML page"},
      {"config.json", "{\"hidden\": [256, 128], \"lr\": 0.1}\n", "JSON text"},
      {"model.pt", std::string("PK\x03\x04\x00\x00\x08\x08", 8) + "archive/data.pkl", "PyTorch"},
      {"old.pt", std::string("\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8", 12), "Python pickle"},
      {"pointer.safetensors", "version https://git-lfs.github.com/spec/v1\noid sha256:4d7a21\nsize 1048576\n",
       "Git LFS pointer"},
      {"model.safetensors.gz", std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03", 10), "gzip"},
  };
  for (const auto& c : cases) {
    const std::string path = dir.file(c.name);
    iotest::write_bytes(path, c.bytes);
    const std::string what = load_error(path);
    EXPECT_THAT(what, HasSubstr("'" + path + "' is not a safetensors file (it looks like ")) << c.name;
    EXPECT_THAT(what, HasSubstr(c.looks_like)) << c.name;
    EXPECT_THAT(what, Not(HasSubstr("header length"))) << c.name;
  }
}

TEST(NotSafetensors, ValidFilesAndUnrecognisedDamageKeepTheirMessages) {
  iotest::ScratchDir dir;
  // A real file whose header happens to start with printable bytes is still read.
  const std::string good = dir.file("good.safetensors");
  bp::io::save_safetensors(good, {.tensors = {{"w", bp::tensor({1, 2, 3})}}});
  EXPECT_EQ(bp::io::load_safetensors(good).at("w").at({2}), 3.0);
  // Binary garbage matching no known kind is reported by the length check, as before.
  const std::string junk = dir.file("junk.safetensors");
  iotest::write_bytes(junk, std::string("\x01\x02\x03\x04\x05\x06\x07\x08\x00\x01", 10));
  EXPECT_THAT(load_error(junk), HasSubstr("header length"));
  // An empty file is reported by its size.
  const std::string empty = dir.file("empty.safetensors");
  iotest::write_bytes(empty, "");
  EXPECT_THAT(load_error(empty), HasSubstr("the file is 0 bytes"));
}
