// backprop's own AVX-512 sgemm kernels (src/kernels/gemm_avx512.cpp) against a naive f64 reference: tails in
// m, n and k, the supported transpose combinations, alpha and beta, beta = 0 ignoring garbage in C,
// exact-size buffers (an out-of-bounds read fails under AddressSanitizer), row blocks bit-identical to the
// whole product, and gemm_raw's shape dispatch giving the same bits for 1 and 2 threads.
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>

#include <backprop/backprop.hpp>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "kernels/gemm_avx512.hpp"
#include "kernels/kernels.hpp"
#include "util/two_threads.hpp"

namespace bp = backprop;
namespace avx = backprop::kernels::avx512;

namespace {

struct Problem {
  bool ta, tb;
  std::int64_t m, n, k;
  float alpha, beta;
};

// Operands in heap blocks of exactly the size the product needs, so that any read past them is caught.
struct Operands {
  std::int64_t lda, ldb;
  std::unique_ptr<float[]> a, b, c;
  std::vector<float> c0;  // C before the product
};

Operands make(const Problem& p, bp::Generator& gen) {
  Operands o;
  o.lda = p.ta ? p.m : p.k;
  o.ldb = p.tb ? p.k : p.n;
  const std::int64_t na = (p.ta ? p.k : p.m) * o.lda, nb = (p.tb ? p.n : p.k) * o.ldb, nc = p.m * p.n;
  o.a = std::make_unique<float[]>(static_cast<std::size_t>(na));
  o.b = std::make_unique<float[]>(static_cast<std::size_t>(nb));
  o.c = std::make_unique<float[]>(static_cast<std::size_t>(nc));
  for (std::int64_t i = 0; i < na; ++i) o.a[i] = static_cast<float>(gen.uniform() * 2.0 - 1.0);
  for (std::int64_t i = 0; i < nb; ++i) o.b[i] = static_cast<float>(gen.uniform() * 2.0 - 1.0);
  for (std::int64_t i = 0; i < nc; ++i)  // with beta = 0 the kernel must not read C: fill it with NaN
    o.c[i] = p.beta == 0.0f ? std::numeric_limits<float>::quiet_NaN() : static_cast<float>(gen.uniform());
  o.c0.assign(o.c.get(), o.c.get() + nc);
  return o;
}

// C = alpha op(A) op(B) + beta C in double precision.
std::vector<double> reference(const Problem& p, const Operands& o) {
  std::vector<double> r(static_cast<std::size_t>(p.m * p.n));
  for (std::int64_t i = 0; i < p.m; ++i)
    for (std::int64_t j = 0; j < p.n; ++j) {
      double s = 0.0;
      for (std::int64_t q = 0; q < p.k; ++q) {
        const double a = p.ta ? o.a[q * o.lda + i] : o.a[i * o.lda + q];
        const double b = p.tb ? o.b[j * o.ldb + q] : o.b[q * o.ldb + j];
        s += a * b;
      }
      const double c = p.beta == 0.0f ? 0.0 : static_cast<double>(p.beta) * o.c0[i * p.n + j];
      r[i * p.n + j] = static_cast<double>(p.alpha) * s + c;
    }
  return r;
}

// Worst |kernel - reference| over C, relative to the magnitude of the terms summed (sum |a b| + |beta c|).
double worst_error(const Problem& p, const Operands& o) {
  const auto ref = reference(p, o);
  double worst = 0.0;
  for (std::int64_t i = 0; i < p.m; ++i)
    for (std::int64_t j = 0; j < p.n; ++j) {
      double scale = 1e-30;
      for (std::int64_t q = 0; q < p.k; ++q)
        scale += std::fabs((p.ta ? o.a[q * o.lda + i] : o.a[i * o.lda + q]) *
                           (p.tb ? o.b[j * o.ldb + q] : o.b[q * o.ldb + j]) * p.alpha);
      if (p.beta != 0.0f) scale += std::fabs(p.beta * o.c0[i * p.n + j]);
      const double got = o.c[i * p.n + j];
      worst = std::max(worst, std::isfinite(got) ? std::fabs(got - ref[i * p.n + j]) / scale : 1e30);
    }
  return worst;
}

TEST(GemmKernel, MatchesFloat64ReferenceWithTails) {
  if (!avx::available()) GTEST_SKIP() << "CPU without AVX-512F";
  bp::Generator gen(11);
  int cases = 0;
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      if (!avx::supports(ta, tb)) continue;
      // Around the tiles: 8 rows x 32 columns, B^T transposed in 8 x 8 blocks (k and n tails).
      for (std::int64_t m : {1, 3, 4, 7, 8, 9, 16, 17, 33})
        for (std::int64_t n : {1, 3, 5, 10, 16, 17, 31, 32, 33, 65})
          for (std::int64_t k : {1, 2, 15, 16, 17, 33, 100}) {
            const Problem p{ta, tb, m, n, k, cases % 3 == 0 ? 1.0f : -0.75f, 0.0f};
            Operands o = make(p, gen);
            avx::sgemm(ta, tb, m, n, k, p.alpha, o.a.get(), o.lda, o.b.get(), o.ldb, p.beta, o.c.get(), n);
            ASSERT_LT(worst_error(p, o), 1e-6)
                << "ta " << ta << " tb " << tb << " m " << m << " n " << n << " k " << k;
            ++cases;
          }
    }
  EXPECT_EQ(cases, 3 * 9 * 10 * 7);
}

TEST(GemmKernel, AlphaAndBeta) {
  if (!avx::available()) GTEST_SKIP() << "CPU without AVX-512F";
  bp::Generator gen(12);
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      if (!avx::supports(ta, tb)) continue;
      for (float alpha : {1.0f, 0.5f, -2.0f})
        for (float beta : {0.0f, 1.0f, -0.5f})
          for (std::int64_t m : {19, 9}) {  // with B^T: 19 x 37 packs B^T, 9 x 37 the swapped form packs A
            const Problem p{ta, tb, m, 37, 45, alpha, beta};
            Operands o = make(p, gen);
            avx::sgemm(ta, tb, p.m, p.n, p.k, alpha, o.a.get(), o.lda, o.b.get(), o.ldb, beta, o.c.get(),
                       p.n);
            EXPECT_LT(worst_error(p, o), 1e-6)
                << "ta " << ta << " tb " << tb << " m " << m << " alpha " << alpha << " beta " << beta;
          }
    }
}

// The MLP's own products (784-256-128-10 at batch 32): forward x W^T, dX = dY W, dW = dY^T X.
TEST(GemmKernel, MlpShapes) {
  if (!avx::available()) GTEST_SKIP() << "CPU without AVX-512F";
  bp::Generator gen(13);
  const Problem shapes[] = {{false, true, 32, 256, 784, 1.0f, 1.0f},
                            {false, false, 32, 256, 128, 1.0f, 0.0f},
                            {true, false, 256, 784, 32, 1.0f, 0.0f},
                            {true, false, 10, 128, 32, 1.0f, 0.0f}};
  for (const Problem& p : shapes) {
    Operands o = make(p, gen);
    avx::sgemm(p.ta, p.tb, p.m, p.n, p.k, p.alpha, o.a.get(), o.lda, o.b.get(), o.ldb, p.beta, o.c.get(),
               p.n);
    EXPECT_LT(worst_error(p, o), 1e-6) << p.m << " x " << p.n << " x " << p.k;
  }
}

// A block of rows computed on its own (as gemm_raw's threads do) has the same bits as in the whole product.
// With B^T the whole 45 x 70 product takes the packed form and its 16-row blocks the swapped one (2 m <= n),
// so this also holds the two forms to the same bits.
TEST(GemmKernel, RowBlocksAreBitIdenticalToTheWholeProduct) {
  if (!avx::available()) GTEST_SKIP() << "CPU without AVX-512F";
  bp::Generator gen(14);
  for (bool ta : {false, true})
    for (bool tb : {false, true}) {
      if (!avx::supports(ta, tb)) continue;
      const Problem p{ta, tb, 45, 70, 37, 1.0f, 0.0f};
      Operands o = make(p, gen);
      avx::sgemm(ta, tb, p.m, p.n, p.k, 1.0f, o.a.get(), o.lda, o.b.get(), o.ldb, 0.0f, o.c.get(), p.n);
      std::vector<float> whole(o.c.get(), o.c.get() + p.m * p.n), pieces(whole.size(), -1.0f);
      for (std::int64_t r0 : {0, 16, 32}) {  // blocks of 16 rows, the last one short
        const std::int64_t rows = std::min<std::int64_t>(16, p.m - r0);
        const float* a0 = o.a.get() + (ta ? r0 : r0 * o.lda);
        avx::sgemm(ta, tb, rows, p.n, p.k, 1.0f, a0, o.lda, o.b.get(), o.ldb, 0.0f, pieces.data() + r0 * p.n,
                   p.n);
      }
      EXPECT_EQ(whole, pieces) << "ta " << ta << " tb " << tb;
    }
}

// gemm_raw picks the kernel from the shape alone; with 2 threads it splits rows (columns for x W^T with few
// rows, the own kernel's swapped form), and the bits stay the same.
TEST(GemmKernel, GemmRawIsBitIdenticalAcrossThreadCounts) {
  SKIP_WITHOUT_TWO_CPUS();
  bp::Generator gen(15);
  const int saved = bp::get_num_threads();
  // Products the own kernel takes (when available) split by rows and by columns (with tails in both), one it
  // leaves to OpenBLAS; all large enough to fork.
  const Problem shapes[] = {{true, false, 256, 784, 128, 1.0f, 0.0f},
                            {false, true, 40, 1000, 300, 1.0f, 1.0f},
                            {false, true, 1024, 256, 784, 1.0f, 1.0f}};
  for (const Problem& p : shapes) {
    Operands o = make(p, gen);
    auto product = [&](int threads) {
      bp::set_num_threads(threads);
      std::copy(o.c0.begin(), o.c0.end(), o.c.get());
      bp::kernels::gemm_raw(bp::f32, o.a.get(), o.lda, p.ta, o.b.get(), o.ldb, p.tb, o.c.get(), p.m, p.n, p.k,
                            p.alpha, p.beta);
      return std::vector<float>(o.c.get(), o.c.get() + p.m * p.n);
    };
    const std::vector<float> one = product(1);
    EXPECT_TRUE(testutil::on_two_threads([&] {
      EXPECT_EQ(one, product(2)) << p.m << " x " << p.n << " x " << p.k;
      EXPECT_LT(worst_error(p, o), 1e-6);
    })) << p.m
        << " x " << p.n << " x " << p.k;
  }
  bp::set_num_threads(saved);
}

TEST(GemmKernel, DispatchIsByShapeOnly) {
  // Never for f64, for A^T B^T, for one row, for k < 16, for x W^T with few rows; the same answer whatever
  // the thread count.
  EXPECT_FALSE(bp::kernels::use_own_sgemm(bp::f64, false, false, 64, 64, 64));
  EXPECT_FALSE(bp::kernels::use_own_sgemm(bp::f32, true, true, 64, 64, 64));
  EXPECT_FALSE(bp::kernels::use_own_sgemm(bp::f32, false, false, 1, 256, 128));
  EXPECT_FALSE(bp::kernels::use_own_sgemm(bp::f32, false, false, 32, 128, 10));
  EXPECT_FALSE(bp::kernels::use_own_sgemm(bp::f32, false, false, 1024, 1024, 1024));
  EXPECT_FALSE(bp::kernels::use_own_sgemm(bp::f32, false, true, 8, 256, 784));
  EXPECT_EQ(bp::kernels::use_own_sgemm(bp::f32, true, false, 256, 784, 32), avx::available());
  const int saved = bp::get_num_threads();
  bp::set_num_threads(1);
  const bool one = bp::kernels::use_own_sgemm(bp::f32, false, false, 32, 256, 128);
  bp::set_num_threads(2);
  EXPECT_EQ(one, bp::kernels::use_own_sgemm(bp::f32, false, false, 32, 256, 128));
  bp::set_num_threads(saved);
}

// BACKPROP_GEMM_SPLIT_MACS replaces the split threshold; it is read once per process, so each value is tried
// in a child process running the disabled test below.
int run_child_with_split(const char* value) {
  std::string exe = "/proc/self/exe", filter = "--gtest_filter=GemmSplitEnv.DISABLED_Child",
              disabled = "--gtest_also_run_disabled_tests";
  char* argv[] = {exe.data(), filter.data(), disabled.data(), nullptr};
  std::vector<std::string> env_text = {std::string("BACKPROP_GEMM_SPLIT_MACS=") + value,
                                       "OMP_WAIT_POLICY=PASSIVE"};
  std::vector<char*> env;
  for (auto& e : env_text) env.push_back(e.data());
  env.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv, env.data()) != 0) return -1;
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

TEST(GemmSplitEnv, DISABLED_Child) {
  const std::string value = std::getenv("BACKPROP_GEMM_SPLIT_MACS");
  bp::Generator gen(16);
  const Problem p{false, true, 64, 64, 64, 1.0f, 0.0f};  // 2^18 multiply-adds: one block under the default
  Operands o = make(p, gen);
  bp::set_num_threads(2);
  if (value == "1") {  // every product with two row blocks splits; the bits stay those of one thread
    bp::kernels::gemm_raw(bp::f32, o.a.get(), o.lda, p.ta, o.b.get(), o.ldb, p.tb, o.c.get(), p.m, p.n, p.k,
                          p.alpha, p.beta);
    const std::vector<float> two(o.c.get(), o.c.get() + p.m * p.n);
    bp::set_num_threads(1);
    bp::kernels::gemm_raw(bp::f32, o.a.get(), o.lda, p.ta, o.b.get(), o.ldb, p.tb, o.c.get(), p.m, p.n, p.k,
                          p.alpha, p.beta);
    EXPECT_EQ(two, std::vector<float>(o.c.get(), o.c.get() + p.m * p.n));
    EXPECT_LT(worst_error(p, o), 1e-6);
  } else {  // not a whole number >= 1: the first product that could split names the variable and the value
    try {
      bp::kernels::gemm_raw(bp::f32, o.a.get(), o.lda, p.ta, o.b.get(), o.ldb, p.tb, o.c.get(), p.m, p.n, p.k,
                            p.alpha, p.beta);
      ADD_FAILURE() << "no error for BACKPROP_GEMM_SPLIT_MACS=" << value;
    } catch (const bp::ValueError& e) {
      EXPECT_NE(std::string(e.what()).find("BACKPROP_GEMM_SPLIT_MACS: expected a whole number >= 1"),
                std::string::npos);
      EXPECT_NE(std::string(e.what()).find("'" + value + "'"), std::string::npos);
    }
  }
}

TEST(GemmSplitEnv, ThresholdFromTheEnvironmentSplitsSmallProductsAndBadValuesAreNamed) {
  EXPECT_EQ(run_child_with_split("1"), 0);
  EXPECT_EQ(run_child_with_split("0"), 0);
  EXPECT_EQ(run_child_with_split("lots"), 0);
  EXPECT_EQ(run_child_with_split("12abc"), 0);
}

}  // namespace
