// CPU kernels against naive loops: broadcasting, reductions, softmax, GEMM, and determinism across thread
// counts.
#include "kernels/kernels.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>

#include "util/two_threads.hpp"

namespace bp = backprop;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

namespace {

/// Row-major multi-index of flat position i in `shape`.
std::vector<std::int64_t> unravel(std::int64_t i, const bp::Shape& shape) {
  std::vector<std::int64_t> idx(shape.size());
  for (std::size_t d = shape.size(); d-- > 0;) {
    idx[d] = i % shape[d];
    i /= shape[d];
  }
  return idx;
}

/// Flat position in `shape` of the output index `out_idx`, reading size-1 (and missing) dimensions at 0.
std::int64_t broadcast_source(const std::vector<std::int64_t>& out_idx, const bp::Shape& shape) {
  std::int64_t off = 0;
  const std::size_t lead = out_idx.size() - shape.size();
  for (std::size_t d = 0; d < shape.size(); ++d)
    off = off * shape[d] + (shape[d] == 1 ? 0 : out_idx[lead + d]);
  return off;
}

/// The broadcasting rule written out element by element.
std::vector<double> naive_binary(const bp::Tensor& a, const bp::Tensor& b, const bp::Shape& out,
                                 const std::function<double(double, double)>& f) {
  const auto va = a.to_vector(), vb = b.to_vector();
  std::vector<double> r(static_cast<std::size_t>(bp::numel(out)));
  for (std::int64_t i = 0; i < bp::numel(out); ++i) {
    const auto idx = unravel(i, out);
    r[static_cast<std::size_t>(i)] =
        f(va[broadcast_source(idx, a.shape())], vb[broadcast_source(idx, b.shape())]);
  }
  return r;
}

struct BinaryCase {
  const char* name;
  std::function<bp::Tensor(const bp::Tensor&, const bp::Tensor&)> op;
  std::function<double(double, double)> ref;
};

std::vector<BinaryCase> binary_cases() {
  return {
      {"add", [](auto& a, auto& b) { return a + b; }, [](double x, double y) { return x + y; }},
      {"sub", [](auto& a, auto& b) { return a - b; }, [](double x, double y) { return x - y; }},
      {"mul", [](auto& a, auto& b) { return a * b; }, [](double x, double y) { return x * y; }},
      {"div", [](auto& a, auto& b) { return a / b; }, [](double x, double y) { return x / y; }},
      {"maximum", [](auto& a, auto& b) { return bp::maximum(a, b); },
       [](double x, double y) { return std::max(x, y); }},
      {"equal", [](auto& a, auto& b) { return bp::equal(a, b); },
       [](double x, double y) { return x == y ? 1.0 : 0.0; }},
  };
}

bool bit_identical(const bp::Tensor& a, const bp::Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

/// Runs f with the given thread count, restoring the previous one after.
template <class F>
auto with_threads(int n, F f) {
  const int before = bp::get_num_threads();
  bp::set_num_threads(n);
  auto r = f();
  bp::set_num_threads(before);
  return r;
}

}  // namespace

// ---- broadcasting -----------------------------------------------------------------------------------------

TEST(Broadcast, EveryShapeCombinationMatchesTheElementwiseRule) {
  const std::vector<std::pair<bp::Shape, bp::Shape>> shapes = {{{2, 3}, {2, 3}},
                                                               {{}, {2, 3}},
                                                               {{2, 3}, {}},
                                                               {{}, {}},
                                                               {{5, 1}, {1, 4}},
                                                               {{1, 4}, {5, 1}},
                                                               {{3, 1, 4}, {2, 1}},
                                                               {{2, 1}, {3, 1, 4}},
                                                               {{4}, {3, 4}},
                                                               {{3, 4}, {4}},
                                                               {{3, 4}, {3, 1}},
                                                               {{1}, {3, 1}},
                                                               {{2, 1, 3}, {1, 4, 1}},
                                                               {{0, 3}, {3}},
                                                               {{2, 3, 4, 5}, {3, 1, 5}},
                                                               {{1, 1}, {2, 3}},
                                                               {{6, 1, 1}, {1, 5, 7}}};
  bp::Generator gen(3);
  for (const auto& c : binary_cases()) {
    for (const auto& [sa, sb] : shapes) {
      for (bp::DType dt : {bp::f32, bp::f64}) {
        // Small integers make `equal` and `maximum` ties likely and keep division away from zero.
        bp::Tensor a = bp::rand(sa, gen, dt, 1.0, 4.0), b = bp::rand(sb, gen, dt, 1.0, 4.0);
        for (bp::Tensor* t : {&a, &b})
          for (std::int64_t i = 0; i < t->numel(); ++i)
            t->set(unravel(i, t->shape()), std::floor(t->flat(i)));
        const bp::Shape out = bp::broadcast_shapes(sa, sb);
        const bp::Tensor y = c.op(a, b);
        ASSERT_EQ(y.shape(), out) << c.name << " " << bp::to_string(sa) << " x " << bp::to_string(sb);
        EXPECT_EQ(y.dtype(), dt);
        const auto expected = naive_binary(a, b, out, c.ref);
        const auto got = y.to_vector();
        for (std::size_t i = 0; i < got.size(); ++i)
          ASSERT_NEAR(got[i], expected[i], 1e-6 * std::abs(expected[i]))
              << c.name << " " << bp::to_string(sa) << " x " << bp::to_string(sb) << " " << dt << " at " << i;
      }
    }
  }
}

TEST(Broadcast, IncompatibleShapesNameTheOpAndBothShapes) {
  const bp::Tensor a = bp::ones({3, 2}), b = bp::ones({4, 2});
  EXPECT_THAT([&] { bp::mul(a, b); }, ThrowsMessage<bp::ShapeError>(
                                          AllOf(HasSubstr("mul"), HasSubstr("[3, 2]"), HasSubstr("[4, 2]"))));
  EXPECT_THAT(
      [&] {
        bp::add(bp::ones({2, 3}), bp::ones({2}));
      },
      ThrowsMessage<bp::ShapeError>(AllOf(HasSubstr("add"), HasSubstr("3 vs 2"))));
}

TEST(Broadcast, BroadcastToAndSumToAreAdjoint) {
  bp::Generator gen(11);
  const bp::Tensor x = bp::randn({3, 1, 4}, gen, bp::f64);
  const bp::Tensor big = bp::broadcast_to(x, {2, 3, 5, 4});
  EXPECT_EQ(big.shape(), (bp::Shape{2, 3, 5, 4}));
  for (std::int64_t i = 0; i < big.numel(); ++i) {
    const auto idx = unravel(i, big.shape());
    ASSERT_EQ(big.flat(i), x.at({idx[1], 0, idx[3]}));
  }
  // <broadcast_to(x), y> == <x, sum_to(y)> for every y: the defining property of the adjoint pair.
  const bp::Tensor y = bp::randn({2, 3, 5, 4}, gen, bp::f64);
  const double lhs = bp::sum(bp::mul(big, y)).item();
  const double rhs = bp::sum(bp::mul(x, bp::sum_to(y, x.shape()))).item();
  EXPECT_NEAR(lhs, rhs, 1e-10);
  EXPECT_THAT([&] { bp::sum_to(y, {4, 4}); }, ThrowsMessage<bp::ShapeError>(HasSubstr("sum_to")));
  EXPECT_THAT(
      [&] {
        bp::broadcast_to(x, {3, 2, 5});
      },
      ThrowsMessage<bp::ShapeError>(HasSubstr("broadcast_to")));
}

// ---- reductions -------------------------------------------------------------------------------------------

TEST(Reduce, SumMeanMaxOverAllAndEachAxisWithAndWithoutKeepdim) {
  bp::Generator gen(5);
  for (bp::DType dt : {bp::f32, bp::f64}) {
    const bp::Tensor x = bp::randn({3, 4, 5}, gen, dt);
    const auto v = x.to_vector();
    double total = 0;
    for (double e : v) total += e;
    EXPECT_NEAR(bp::sum(x).item(), total, 1e-5);
    EXPECT_EQ(bp::sum(x).dim(), 0);
    EXPECT_NEAR(bp::mean(x).item(), total / 60, 1e-6);
    for (std::int64_t axis = -3; axis < 3; ++axis) {
      const std::int64_t ax = axis < 0 ? axis + 3 : axis;
      for (bool keepdim : {false, true}) {
        const bp::Tensor s = bp::sum(x, axis, keepdim), m = bp::mean(x, axis, keepdim),
                         mx = bp::max(x, axis, keepdim);
        const bp::Tensor am = bp::argmax(x, axis, keepdim);
        bp::Shape expect = x.shape();
        if (keepdim)
          expect[static_cast<std::size_t>(ax)] = 1;
        else
          expect.erase(expect.begin() + ax);
        ASSERT_EQ(s.shape(), expect);
        ASSERT_EQ(m.shape(), expect);
        ASSERT_EQ(mx.shape(), expect);
        ASSERT_EQ(am.shape(), expect);
        EXPECT_EQ(am.dtype(), bp::i64);
        // Naive: walk the reduced index space and the reduced axis explicitly.
        const std::int64_t n = x.shape()[static_cast<std::size_t>(ax)];
        for (std::int64_t o = 0; o < s.numel(); ++o) {
          auto idx = unravel(o, expect);
          if (!keepdim) idx.insert(idx.begin() + ax, 0);
          double acc = 0, best = -1e300;
          std::int64_t arg = -1;
          for (std::int64_t k = 0; k < n; ++k) {
            idx[static_cast<std::size_t>(ax)] = k;
            const double e = x.at(idx);
            acc += e;
            if (e > best) best = e, arg = k;
          }
          EXPECT_NEAR(s.flat(o), acc, 1e-5) << "axis " << axis;
          EXPECT_NEAR(m.flat(o), acc / static_cast<double>(n), 1e-6);
          EXPECT_EQ(mx.flat(o), best);
          EXPECT_EQ(am.flat(o), static_cast<double>(arg));
        }
      }
    }
  }
}

TEST(Reduce, MaxTakesTheFirstOfTiesAndRejectsEmptyAxes) {
  const bp::Tensor x = bp::tensor({{1, 3, 3, 0}, {2, 2, 2, 2}});
  EXPECT_EQ(bp::argmax(x, 1).to_vector(), (std::vector<double>{1, 0}));
  EXPECT_EQ(bp::max(x, 1).to_vector(), (std::vector<double>{3, 2}));
  EXPECT_THAT([] { bp::max(bp::zeros({2, 0}), 1); }, ThrowsMessage<bp::ShapeError>(HasSubstr("empty axis")));
  EXPECT_THAT([] { bp::mean(bp::zeros({0})); }, ThrowsMessage<bp::ValueError>(HasSubstr("empty")));
  EXPECT_THAT(
      [] {
        bp::sum(bp::zeros({2, 2}), 2);
      },
      ThrowsMessage<bp::IndexError>(AllOf(HasSubstr("sum"), HasSubstr("axis 2"))));
  EXPECT_EQ(bp::sum(bp::zeros({0, 3})).item(), 0.0);
}

// ---- softmax ----------------------------------------------------------------------------------------------

TEST(Softmax, StableForHugeLogits) {
  for (bp::DType dt : {bp::f32, bp::f64}) {
    const bp::Tensor x =
        bp::tensor({{1000, 1001, 1002}, {-1000, -1001, -1002}, {0, 1, 2}, {3e30, 3e30, -3e30}}, dt);
    const bp::Tensor p = bp::softmax(x, -1), lp = bp::log_softmax(x, -1);
    const double e1 = std::exp(1.0), e2 = std::exp(2.0), z = 1 + e1 + e2;
    for (std::int64_t r = 0; r < 3; ++r) {
      const bool down = r == 1;  // -1000, -1001, -1002 is the mirror image
      const std::vector<double> expect =
          down ? std::vector<double>{e2 / z, e1 / z, 1 / z} : std::vector<double>{1 / z, e1 / z, e2 / z};
      for (std::int64_t c = 0; c < 3; ++c) {
        EXPECT_NEAR(p.at({r, c}), expect[static_cast<std::size_t>(c)], 1e-6) << dt << " row " << r;
        EXPECT_NEAR(lp.at({r, c}), std::log(expect[static_cast<std::size_t>(c)]), 1e-5) << dt << " row " << r;
      }
    }
    EXPECT_NEAR(p.at({3, 0}), 0.5, 1e-6);
    EXPECT_EQ(p.at({3, 2}), 0.0);
    EXPECT_NEAR(lp.at({3, 0}), -std::log(2.0), 1e-5);
    EXPECT_TRUE(std::isfinite(lp.at({3, 2}))) << "log-softmax stays finite where softmax underflows";
  }
}

TEST(Softmax, MinusInfinityMasksAndAxisZero) {
  const double inf = std::numeric_limits<double>::infinity();
  const bp::Tensor x = bp::tensor({{0, -inf, 0}}, bp::f64);
  const bp::Tensor p = bp::softmax(x, 1);
  EXPECT_EQ(p.to_vector(), (std::vector<double>{0.5, 0, 0.5}));
  bp::Generator gen(2);
  const bp::Tensor y = bp::randn({4, 3}, gen, bp::f64);
  const bp::Tensor s0 = bp::softmax(y, 0);
  for (std::int64_t c = 0; c < 3; ++c) {
    double z = 0;
    for (std::int64_t r = 0; r < 4; ++r) z += std::exp(y.at({r, c}));
    for (std::int64_t r = 0; r < 4; ++r) EXPECT_NEAR(s0.at({r, c}), std::exp(y.at({r, c})) / z, 1e-14);
  }
  const bp::Tensor ls = bp::log_softmax(y, 0);
  for (std::int64_t i = 0; i < 12; ++i) EXPECT_NEAR(std::exp(ls.flat(i)), s0.flat(i), 1e-14);
}

// ---- GEMM -------------------------------------------------------------------------------------------------

TEST(Gemm, AllFourTransposeCombinationsInF32AndF64MatchANaiveLoop) {
  bp::Generator gen(17);
  const std::int64_t m = 7, k = 33, n = 5;
  for (bp::DType dt : {bp::f32, bp::f64}) {
    for (bool ta : {false, true}) {
      for (bool tb : {false, true}) {
        // Stored shapes: A is [m, k] or, transposed, [k, m]; B is [k, n] or [n, k].
        const bp::Tensor a = bp::randn(ta ? bp::Shape{k, m} : bp::Shape{m, k}, gen, dt);
        const bp::Tensor b = bp::randn(tb ? bp::Shape{n, k} : bp::Shape{k, n}, gen, dt);
        auto A = [&](std::int64_t i, std::int64_t p) { return ta ? a.at({p, i}) : a.at({i, p}); };
        auto B = [&](std::int64_t p, std::int64_t j) { return tb ? b.at({j, p}) : b.at({p, j}); };
        const double tol = dt == bp::f32 ? 1e-4 : 1e-12;
        // Through the op and through the raw kernel with alpha, beta.
        const bp::Tensor c = bp::mm(a, b, ta, tb);
        bp::Tensor c2 = bp::ones({m, n}, dt);
        bp::kernels::gemm(a, ta, b, tb, c2, 2.0, 0.5);
        ASSERT_EQ(c.shape(), (bp::Shape{m, n}));
        for (std::int64_t i = 0; i < m; ++i)
          for (std::int64_t j = 0; j < n; ++j) {
            double acc = 0;
            for (std::int64_t p = 0; p < k; ++p) acc += A(i, p) * B(p, j);
            EXPECT_NEAR(c.at({i, j}), acc, tol * (1 + std::abs(acc))) << dt << " ta=" << ta << " tb=" << tb;
            EXPECT_NEAR(c2.at({i, j}), 2 * acc + 0.5, tol * (1 + std::abs(acc)));
          }
      }
    }
  }
}

TEST(Gemm, BatchedMatmulAndEmptyInnerDimension) {
  bp::Generator gen(4);
  const bp::Tensor a = bp::randn({3, 2, 4}, gen, bp::f64), b = bp::randn({3, 4, 5}, gen, bp::f64);
  const bp::Tensor c = bp::matmul(a, b);
  ASSERT_EQ(c.shape(), (bp::Shape{3, 2, 5}));
  for (std::int64_t s = 0; s < 3; ++s)
    for (std::int64_t i = 0; i < 2; ++i)
      for (std::int64_t j = 0; j < 5; ++j) {
        double acc = 0;
        for (std::int64_t p = 0; p < 4; ++p) acc += a.at({s, i, p}) * b.at({s, p, j});
        EXPECT_NEAR(c.at({s, i, j}), acc, 1e-12);
      }
  const bp::Tensor z = bp::matmul(bp::ones({2, 0}), bp::ones({0, 3}));
  EXPECT_EQ(z.to_vector(), std::vector<double>(6, 0.0)) << "an empty sum is zero";
}

TEST(Gemm, MismatchNamesBothShapes) {
  EXPECT_THAT(
      [] {
        bp::matmul(bp::ones({64, 1568}), bp::ones({6272, 10}));
      },
      ThrowsMessage<bp::ShapeError>(HasSubstr("cannot multiply [64, 1568] by [6272, 10] (1568 != 6272)")));
  EXPECT_THAT(
      [] {
        bp::mm(bp::ones({3, 2}), bp::ones({2, 3}), false, true);
      },
      ThrowsMessage<bp::ShapeError>(HasSubstr("[3, 2] by [2, 3]^T (2 != 3)")));
  EXPECT_THAT(
      [] {
        bp::matmul(bp::ones({2, 3, 4}), bp::ones({3, 4, 5}));
      },
      ThrowsMessage<bp::ShapeError>(
          HasSubstr("batch dims [2] of [2, 3, 4] and [3] of [3, 4, 5] do not broadcast")));
  EXPECT_THAT(
      [] {
        bp::mm(bp::ones({2, 3, 4}), bp::ones({3, 4, 5}));
      },
      ThrowsMessage<bp::ShapeError>(HasSubstr("batch sizes differ")));
  EXPECT_THAT(
      [] {
        bp::mm(bp::ones({3}), bp::ones({3, 2}));
      },
      ThrowsMessage<bp::ShapeError>(HasSubstr("expected two 2-D or two 3-D")));
}

TEST(Gemm, LinearIsXWTransposedPlusBias) {
  bp::Generator gen(8);
  for (bp::DType dt : {bp::f32, bp::f64}) {
    const bp::Tensor x = bp::randn({6, 4}, gen, dt), w = bp::randn({3, 4}, gen, dt),
                     b = bp::randn({3}, gen, dt);
    const bp::Tensor y = bp::linear(x, w, b), y0 = bp::linear(x, w);
    const double tol = dt == bp::f32 ? 1e-5 : 1e-13;
    for (std::int64_t i = 0; i < 6; ++i)
      for (std::int64_t o = 0; o < 3; ++o) {
        double acc = 0;
        for (std::int64_t p = 0; p < 4; ++p) acc += x.at({i, p}) * w.at({o, p});
        EXPECT_NEAR(y0.at({i, o}), acc, tol);
        EXPECT_NEAR(y.at({i, o}), acc + b.at({o}), tol);
      }
  }
  EXPECT_THAT(
      [] {
        bp::linear(bp::ones({2, 5}), bp::ones({3, 4}));
      },
      ThrowsMessage<bp::ShapeError>(AllOf(HasSubstr("5 features"), HasSubstr("[3, 4]"))));
  EXPECT_THAT(
      [] {
        bp::linear(bp::ones({2, 4}), bp::ones({3, 4}), bp::ones({4}));
      },
      ThrowsMessage<bp::ShapeError>(AllOf(HasSubstr("bias [4]"), HasSubstr("expected [3]"))));
}

// ---- determinism across thread counts ---------------------------------------------------------------------

TEST(Threads, OneAndTwoThreadsGiveBitIdenticalResults) {
  SKIP_WITHOUT_TWO_CPUS();
  bp::Generator gen(21);
  for (bp::DType dt : {bp::f32, bp::f64}) {
    const bp::Tensor x = bp::randn({1 << 20}, gen, dt);
    const bp::Tensor m = bp::randn({512, 2048}, gen, dt);
    const bp::Tensor row = bp::randn({2048}, gen, dt);
    auto run = [&] {
      bp::Tensors r;
      r.push_back(bp::sum(x));
      r.push_back(bp::mean(x));
      r.push_back(bp::sum(m, 0));
      r.push_back(bp::sum(m, 1));
      r.push_back(bp::max(m, 1));
      r.push_back(bp::exp(x));
      r.push_back(bp::tanh(x));
      r.push_back(bp::sigmoid(x));
      r.push_back(bp::mul(x, x));
      r.push_back(bp::add(m, row));  // broadcast path
      r.push_back(bp::softmax(m, 1));
      r.push_back(bp::sum_to(m, {1, 2048}));
      return r;
    };
    const bp::Tensors one = with_threads(1, run);
    EXPECT_TRUE(testutil::on_two_threads([&] {
      const bp::Tensors two = with_threads(2, run);
      ASSERT_EQ(one.size(), two.size());
      for (std::size_t i = 0; i < one.size(); ++i)
        EXPECT_TRUE(bit_identical(one[i], two[i])) << "result " << i << " " << dt;
    })) << dt;
  }
}

TEST(Kernels, UnaryMapsAgreeWithTheStandardLibrary) {
  bp::Generator gen(12);
  const bp::Tensor x = bp::rand({1000}, gen, bp::f64, -5.0, 5.0);
  using U = bp::kernels::Unary;
  const std::vector<std::pair<U, std::function<double(double)>>> cases = {
      {U::neg, [](double v) { return -v; }},
      {U::exp, [](double v) { return std::exp(v); }},
      {U::abs, [](double v) { return std::abs(v); }},
      {U::sign, [](double v) { return v > 0 ? 1.0 : (v < 0 ? -1.0 : 0.0); }},
      {U::sigmoid, [](double v) { return 1 / (1 + std::exp(-v)); }},
      {U::tanh, [](double v) { return std::tanh(v); }},
      {U::relu, [](double v) { return v > 0 ? v : 0.0; }},
  };
  for (const auto& [op, f] : cases) {
    const bp::Tensor y = bp::kernels::unary(op, x);
    for (std::int64_t i = 0; i < x.numel(); ++i)
      ASSERT_NEAR(y.flat(i), f(x.flat(i)), 1e-14) << static_cast<int>(op);
  }
  // The sigmoid saturates without overflow at both ends.
  const bp::Tensor s = bp::sigmoid(bp::tensor({-1000, 1000}, bp::f64));
  EXPECT_EQ(s.to_vector(), (std::vector<double>{0, 1}));
}
