// backprop's own sgemm kernels (src/kernels/sgemm_own.hpp), each variant this CPU runs (AVX-512, AVX2 + FMA),
// against a naive f64 reference: tails in m, n and k, the supported transpose combinations, alpha and beta,
// beta = 0 ignoring garbage in C, exact-size buffers (an out-of-bounds read fails under AddressSanitizer),
// row blocks bit-identical to the whole product, the variants bit-identical to each other, and gemm_raw's
// shape dispatch giving the same bits for 1 and 2 threads.
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "kernels/kernels.hpp"
#include "kernels/row_pool.hpp"
#include "kernels/sgemm_own.hpp"
#include "util/two_threads.hpp"

namespace bp = backprop;
namespace kn = backprop::kernels;

namespace {

using OwnSgemm = void (*)(bool, bool, std::int64_t, std::int64_t, std::int64_t, float, const float*,
                          std::int64_t, const float*, std::int64_t, float, float*, std::int64_t);
struct Variant {
  const char* name;
  OwnSgemm sgemm;
};

// The own kernel's variants this CPU runs (none on a CPU without AVX2: the tests below then check nothing
// and say so).
std::vector<Variant> variants() {
  std::vector<Variant> v;
  if (bp::cpu_supports(bp::Isa::avx512)) v.push_back({"avx512", &kn::avx512::sgemm});
  if (bp::cpu_supports(bp::Isa::avx2)) v.push_back({"avx2", &kn::avx2::sgemm});
  return v;
}

// Restores the kernel configuration a test changed.
struct ConfigGuard {
  bp::KernelConfig saved = bp::kernel_config();
  ~ConfigGuard() { bp::set_kernel_config(saved); }
};

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

// The reference C and, per element, the magnitude of the terms summed (sum |a b| + |beta c|).
struct Expected {
  std::vector<double> c, scale;
};

Expected expected(const Problem& p, const Operands& o) {
  Expected e{reference(p, o), std::vector<double>(static_cast<std::size_t>(p.m * p.n), 1e-30)};
  for (std::int64_t i = 0; i < p.m; ++i)
    for (std::int64_t j = 0; j < p.n; ++j) {
      double& scale = e.scale[i * p.n + j];
      for (std::int64_t q = 0; q < p.k; ++q)
        scale += std::fabs((p.ta ? o.a[q * o.lda + i] : o.a[i * o.lda + q]) *
                           (p.tb ? o.b[j * o.ldb + q] : o.b[q * o.ldb + j]) * p.alpha);
      if (p.beta != 0.0f) scale += std::fabs(p.beta * o.c0[i * p.n + j]);
    }
  return e;
}

// Worst |kernel - reference| over C, relative to the magnitude of the terms summed.
double worst_error(const Problem& p, const Operands& o, const Expected& e) {
  double worst = 0.0;
  for (std::int64_t i = 0; i < p.m * p.n; ++i) {
    const double got = o.c[i];
    worst = std::max(worst, std::isfinite(got) ? std::fabs(got - e.c[i]) / e.scale[i] : 1e30);
  }
  return worst;
}

double worst_error(const Problem& p, const Operands& o) {
  return worst_error(p, o, expected(p, o));
}

TEST(GemmKernel, MatchesFloat64ReferenceWithTails) {
  if (variants().empty()) GTEST_SKIP() << "CPU without AVX2: no own kernel runs here";
  for (const Variant& v : variants()) {
    bp::Generator gen(11);
    int cases = 0;
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        if (!kn::own_sgemm_supports(ta, tb)) continue;
        // Around the tiles (8 or 6 rows x 32 or 16 columns), B^T transposed in 8 x 8 blocks (k and n tails).
        for (std::int64_t m : {1, 3, 4, 5, 6, 7, 8, 9, 12, 13, 16, 17, 33})
          for (std::int64_t n : {1, 3, 5, 8, 10, 16, 17, 31, 32, 33, 65})
            for (std::int64_t k : {1, 2, 15, 16, 17, 33, 100}) {
              const Problem p{ta, tb, m, n, k, cases % 3 == 0 ? 1.0f : -0.75f, 0.0f};
              Operands o = make(p, gen);
              v.sgemm(ta, tb, m, n, k, p.alpha, o.a.get(), o.lda, o.b.get(), o.ldb, p.beta, o.c.get(), n);
              ASSERT_LT(worst_error(p, o), 1e-6)
                  << v.name << " ta " << ta << " tb " << tb << " m " << m << " n " << n << " k " << k;
              ++cases;
            }
      }
    EXPECT_EQ(cases, 3 * 13 * 11 * 7);
  }
}

TEST(GemmKernel, AlphaAndBeta) {
  if (variants().empty()) GTEST_SKIP() << "CPU without AVX2: no own kernel runs here";
  for (const Variant& v : variants()) {
    bp::Generator gen(12);
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        if (!kn::own_sgemm_supports(ta, tb)) continue;
        for (float alpha : {1.0f, 0.5f, -2.0f})
          for (float beta : {0.0f, 1.0f, -0.5f})
            for (std::int64_t m : {19, 9}) {  // with B^T: 19 x 37 packs B^T, 9 x 37 the swapped form packs A
              const Problem p{ta, tb, m, 37, 45, alpha, beta};
              Operands o = make(p, gen);
              v.sgemm(ta, tb, p.m, p.n, p.k, alpha, o.a.get(), o.lda, o.b.get(), o.ldb, beta, o.c.get(), p.n);
              EXPECT_LT(worst_error(p, o), 1e-6) << v.name << " ta " << ta << " tb " << tb << " m " << m
                                                 << " alpha " << alpha << " beta " << beta;
            }
      }
  }
}

// The MLP's own products (784-256-128-10 at batch 32): forward x W^T, dX = dY W, dW = dY^T X.
// The variants give the same bits on each (every element is the same chain of fused multiply-adds).
TEST(GemmKernel, MlpShapes) {
  if (variants().empty()) GTEST_SKIP() << "CPU without AVX2: no own kernel runs here";
  bp::Generator gen(13);
  const Problem shapes[] = {{false, true, 32, 256, 784, 1.0f, 1.0f},
                            {false, true, 128, 256, 784, 1.0f, 1.0f},
                            {false, false, 32, 256, 128, 1.0f, 0.0f},
                            {true, false, 256, 784, 32, 1.0f, 0.0f},
                            {true, false, 10, 128, 32, 1.0f, 0.0f}};
  for (const Problem& p : shapes) {
    Operands o = make(p, gen);
    std::vector<std::vector<float>> results;
    for (const Variant& v : variants()) {
      std::copy(o.c0.begin(), o.c0.end(), o.c.get());
      v.sgemm(p.ta, p.tb, p.m, p.n, p.k, p.alpha, o.a.get(), o.lda, o.b.get(), o.ldb, p.beta, o.c.get(), p.n);
      EXPECT_LT(worst_error(p, o), 1e-6) << v.name << " " << p.m << " x " << p.n << " x " << p.k;
      results.emplace_back(o.c.get(), o.c.get() + p.m * p.n);
    }
    for (std::size_t i = 1; i < results.size(); ++i)
      EXPECT_EQ(results[i], results[0])
          << variants()[i].name << " vs " << variants()[0].name << " " << p.m << " x " << p.n << " x " << p.k;
  }
}

// A block of rows computed on its own (as gemm_raw's threads do) has the same bits as in the whole product.
// With B^T the whole 45 x 70 product takes the packed form and its 16-row blocks the swapped one (2 m <= n),
// so this also holds the two forms to the same bits.
TEST(GemmKernel, RowBlocksAreBitIdenticalToTheWholeProduct) {
  if (variants().empty()) GTEST_SKIP() << "CPU without AVX2: no own kernel runs here";
  for (const Variant& v : variants()) {
    bp::Generator gen(14);
    for (bool ta : {false, true})
      for (bool tb : {false, true}) {
        if (!kn::own_sgemm_supports(ta, tb)) continue;
        const Problem p{ta, tb, 45, 70, 37, 1.0f, 0.0f};
        Operands o = make(p, gen);
        v.sgemm(ta, tb, p.m, p.n, p.k, 1.0f, o.a.get(), o.lda, o.b.get(), o.ldb, 0.0f, o.c.get(), p.n);
        std::vector<float> whole(o.c.get(), o.c.get() + p.m * p.n), pieces(whole.size(), -1.0f);
        for (std::int64_t r0 : {0, 16, 32}) {  // blocks of 16 rows, the last one short
          const std::int64_t rows = std::min<std::int64_t>(16, p.m - r0);
          const float* a0 = o.a.get() + (ta ? r0 : r0 * o.lda);
          v.sgemm(ta, tb, rows, p.n, p.k, 1.0f, a0, o.lda, o.b.get(), o.ldb, 0.0f, pieces.data() + r0 * p.n,
                  p.n);
        }
        EXPECT_EQ(whole, pieces) << v.name << " ta " << ta << " tb " << tb;
      }
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
  ConfigGuard guard;
  for (const Problem& p : shapes) {
    Operands o = make(p, gen);
    const Expected e = expected(p, o);
    for (bp::Isa isa : {bp::Isa::avx512, bp::Isa::avx2, bp::Isa::baseline}) {
      if (!bp::cpu_supports(isa)) continue;
      bp::KernelConfig config = guard.saved;
      config.isa = isa;
      bp::set_kernel_config(config);
      auto product = [&](int threads) {
        bp::set_num_threads(threads);
        std::copy(o.c0.begin(), o.c0.end(), o.c.get());
        bp::kernels::gemm_raw(bp::f32, o.a.get(), o.lda, p.ta, o.b.get(), o.ldb, p.tb, o.c.get(), p.m, p.n,
                              p.k, p.alpha, p.beta);
        return std::vector<float>(o.c.get(), o.c.get() + p.m * p.n);
      };
      const std::vector<float> one = product(1);
      EXPECT_TRUE(testutil::on_two_threads([&] {
        EXPECT_EQ(one, product(2)) << bp::isa_name(isa) << " " << p.m << " x " << p.n << " x " << p.k;
        EXPECT_LT(worst_error(p, o, e), 1e-6) << bp::isa_name(isa);
      })) << bp::isa_name(isa)
          << " " << p.m << " x " << p.n << " x " << p.k;
    }
  }
  bp::set_num_threads(saved);
}

TEST(GemmKernel, DispatchIsByShapeOnly) {
  // Never for f64, for A^T B^T, for one row, for k < 16, for x W^T with few rows (but 16 on AVX-512); the
  // same answer whatever the thread count.
  EXPECT_FALSE(bp::kernels::use_own_sgemm(bp::f64, false, false, 64, 64, 64));
  EXPECT_FALSE(bp::kernels::use_own_sgemm(bp::f32, true, true, 64, 64, 64));
  EXPECT_FALSE(bp::kernels::use_own_sgemm(bp::f32, false, false, 1, 256, 128));
  EXPECT_FALSE(bp::kernels::use_own_sgemm(bp::f32, false, false, 32, 128, 10));
  EXPECT_FALSE(bp::kernels::use_own_sgemm(bp::f32, false, false, 1024, 1024, 1024));
  EXPECT_FALSE(bp::kernels::use_own_sgemm(bp::f32, false, true, 8, 256, 784));
  EXPECT_EQ(bp::kernels::use_own_sgemm(bp::f32, false, true, 32, 256, 784), !variants().empty());
  // x W^T with exactly 16 rows: one full vector of the AVX-512 swapped form.
  EXPECT_EQ(bp::kernels::use_own_sgemm(bp::f32, false, true, 16, 150, 100),
            bp::kernel_config().isa == bp::Isa::avx512 && !variants().empty());
  EXPECT_FALSE(bp::kernels::use_own_sgemm(bp::f32, false, true, 24, 150, 100));
  const int saved = bp::get_num_threads();
  bp::set_num_threads(1);
  const bool one = bp::kernels::use_own_sgemm(bp::f32, false, false, 32, 256, 128);
  bp::set_num_threads(2);
  EXPECT_EQ(one, bp::kernels::use_own_sgemm(bp::f32, false, false, 32, 256, 128));
  bp::set_num_threads(saved);
}

// The kernel configuration chooses who computes a product: the own kernel of the configured variant (AVX2:
// only x W^T with few rows, where it measured faster), or OpenBLAS for Sgemm::openblas and the baseline.
TEST(KernelConfig, ChoosesTheProductKernel) {
  ConfigGuard guard;
  EXPECT_EQ(guard.saved.isa, bp::best_isa());  // the default: the widest variant this CPU runs
  EXPECT_EQ(guard.saved.sgemm, bp::Sgemm::own);
  EXPECT_EQ(guard.saved.gemm_split_macs, 0);
  EXPECT_EQ(guard.saved.update_split_elems, 0);
  EXPECT_EQ(guard.saved.helper_spin_us, 200);
  for (bp::Isa isa : {bp::Isa::avx512, bp::Isa::avx2, bp::Isa::baseline}) {
    if (!bp::cpu_supports(isa)) continue;
    for (bp::Sgemm sgemm : {bp::Sgemm::own, bp::Sgemm::openblas}) {
      bp::set_kernel_config({.isa = isa, .sgemm = sgemm});
      EXPECT_EQ(bp::kernel_config().isa, isa);
      const bool own = sgemm == bp::Sgemm::own && isa != bp::Isa::baseline;
      // x W^T at batch 32 (the swapped form) in both own variants; dW = dY^T X only in the AVX-512 one.
      EXPECT_EQ(bp::kernels::use_own_sgemm(bp::f32, false, true, 32, 256, 784), own)
          << bp::isa_name(isa) << " " << (sgemm == bp::Sgemm::own ? "own" : "openblas");
      EXPECT_EQ(bp::kernels::use_own_sgemm(bp::f32, true, false, 256, 784, 32), own && isa == bp::Isa::avx512)
          << bp::isa_name(isa) << " " << (sgemm == bp::Sgemm::own ? "own" : "openblas");
    }
  }
}

TEST(KernelConfig, BadValuesAreNamed) {
  ConfigGuard guard;
  auto message = [](const bp::KernelConfig& c) -> std::string {
    try {
      bp::set_kernel_config(c);
    } catch (const bp::ValueError& e) {
      return e.what();
    }
    return "no error";
  };
  EXPECT_NE(message({.gemm_split_macs = -1}).find("gemm_split_macs must be >= 0"), std::string::npos);
  const std::string update = message({.update_split_elems = -2});
  EXPECT_NE(update.find("update_split_elems must be >= 0"), std::string::npos) << update;
  EXPECT_NE(update.find("got -2"), std::string::npos) << update;
  EXPECT_NE(
      message({.helper_spin_us = -1}).find("helper_spin_us must be in [0, 1000000] microseconds, got -1"),
      std::string::npos);
  EXPECT_NE(message({.helper_spin_us = 1'000'001}).find("got 1000001"), std::string::npos);
  EXPECT_NE(message({.isa = static_cast<bp::Isa>(7)}).find("isa: unknown value 7"), std::string::npos);
  EXPECT_NE(message({.sgemm = static_cast<bp::Sgemm>(5)}).find("sgemm: unknown value 5"), std::string::npos);
  for (bp::Isa isa : {bp::Isa::avx512, bp::Isa::avx2}) {
    if (bp::cpu_supports(isa)) continue;
    EXPECT_NE(message({.isa = isa}).find(std::string("cannot run the ") + bp::isa_name(isa)),
              std::string::npos);
  }
  EXPECT_EQ(bp::kernel_config().gemm_split_macs,
            guard.saved.gemm_split_macs);  // a rejected config changes nothing
}

// update_split_elems = N replaces the adaptive threshold of optimiser updates: with N = 1 an SGD step over
// 4096 elements (under the default 2^17) is split, and the parameters are those of one thread.
TEST(KernelConfig, UpdateSplitThresholdSplitsSmallUpdates) {
  ConfigGuard guard;
  const int saved = bp::get_num_threads();
  auto train = [](int threads) {
    bp::set_num_threads(threads);
    bp::Generator gen(3);
    bp::Tensor w = bp::randn({64, 64}, gen).requires_grad_(true);
    bp::optim::SGD opt({w}, {.lr = 0.1, .momentum = 0.9});
    for (int i = 0; i < 200; ++i) {
      opt.zero_grad();
      bp::sum(bp::mul(w, w)).backward();
      opt.step();
    }
    return std::vector<float>(w.data<float>(), w.data<float>() + w.numel());
  };
  const std::vector<float> one = train(1);
  bp::KernelConfig config = guard.saved;
  config.update_split_elems = 1;
  bp::set_kernel_config(config);
  const auto before = bp::kernels::chunk_counts();
  const std::vector<float> two = train(2);
  const auto after = bp::kernels::chunk_counts();
  EXPECT_EQ(one, two);
  // 200 split updates of at least 2 pieces each (the element-wise ops of the tiny graph do not split).
  EXPECT_GE((after.by_helpers + after.by_callers) - (before.by_helpers + before.by_callers), 300u);
  bp::set_num_threads(saved);
}

// gemm_split_macs = N replaces the adaptive split threshold: with N = 1 a product of 2^18 multiply-adds, one
// block under the default, is split (the helpers compute pieces of it), and the bits stay those of one
// thread.
TEST(KernelConfig, SplitThresholdSplitsSmallProducts) {
  ConfigGuard guard;
  const int saved = bp::get_num_threads();
  bp::Generator gen(16);
  const Problem p{false, true, 64, 64, 64, 1.0f, 0.0f};
  Operands o = make(p, gen);
  bp::set_num_threads(1);
  bp::kernels::gemm_raw(bp::f32, o.a.get(), o.lda, p.ta, o.b.get(), o.ldb, p.tb, o.c.get(), p.m, p.n, p.k,
                        p.alpha, p.beta);
  const std::vector<float> one(o.c.get(), o.c.get() + p.m * p.n);
  bp::set_num_threads(2);
  bp::KernelConfig config = guard.saved;
  config.gemm_split_macs = 1;
  bp::set_kernel_config(config);
  const auto before = bp::kernels::chunk_counts();
  for (int i = 0; i < 200; ++i)  // a helper takes part in some of them, even on a busy machine
    bp::kernels::gemm_raw(bp::f32, o.a.get(), o.lda, p.ta, o.b.get(), o.ldb, p.tb, o.c.get(), p.m, p.n, p.k,
                          p.alpha, p.beta);
  const auto after = bp::kernels::chunk_counts();
  EXPECT_EQ(one, std::vector<float>(o.c.get(), o.c.get() + p.m * p.n));
  // Each split call runs at least 2 pieces (400 in all; a helper may count its last pieces a moment after the
  // caller returned); unsplit calls add none.
  EXPECT_GE((after.by_helpers + after.by_callers) - (before.by_helpers + before.by_callers), 300u);
  bp::set_num_threads(saved);
}

}  // namespace
