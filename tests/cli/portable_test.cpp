// The default build runs on any x86-64: the `backprop` binary, run under Debian's qemu-user emulating a CPU
// without AVX-512 (Haswell: AVX2 + FMA) and one without AVX at all (Nehalem), explains a step of
// backpropagation with its check against the autograd engine passing and learns a small non-linear table; the
// kernels chosen at run time are the AVX2 and the baseline variants. A binary built with -march=native on an
// AVX-512 machine dies here with SIGILL.
#include <gtest/gtest.h>

#include <backprop/kernels.hpp>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>

#include "cli_test_util.hpp"

namespace {

namespace fs = std::filesystem;
using clitest::quote;
using clitest::Scratch;

// The emulated CPUs and the kernel variant each must get. (Not qemu64: it is an AMD K8, for which OpenBLAS
// picks kernels with 3DNow! instructions, which qemu does not emulate.)
struct Cpu {
  const char* model;
  const char* isa;
};
constexpr Cpu kCpus[] = {{"Haswell-noTSX", "avx2"}, {"Nehalem", "baseline"}};

// qemu-x86_64 on the PATH, or "" when qemu-user is not installed.
std::string find_qemu() {
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  std::size_t at = 0;
  while (at <= dirs.size()) {
    const std::size_t end = std::min(dirs.find(':', at), dirs.size());
    const fs::path candidate = fs::path(dirs.substr(at, end - at)) / "qemu-x86_64";
    if (end > at && fs::exists(candidate)) return candidate.string();
    at = end + 1;
  }
  return "";
}

// Runs `qemu-x86_64 -cpu MODEL PROGRAM ARGS` (ARGS is shell text), output captured.
clitest::Result emulate(const Scratch& s, const std::string& qemu, const std::string& model,
                        const std::string& program, const std::string& args) {
  return clitest::run_shell(s, quote(qemu) + " -cpu " + model + " " + quote(program) + " " + args);
}

// label = [x1 x2 > 0] on [-1, 1]^2 (XOR of the signs): no linear model gets far above 50%, a small MLP
// gets above 90%.
std::string xor_csv(std::uint64_t seed, int rows) {
  backprop::Generator gen(seed);
  std::string s = "x1,x2,label\n";
  for (int i = 0; i < rows; ++i) {
    const double a = gen.uniform(-1, 1), b = gen.uniform(-1, 1);
    char row[80];
    std::snprintf(row, sizeof row, "%.5f,%.5f,%s\n", a, b, a * b > 0 ? "same" : "different");
    s += row;
  }
  return s;
}

const std::string kTrainFlags =
    " --target label --dropout 0 --epochs 40 --batch-size 32 --lr 0.01 --val-split 0"
    " --grad-flow 0 --threads 2 --json";

// Finds qemu-x86_64 before each test; fails the test, saying how to install it, when it is missing.
class Portable : public ::testing::Test {
 protected:
  void SetUp() override {
#ifdef BACKPROP_SANITIZED_BUILD
    GTEST_SKIP()
        << "sanitizer build: the sanitizers' shadow memory does not map under qemu-user; the release "
           "suite runs this test on the default build";
#endif
    qemu = find_qemu();
    ASSERT_FALSE(qemu.empty())
        << "qemu-x86_64 not found on the PATH: this test runs the build under an emulated older CPU. Install "
           "Debian's qemu-user (apt-get install qemu-user, or scripts/install-deps).";
  }
  std::string qemu;
};

}  // namespace

// Run under qemu by the tests below: prints the kernel variant the library chose for the (emulated) CPU.
TEST(PortableChild, DISABLED_PrintIsa) {
  std::cout << "isa=" << backprop::isa_name(backprop::kernel_config().isa) << "\n";
}

TEST_F(Portable, KernelsAreChosenFromTheEmulatedCpu) {
  Scratch s;
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  for (const Cpu& cpu : kCpus) {
    const auto r = emulate(s, qemu, cpu.model, self,
                           "--gtest_also_run_disabled_tests --gtest_filter=PortableChild.DISABLED_PrintIsa");
    EXPECT_EQ(r.code, 0) << cpu.model << ": " << r.all();
    EXPECT_NE(r.out.find(std::string("isa=") + cpu.isa + "\n"), std::string::npos)
        << cpu.model << ": " << r.out;
  }
}

TEST_F(Portable, ExplainCheckPassesOnOlderCpus) {
  Scratch s;
  for (const Cpu& cpu : kCpus) {
    const auto r = emulate(s, qemu, cpu.model, clitest::kCli, "explain");
    EXPECT_EQ(r.code, 0) << cpu.model << ": " << r.all();
    EXPECT_NE(r.out.find("Check: all "), std::string::npos) << cpu.model << ": " << r.out;
    EXPECT_EQ(r.out.find("FAILED"), std::string::npos) << cpu.model << ": " << r.out;
  }
}

TEST_F(Portable, TrainingLearnsOnOlderCpus) {
  Scratch s;
  clitest::write(s.path("train.csv"), xor_csv(1, 400));
  clitest::write(s.path("test.csv"), xor_csv(2, 400));
  // The accuracy bound needs the hidden layers: a linear model, run natively, stays far below it.
  const auto linear = clitest::run(s, "train --data " + quote(s.path("train.csv")) + " --test-data " +
                                          quote(s.path("test.csv")) + kTrainFlags + " --layers none --out " +
                                          quote(s.path("run_linear")));
  ASSERT_EQ(linear.code, 0) << linear.all();
  EXPECT_LT(nlohmann::json::parse(linear.out)["test"]["accuracy"].get<double>(), 0.75) << linear.out;
  for (const Cpu& cpu : kCpus) {
    const std::string run = s.path(std::string("run_") + cpu.isa);
    const auto r =
        emulate(s, qemu, cpu.model, clitest::kCli,
                "train --data " + quote(s.path("train.csv")) + " --test-data " + quote(s.path("test.csv")) +
                    kTrainFlags + " --layers 64,64 --out " + quote(run));
    ASSERT_EQ(r.code, 0) << cpu.model << ": " << r.all();
    const auto summary = nlohmann::json::parse(r.out);
    EXPECT_GE(summary["test"]["accuracy"].get<double>(), 0.9) << cpu.model << ": " << r.out;
  }
}
