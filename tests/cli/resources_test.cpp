// Memory is a named error: a network that cannot fit is refused before training with exit 2, naming the flag
// and the bytes; an allocation the system refuses ends the command with exit 5, naming the bytes and the
// tensor, never 1 ("internal error"). RLIMIT_AS (`ulimit -v`) makes the machine small, so both are
// deterministic on any machine.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <string>

#include "cli_test_util.hpp"

using clitest::quote;
using clitest::run;
using clitest::run_shell;
using clitest::Scratch;
using ::testing::ContainsRegex;
using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;

namespace {

// `backprop ARGS` with its address space limited to `kib` KiB.
clitest::Result run_limited(const Scratch& s, std::uint64_t kib, const std::string& args) {
  return run_shell(s, "ulimit -v " + std::to_string(kib) + " && exec " + quote(clitest::kCli) + " " + args);
}

// Address-space limits break AddressSanitizer, which reserves terabytes of shadow memory.
bool sanitized() {
#ifdef BACKPROP_SANITIZED_BUILD
  return true;
#else
  return false;
#endif
}

}  // namespace

TEST(Resources, NetworkTooBigForTheMachineIsRefusedBeforeTraining) {
  Scratch s;
  clitest::write(s.path("blobs.csv"), clitest::blobs_csv(1, 20));
  // 2 x 200,000^2 weights: 320 GB of parameters, 1.3 TB with gradients and Adam's moments.
  const auto r = run(s, "train --data " + quote(s.path("blobs.csv")) +
                            " --layers 200000,200000,200000 --epochs 1 --out " + quote(s.path("run")));
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("reduce --layers 200000,200000,200000"));
  EXPECT_THAT(r.err, ContainsRegex("training needs about [0-9]{13,} bytes"));
  EXPECT_THAT(r.err, ContainsRegex("allows [0-9]+ bytes"));
  EXPECT_THAT(r.err, HasSubstr("--batch-size"));
  // Refused before the run folder was written.
  EXPECT_FALSE(fs::exists(s.path("run/metrics.jsonl")));
  EXPECT_FALSE(fs::exists(s.path("run/model.safetensors")));
}

TEST(Resources, AddressSpaceLimitRefusesABigNetworkAndPassesASmallOne) {
  if (sanitized()) GTEST_SKIP() << "ulimit -v and AddressSanitizer do not mix";
  Scratch s;
  clitest::write(s.path("blobs.csv"), clitest::blobs_csv(1, 20));
  const std::string data = " --data " + quote(s.path("blobs.csv"));
  // 20,000^2 weights: 1.6 GB, 6.4 GB with gradients and Adam's moments, under a 3 GiB limit.
  const auto big = run_limited(
      s, 3u << 20, "train" + data + " --layers 20000,20000 --epochs 1 --out " + quote(s.path("big")));
  EXPECT_EQ(big.code, 2) << big.err;
  EXPECT_THAT(big.err, HasSubstr("RLIMIT_AS"));
  EXPECT_THAT(big.err, HasSubstr("reduce --layers 20000,20000"));
  const auto small = run_limited(
      s, 3u << 20, "train" + data + " --layers 16 --epochs 1 --out " + quote(s.path("small")) + " -q");
  EXPECT_EQ(small.code, 0) << small.err;
  EXPECT_TRUE(fs::exists(s.path("small/model.safetensors")));
}

TEST(Resources, AllocationRefusedBySystemIsExit5NamingTheBytesAndShape) {
  if (sanitized()) GTEST_SKIP() << "ulimit -v and AddressSanitizer do not mix";
  Scratch s;
  // A valid file holding one 4 GiB tensor, sparse on disk: reading it allocates 4 GiB, which a 2 GiB
  // address-space limit refuses.
  const std::string header = R"({"w":{"dtype":"F32","shape":[1073741824],"data_offsets":[0,4294967296]}})";
  std::string head(8, '\0');
  for (int b = 0; b < 8; ++b)
    head[static_cast<std::size_t>(b)] = static_cast<char>((header.size() >> (8 * b)) & 0xff);
  const std::string path = s.path("big.safetensors");
  clitest::write(path, head + header);
  fs::resize_file(path, 8 + header.size() + (std::uint64_t{4} << 30));
  clitest::write(s.path("rows.csv"), "1,2\n3,4\n");
  for (const std::string& command :
       {"info " + quote(path), "predict --input " + quote(s.path("rows.csv")) + " --model " + quote(path)}) {
    const auto r = run_limited(s, 2u << 20, command);
    EXPECT_EQ(r.code, 5) << command << ": " << r.err;
    EXPECT_THAT(r.err, HasSubstr("out of memory")) << command;
    EXPECT_THAT(r.err, HasSubstr("4294967296 bytes (4.0 GiB)")) << command;
    EXPECT_THAT(r.err, HasSubstr("[1073741824] f32")) << command;
    EXPECT_THAT(r.err, Not(HasSubstr("internal"))) << command;
  }
}
