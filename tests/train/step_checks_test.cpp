// The per-step checks of the training loop: all_finite (over every gradient) and accuracy (of every batch),
// against hand-computed answers, in both dtypes, at block edges and with ties and NaNs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/train.hpp>
#include <cmath>
#include <limits>

namespace bp = backprop;
using ::testing::HasSubstr;

namespace {

template <class T>
bp::Tensor filled(std::int64_t n, T value) {
  bp::Tensor t({n}, std::is_same_v<T, float> ? bp::f32 : bp::f64);
  T* p = t.data<T>();
  for (std::int64_t i = 0; i < n; ++i) p[i] = value;
  return t;
}

template <class T>
void check_all_finite() {
  using L = std::numeric_limits<T>;
  // 10000 elements: two full blocks of 4096 and a short one.
  bp::Tensor t = filled<T>(10000, T(0.5));
  T* p = t.data<T>();
  p[0] = L::max();
  p[1] = L::lowest();
  p[2] = L::denorm_min();
  p[3] = T(-0.0);
  EXPECT_TRUE(bp::train::all_finite(t));
  for (std::int64_t at : {std::int64_t{0}, std::int64_t{4095}, std::int64_t{4096}, std::int64_t{9999}}) {
    for (T bad : {L::quiet_NaN(), -L::quiet_NaN(), L::infinity(), -L::infinity()}) {
      const T saved = p[at];
      p[at] = bad;
      EXPECT_FALSE(bp::train::all_finite(t)) << bad << " at " << at;
      p[at] = saved;
    }
  }
  EXPECT_TRUE(bp::train::all_finite(t));
  EXPECT_TRUE(bp::train::all_finite(bp::Tensor({0}, t.dtype())));
}

}  // namespace

TEST(StepChecks, AllFiniteFindsEveryNonFiniteValueF32) {
  check_all_finite<float>();
}

TEST(StepChecks, AllFiniteFindsEveryNonFiniteValueF64) {
  check_all_finite<double>();
}

TEST(StepChecks, AccuracyCountsTheFirstMaximumOfEachRow) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  // Row 0: argmax 2. Row 1: a tie between 0 and 2, the first wins. Row 2: a NaN counts as the maximum.
  // Row 3: argmax 1. Targets 2, 2, 1, 1: rows 0, 2 and 3 are right.
  for (bp::DType dt : {bp::f32, bp::f64}) {
    bp::Tensor out = bp::tensor({{0.1, 0.2, 0.7}, {0.5, 0.0, 0.5}, {0.9, 0.0, 0.1}, {-3, -1, -2}}, dt);
    out.set({2, 1}, nan);
    for (bp::DType target_dt : {bp::f32, bp::f64}) {
      const bp::Tensor targets = bp::tensor({2, 2, 1, 1}, target_dt);
      EXPECT_DOUBLE_EQ(bp::train::accuracy(out, targets), 0.75);
    }
  }
  // Targets that are no class index (2.5) never match.
  EXPECT_DOUBLE_EQ(bp::train::accuracy(bp::tensor({{0, 1, 2}, {2, 1, 0}}), bp::tensor({2.5, 0})), 0.5);
}

TEST(StepChecks, AccuracyOfNoRowsIsNone) {
  EXPECT_TRUE(std::isnan(bp::train::accuracy(bp::Tensor({0, 3}, bp::f32), bp::Tensor({0}, bp::f32))));
}

TEST(StepChecks, AccuracyRejectsMismatchedShapes) {
  try {
    bp::train::accuracy(bp::tensor({{0, 1}, {1, 0}}), bp::tensor({1, 0, 1}));
    FAIL() << "no error";
  } catch (const bp::ShapeError& e) {
    EXPECT_THAT(e.what(), HasSubstr("accuracy: expected outputs [N, C] and N targets"));
  }
  EXPECT_THROW(bp::train::accuracy(bp::tensor({1, 0}), bp::tensor({1, 0})), bp::ShapeError);
  EXPECT_THROW(bp::train::accuracy(bp::Tensor({2, 0}, bp::f32), bp::tensor({1, 0})), bp::ShapeError);
}
