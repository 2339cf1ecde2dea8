// Damaged files: every bit flip, every truncation and a few thousand seeded random edits of a valid file.
// Each load must either give back exactly the saved tensors or throw backprop::FileError; anything else (a
// crash, another exception, a wrong tensor) fails. The asan preset runs this under AddressSanitizer.
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/io.hpp>

#include "io/io_test_util.hpp"

namespace bp = backprop;

namespace {

class Fuzz : public ::testing::Test {
 protected:
  static constexpr std::uint64_t kSeed = 20240611;
  iotest::ScratchDir dir{iotest::fast_temp_directory()};
  std::string path = dir.file("fuzz.safetensors");
  bp::io::NamedTensors original;
  std::string valid;
  int accepted = 0;
  int rejected = 0;

  void SetUp() override {
    bp::Generator gen(kSeed);
    original = {.tensors = {{"w", bp::randn({3, 4}, gen)},
                            {"b", bp::randn({5}, gen, bp::f64)},
                            {"s", bp::scalar(0.5)},
                            {"e", bp::zeros({0, 2})},
                            {"i", bp::tensor({7, -2}, bp::i64)},
                            {"m", bp::tensor({1, 0, 1}, bp::bool_)}},
                .metadata = {{"epoch", "3"}}};
    bp::io::save_safetensors(path, original);
    valid = iotest::read_bytes(path);
  }

  // Loads `bytes`; returns true if they were rejected with a FileError.
  bool try_load(const std::string& bytes, const std::string& mutation) {
    iotest::write_bytes(path, bytes);
    try {
      const bp::io::NamedTensors loaded = bp::io::load_safetensors(path);
      ++accepted;
      // A mutation the checks cannot see (a letter of a name, a metadata value) may load, but the tensors, in
      // file order, must be exactly the saved ones.
      EXPECT_EQ(loaded.tensors.size(), original.tensors.size()) << mutation << " (seed " << kSeed << ")";
      for (std::size_t i = 0; i < std::min(loaded.tensors.size(), original.tensors.size()); ++i)
        EXPECT_TRUE(iotest::same_bits(loaded.tensors[i].second, original.tensors[i].second))
            << mutation << ": tensor " << i << " differs (seed " << kSeed << ")";
      return false;
    } catch (const bp::FileError&) {
      ++rejected;
      return true;
    } catch (const std::exception& e) {
      ADD_FAILURE() << mutation << ": threw something other than FileError: " << e.what() << " (seed "
                    << kSeed << ")";
      return false;
    }
  }
};

}  // namespace

TEST_F(Fuzz, EveryBitFlipLoadsIdenticallyOrIsAFileError) {
  const std::size_t data_start = valid.size() - (12 * 4 + 5 * 8 + 4);  // w, b, s; e is empty
  int caught_in_data = 0;
  for (std::size_t byte = 0; byte < valid.size(); ++byte) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string bytes = valid;
      bytes[byte] = static_cast<char>(bytes[byte] ^ (1 << bit));
      const bool was_rejected =
          try_load(bytes, "flip of bit " + std::to_string(bit) + " of byte " + std::to_string(byte));
      if (byte >= data_start) caught_in_data += was_rejected;
    }
  }
  // CRC-32 detects every single-bit error, so no flip in the data section gets through.
  EXPECT_EQ(caught_in_data, static_cast<int>(8 * (valid.size() - data_start)));
  EXPECT_GT(rejected, accepted);
}

TEST_F(Fuzz, EveryTruncationIsAFileError) {
  for (std::size_t size = 0; size < valid.size(); ++size)
    EXPECT_TRUE(try_load(valid.substr(0, size), "truncation to " + std::to_string(size) + " bytes"));
}

TEST_F(Fuzz, RandomEditsLoadIdenticallyOrAreFileErrors) {
  bp::Generator gen(kSeed);
  for (int i = 0; i < 3000; ++i) {
    std::string bytes = valid;
    const std::size_t at = gen.below(bytes.size());
    std::string mutation;
    switch (gen.below(5)) {
      case 0: {  // append junk
        const std::size_t n = 1 + gen.below(16);
        for (std::size_t k = 0; k < n; ++k) bytes += static_cast<char>(gen.below(256));
        mutation = "append " + std::to_string(n) + " bytes";
        EXPECT_TRUE(try_load(bytes, mutation)) << mutation;  // the data must end at the end of the file
        continue;
      }
      case 1:
        bytes.insert(at, 1, static_cast<char>(gen.below(256)));
        mutation = "insert a byte at " + std::to_string(at);
        break;
      case 2:
        bytes.erase(at, 1);
        mutation = "delete byte " + std::to_string(at);
        break;
      case 3: {
        const std::size_t n = 1 + gen.below(4);
        for (std::size_t k = at; k < std::min(bytes.size(), at + n); ++k)
          bytes[k] = static_cast<char>(gen.below(256));
        mutation = "overwrite " + std::to_string(n) + " bytes at " + std::to_string(at);
        break;
      }
      default: {  // a header length near the real one, or anywhere
        const std::uint64_t real = bytes.size() - 8;
        const std::uint64_t n = gen.bernoulli(0.5) ? real - 16 + gen.below(32) : gen.next();
        for (int b = 0; b < 8; ++b)
          bytes[static_cast<std::size_t>(b)] = static_cast<char>((n >> (8 * b)) & 0xff);
        mutation = "header length " + std::to_string(n);
      }
    }
    try_load(bytes, "edit " + std::to_string(i) + ": " + mutation);
  }
  EXPECT_GT(rejected, 0);
}
