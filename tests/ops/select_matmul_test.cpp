// where, masked_fill, clamp with tensor bounds, torch.matmul's broadcasting and 1-D cases, bmm and einsum: values
// against direct computations, the error messages, and bmm's batch split on the thread pool. Derivatives are in
// the op table; values against PyTorch in the golden file.
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <cmath>
#include <limits>

#include "kernels/row_pool.hpp"

namespace bp = backprop;

namespace {

template <class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const bp::Error& e) {
    return e.what();
  }
  return "no error";
}

bp::Tensor randn(const bp::Shape& shape, std::uint64_t seed, bp::DType dtype = bp::f64) {
  bp::Generator gen(seed);
  return bp::randn(shape, gen, dtype);
}

void expect_all_near(const bp::Tensor& got, const bp::Tensor& want, double tol) {
  ASSERT_EQ(got.shape(), want.shape());
  for (std::int64_t k = 0; k < got.numel(); ++k) ASSERT_NEAR(got.flat(k), want.flat(k), tol) << "at " << k;
}

const double kInf = std::numeric_limits<double>::infinity();

TEST(Where, SelectsWithBroadcastingAndAnyNonZeroOrNaNIsTrue) {
  const bp::Tensor cond = bp::from_vector({0.0, 2.0, std::nan(""), -1.0}, {4, 1}, bp::f64);
  const bp::Tensor a = bp::from_vector({1.0, 2.0, 3.0}, {3}, bp::f64);
  const bp::Tensor y = bp::where(cond, a, bp::scalar(-7.0, bp::f64));
  ASSERT_EQ(y.shape(), (bp::Shape{4, 3}));
  for (std::int64_t j = 0; j < 3; ++j) {
    EXPECT_EQ(y.at({0, j}), -7.0);
    for (std::int64_t i = 1; i < 4; ++i) EXPECT_EQ(y.at({i, j}), a.flat(j));
  }
}

TEST(Where, ConditionOfAnotherDtypeIsReadInItsOwn) {
  // 1e-60 is non-zero in f64 but would round to an f32 zero.
  const bp::Tensor cond = bp::from_vector({1e-60, 0.0}, {2}, bp::f64);
  const bp::Tensor y = bp::where(cond, bp::full({2}, 1.0, bp::f32), bp::full({2}, 2.0, bp::f32));
  EXPECT_EQ(y.dtype(), bp::f32);
  EXPECT_EQ(y.flat(0), 1.0);
  EXPECT_EQ(y.flat(1), 2.0);
}

TEST(Where, InfinityInTheUnselectedBranchDoesNotReachTheGradient) {
  // A masked softmax: -inf where masked, the gradient there is exactly 0 and finite everywhere.
  const bp::Tensor x = randn({2, 4}, 1).requires_grad_();
  const bp::Tensor mask = bp::from_vector({0, 0, 1, 1, 0, 1, 0, 1}, {2, 4}, bp::f64);
  const bp::Tensor p = bp::softmax(bp::masked_fill(x, mask, -kInf), -1);
  EXPECT_EQ(p.at({0, 2}), 0.0);
  bp::sum(p * randn({2, 4}, 2)).backward();
  for (std::int64_t k = 0; k < 8; ++k) {
    EXPECT_TRUE(std::isfinite(x.grad().flat(k))) << k;
    if (mask.flat(k) != 0) {
      EXPECT_EQ(x.grad().flat(k), 0.0) << k;
    }
  }
}

TEST(Where, ErrorsNameTheOpTheArgumentsAndTheShapes) {
  const bp::Tensor x = bp::zeros({3}, bp::f64);
  EXPECT_EQ(error_of([&] { bp::where(bp::zeros({2}), x, x); }),
            "where: shapes do not broadcast (condition [2], input [3], other [3])");
  EXPECT_EQ(error_of([&] { bp::where(x, x, bp::zeros({3}, bp::f32)); }),
            "where: other is f32 [3] but input is f64 [3]; convert one with .to()");
  EXPECT_EQ(error_of([&] {
              bp::masked_fill(x, bp::zeros({2, 3}, bp::f64), 0.0);
            }),
            "masked_fill: mask [2, 3] does not broadcast to input [3] (the result would be [2, 3])");
  EXPECT_EQ(error_of([&] { bp::masked_fill(x, bp::zeros({4}), 0.0); }),
            "masked_fill: shapes do not broadcast (input [3], mask [4])");
  EXPECT_EQ(error_of([&] { bp::masked_fill(x, x, bp::zeros({1}, bp::f64)); }),
            "masked_fill: value must be a 0-dim tensor, got [1]");
}

TEST(ClampTensor, MatchesTheScalarClampAndGivesMaxWhenBoundsCross) {
  const bp::Tensor x = randn({3, 5}, 3);
  expect_all_near(bp::clamp(x, bp::scalar(-0.5, bp::f64), bp::scalar(0.5, bp::f64)), bp::clamp(x, -0.5, 0.5),
                  0);
  expect_all_near(bp::clamp(x, bp::scalar(-0.5, bp::f64), bp::Tensor()), bp::clamp(x, -0.5, kInf), 0);
  expect_all_near(bp::clamp(x, bp::Tensor(), bp::scalar(0.5, bp::f64)), bp::clamp(x, -kInf, 0.5), 0);
  // Per-column bounds with min > max in the last column: the result there is max.
  const bp::Tensor lo = bp::from_vector({-1.0, -0.2, 0.0, 0.1, 0.9}, {5}, bp::f64);
  const bp::Tensor hi = bp::from_vector({1.0, 0.2, 0.5, 0.1, -0.9}, {5}, bp::f64);
  const bp::Tensor y = bp::clamp(x, lo, hi);
  for (std::int64_t i = 0; i < 3; ++i)
    for (std::int64_t j = 0; j < 5; ++j)
      EXPECT_EQ(y.at({i, j}), std::min(std::max(x.at({i, j}), lo.flat(j)), hi.flat(j)));
  EXPECT_TRUE(std::isnan(bp::clamp(bp::scalar(std::nan(""), bp::f64), lo, hi).flat(0)));
}

TEST(ClampTensor, Errors) {
  const bp::Tensor x = bp::zeros({2, 3}, bp::f64);
  EXPECT_EQ(error_of([&] { bp::clamp(x, bp::Tensor(), bp::Tensor()); }),
            "clamp: at least one of min and max must be given");
  EXPECT_EQ(error_of([&] { bp::clamp(x, bp::zeros({2}, bp::f64), bp::Tensor()); }),
            "clamp: shapes do not broadcast (input [2, 3], min [2])");
  EXPECT_EQ(error_of([&] { bp::clamp(x, bp::Tensor(), bp::zeros({3}, bp::f32)); }),
            "clamp: max is f32 [3] but input is f64 [2, 3]; convert one with .to()");
}

/// The product of each batch entry as a 2-D matmul, for [S, M, K] x [S, K, N] given as 3-D tensors.
bp::Tensor loop_of_products(const bp::Tensor& a, const bp::Tensor& b) {
  bp::Tensors rows;
  for (std::int64_t s = 0; s < a.size(0); ++s)
    rows.push_back(
        bp::matmul(bp::squeeze(bp::narrow(a, 0, s, 1), 0), bp::squeeze(bp::narrow(b, 0, s, 1), 0)));
  return bp::stack(rows, 0);
}

TEST(Matmul, BroadcastBatchDimsEqualThe2dProductOfEachPair) {
  const bp::Tensor a = randn({2, 1, 3, 4}, 4), b = randn({3, 4, 5}, 5);
  const bp::Tensor y = bp::matmul(a, b);
  ASSERT_EQ(y.shape(), (bp::Shape{2, 3, 3, 5}));
  const bp::Tensor want = loop_of_products(bp::reshape(bp::expand(a, {2, 3, 3, 4}), {6, 3, 4}),
                                           bp::reshape(bp::expand(b, {2, 3, 4, 5}), {6, 4, 5}));
  expect_all_near(bp::reshape(y, {6, 3, 5}), want, 1e-14);
}

TEST(Matmul, OneDimensionalOperandsAsInTorch) {
  const bp::Tensor v = randn({4}, 6), m = randn({4, 3}, 7), w = randn({3, 4}, 8), t = randn({2, 4, 3}, 9);
  EXPECT_EQ(bp::matmul(v, v).shape(), bp::Shape{});
  EXPECT_NEAR(bp::matmul(v, v).item(), bp::sum(v * v).item(), 1e-14);
  EXPECT_EQ(bp::matmul(v, m).shape(), (bp::Shape{3}));
  expect_all_near(bp::matmul(v, m), bp::sum(bp::unsqueeze(v, 1) * m, 0), 1e-14);
  EXPECT_EQ(bp::matmul(w, v).shape(), (bp::Shape{3}));
  expect_all_near(bp::matmul(w, v), bp::sum(w * v, 1), 1e-14);
  EXPECT_EQ(bp::matmul(v, t).shape(), (bp::Shape{2, 3}));
  EXPECT_EQ(bp::matmul(bp::reshape(t, {2, 1, 4, 3}), bp::from_vector({1.0, 0.0, 0.0}, {3}, bp::f64)).shape(),
            (bp::Shape{2, 1, 4}));
  // [..., M, K] x [K, N] is one product over all rows.
  expect_all_near(bp::matmul(t, w), loop_of_products(t, bp::stack({w, w}, 0)), 1e-14);
}

TEST(Matmul, ErrorsNameBothShapes) {
  EXPECT_EQ(error_of([] {
              bp::matmul(bp::zeros({2, 3, 4}), bp::zeros({5, 6}));
            }),
            "matmul: cannot multiply [2, 3, 4] by [5, 6] (4 != 5)");
  EXPECT_EQ(error_of([] {
              bp::matmul(bp::zeros({2, 3, 4}), bp::zeros({3, 4, 5}));
            }),
            "matmul: batch dims [2] of [2, 3, 4] and [3] of [3, 4, 5] do not broadcast (2 vs 3)");
  EXPECT_EQ(error_of([] { bp::matmul(bp::zeros({}), bp::zeros({3})); }),
            "matmul: both operands need at least 1 dim, got [] and [3]");
  EXPECT_EQ(error_of([] { bp::matmul(bp::zeros({3}), bp::zeros({3}, bp::f64)); }),
            "matmul: dtypes differ (f32 [3] vs f64 [3])");
}

TEST(Bmm, ErrorsNameTheOp) {
  EXPECT_EQ(error_of([] {
              bp::bmm(bp::zeros({3, 4}), bp::zeros({4, 5}));
            }),
            "bmm: expected two 3-D tensors [B, n, k] and [B, k, m], got [3, 4] and [4, 5]");
  EXPECT_EQ(error_of([] {
              bp::bmm(bp::zeros({2, 3, 4}), bp::zeros({3, 4, 5}));
            }),
            "bmm: batch sizes differ: [2, 3, 4] and [3, 4, 5] (2 != 3)");
  EXPECT_EQ(error_of([] {
              bp::bmm(bp::zeros({2, 3, 4}), bp::zeros({2, 5, 6}));
            }),
            "bmm: cannot multiply [2, 3, 4] by [2, 5, 6] (4 != 5)");
}

TEST(Bmm, AttentionSizedBatchRunsOnThePoolWithBitIdenticalResults) {
  // 64 products of 64 x 64 x 64 (2^18 multiply-adds each, too small for a row split): with 2 threads the batch
  // is spread over the pool in pieces, and every entry is computed as alone.
  const bp::Tensor a = randn({64, 64, 64}, 10, bp::f32), b = randn({64, 64, 64}, 11, bp::f32);
  bp::set_num_threads(1);
  const bp::Tensor one = bp::bmm(a, b);
  bp::set_num_threads(2);
  const auto before = bp::kernels::chunk_counts();
  const bp::Tensor two = bp::bmm(a, b);
  const auto after = bp::kernels::chunk_counts();
  EXPECT_GT((after.by_callers + after.by_helpers) - (before.by_callers + before.by_helpers), 1u);
  for (std::int64_t k = 0; k < one.numel(); ++k) ASSERT_EQ(one.flat(k), two.flat(k)) << k;
  expect_all_near(bp::squeeze(bp::narrow(one, 0, 5, 1), 0),
                  bp::matmul(bp::squeeze(bp::narrow(a, 0, 5, 1), 0), bp::squeeze(bp::narrow(b, 0, 5, 1), 0)),
                  0);
  bp::set_num_threads(1);
}

TEST(Einsum, AttentionBilinearAndEllipsisAgreeWithTheOpsTheyStandFor) {
  const bp::Tensor q = randn({2, 3, 5, 4}, 12), k = randn({2, 3, 6, 4}, 13);
  const bp::Tensor scores = bp::einsum("bhqd,bhkd->bhqk", {q, k});
  expect_all_near(scores, bp::matmul(q, bp::transpose(k, -1, -2)), 1e-13);
  const bp::Tensor v = randn({2, 3, 6, 4}, 14);
  expect_all_near(bp::einsum("bhqk,bhkd->bhqd", {scores, v}), bp::matmul(scores, v), 1e-12);
  const bp::Tensor x = randn({4, 3}, 15), w = randn({3, 2}, 16), z = randn({4, 2}, 17);
  expect_all_near(bp::einsum("bi,ij,bj->b", {x, w, z}), bp::sum(bp::matmul(x, w) * z, 1), 1e-13);
  const bp::Tensor a = randn({2, 1, 3, 4}, 18), b = randn({5, 4, 2}, 19);
  expect_all_near(bp::einsum("...ij,...jk->...ik", {a, b}), bp::matmul(a, b), 1e-13);
  expect_all_near(bp::einsum("ij->ji", {x}), bp::transpose(x), 0);
  expect_all_near(bp::einsum("ij,jk", {x, w}), bp::matmul(x, w), 1e-13);
  expect_all_near(bp::einsum(" i j , j k -> k i ", {x, w}), bp::transpose(bp::matmul(x, w)), 1e-13);
}

TEST(Einsum, UnsupportedOrMalformedEquationsNameTheEquation) {
  const bp::Tensor x = bp::zeros({3, 3}), y = bp::zeros({3, 4});
  EXPECT_EQ(
      error_of([&] { bp::einsum("ii->i", {x}); }),
      "einsum('ii->i'): subscript 'i' repeats in operand 0 ('ii'); repeated subscripts (diagonals) are not "
      "supported");
  EXPECT_EQ(error_of([&] { bp::einsum("ij,jk->ik", {x}); }),
            "einsum('ij,jk->ik'): the equation names 2 operand(s) but 1 were given");
  EXPECT_EQ(error_of([&] { bp::einsum("ijk->i", {x}); }),
            "einsum('ijk->i'): operand 0 has shape [3, 3] but its subscripts 'ijk' name 3 dims");
  EXPECT_EQ(error_of([&] {
              bp::einsum("ij,jk->iz", {x, y});
            }),
            "einsum('ij,jk->iz'): output subscript 'z' appears in no operand");
  EXPECT_EQ(
      error_of([&] {
        bp::einsum("ij,kj->ik", {x, y});
      }),
      "einsum('ij,kj->ik'): subscript 'j' has size 4 in operand 1 but size 3 in operand 0 (they must match "
      "or one be 1)");
  EXPECT_EQ(error_of([&] {
              bp::einsum("i1,jk", {x, y});
            }),
            "einsum('i1,jk'): operand 0 ('i1') has the character '1'; expected letters, '...', ',' and '->'");
  EXPECT_EQ(error_of([&] { bp::einsum("i..j->ij", {x}); }),
            "einsum('i..j->ij'): operand 0 ('i..j') has a '.' that is not part of a single '...'");
  EXPECT_EQ(
      error_of([&] { bp::einsum("ij->ii", {x}); }),
      "einsum('ij->ii'): subscript 'i' repeats in the output ('ii'); repeated subscripts (diagonals) are not "
      "supported");
}

}  // namespace
