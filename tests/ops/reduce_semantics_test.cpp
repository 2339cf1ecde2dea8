// Reductions over sets of dims, max/min/argmin/topk on any dim and softmax on any dim: what they compute on
// hand-checked inputs, how ties, NaN and zeros are treated, and the errors of misuse. (Gradients of every op
// are checked by the op table and against PyTorch by the golden file.)
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <cmath>
#include <limits>

namespace bp = backprop;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

namespace {
std::vector<double> values(const bp::Tensor& t) {
  return t.to_vector();
}
}  // namespace

TEST(ReduceDims, ASetOfDimsEqualsOneAxisAfterAnother) {
  bp::Generator gen(3);
  const bp::Tensor x = bp::randn({2, 3, 4, 5}, gen, bp::f64);
  const bp::Tensor one_by_one = bp::sum(bp::sum(x, 3), 1);
  const bp::Tensor at_once = bp::sum(x, {3, -3});
  ASSERT_EQ(at_once.shape(), (bp::Shape{2, 4}));
  for (std::int64_t i = 0; i < 8; ++i) EXPECT_NEAR(at_once.flat(i), one_by_one.flat(i), 1e-12);
  EXPECT_EQ(bp::sum(x, {1, 3}, true).shape(), (bp::Shape{2, 1, 4, 1}));
  EXPECT_EQ(bp::sum(x, bp::Dims{}).shape(), bp::Shape{});
  EXPECT_NEAR(bp::sum(x, bp::Dims{}).item(), bp::sum(x).item(), 1e-12);
  EXPECT_EQ(bp::amax(x, {0, 1, 2, 3}, true).shape(), (bp::Shape{1, 1, 1, 1}));
  EXPECT_EQ(bp::amax(x).item(), bp::max(bp::reshape(x, {-1}), 0).item());
  EXPECT_EQ(bp::amin(x, {2}).to_vector(), bp::min(x, 2).to_vector());
  EXPECT_NEAR(bp::mean(x, {0, 2}).flat(0), bp::sum(x, {0, 2}).flat(0) / 8, 1e-15);
}

TEST(ReduceDims, ZeroDimensionalInputsReduceToThemselves) {
  const bp::Tensor s = bp::scalar(2.5, bp::f64);
  EXPECT_EQ(bp::sum(s, bp::Dims{}).item(), 2.5);
  EXPECT_EQ(bp::amax(s).item(), 2.5);
  EXPECT_EQ(bp::logsumexp(s).item(), 2.5);
  EXPECT_EQ(bp::norm(s).item(), 2.5);
  EXPECT_EQ(bp::sum(s, bp::Dims{0}).item(), 2.5);  // dim 0 and -1 name the one element, as in PyTorch
  EXPECT_EQ(bp::amin(s, {-1}, true).shape(), bp::Shape{});
  EXPECT_THAT([&] { bp::sum(s, bp::Dims{1}); }, ThrowsMessage<bp::IndexError>(HasSubstr("expected -1..0")));
}

TEST(ReduceDims, AmaxAndAminShareTheGradientAmongTies) {
  bp::Tensor x = bp::tensor({1.0, 3.0, 3.0, 2.0, -1.0, -1.0}, bp::f64).reshape({2, 3}).requires_grad_();
  bp::sum(bp::amax(x, {1})).backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{0, 0.5, 0.5, 1, 0, 0}));
  x.zero_grad();
  bp::sum(bp::amin(x)).backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{0, 0, 0, 0, 0.5, 0.5}));
  // max along a dim picks one index, as PyTorch's torch.max(x, dim) does.
  x.zero_grad();
  bp::sum(bp::max_with_indices(x, 1).values).backward();
  EXPECT_EQ(values(x.grad()), (std::vector<double>{0, 1, 0, 1, 0, 0}));
}

TEST(ReduceDims, MaxMinArgminAndTheirIndices) {
  const bp::Tensor x = bp::tensor({4.0, 1.0, 7.0, 1.0, 9.0, 0.0}, bp::f64).reshape({2, 3});
  const bp::ValuesIndices mx = bp::max_with_indices(x, 0);
  EXPECT_EQ(values(mx.values), (std::vector<double>{4, 9, 7}));
  EXPECT_EQ(values(mx.indices), (std::vector<double>{0, 1, 0}));
  EXPECT_EQ(mx.indices.dtype(), bp::i64);
  const bp::ValuesIndices mn = bp::min_with_indices(x, -1, true);
  EXPECT_EQ(mn.values.shape(), (bp::Shape{2, 1}));
  EXPECT_EQ(values(mn.values), (std::vector<double>{1, 0}));
  EXPECT_EQ(values(mn.indices), (std::vector<double>{1, 2}));
  EXPECT_EQ(values(bp::argmin(x, 0)), (std::vector<double>{1, 0, 1}));
  EXPECT_EQ(values(bp::argmin(x, 1, true)), (std::vector<double>{1, 2}));
  EXPECT_EQ(values(bp::argmax(x, 0)), (std::vector<double>{0, 1, 0}));
  // NaN counts as the extreme both ways, so it propagates.
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const bp::Tensor y = bp::tensor({1.0, nan, 3.0}, bp::f64).reshape({1, 3});
  EXPECT_TRUE(std::isnan(bp::min(y, 1).item()));
  EXPECT_EQ(bp::argmin(y, 1).item(), 1);
  EXPECT_TRUE(std::isnan(bp::amax(y).item()));
}

TEST(ReduceDims, TopkOrdersValuesAndKeepsIndexOrderOnTies) {
  const bp::Tensor x = bp::tensor({3.0, 1.0, 3.0, 5.0, 2.0}, bp::f64);
  const bp::ValuesIndices top = bp::topk(x, 3);
  EXPECT_EQ(values(top.values), (std::vector<double>{5, 3, 3}));
  EXPECT_EQ(values(top.indices), (std::vector<double>{3, 0, 2}));
  const bp::ValuesIndices low = bp::topk(x, 2, 0, false);
  EXPECT_EQ(values(low.values), (std::vector<double>{1, 2}));
  EXPECT_EQ(values(low.indices), (std::vector<double>{1, 4}));
  const bp::ValuesIndices unsorted = bp::topk(x, 3, 0, true, false);
  EXPECT_EQ(values(unsorted.indices), (std::vector<double>{0, 2, 3}));
  EXPECT_EQ(bp::topk(x, 0).values.shape(), (bp::Shape{0}));
  // Along a middle dim of a 3-D tensor: columns of each matrix.
  const bp::Tensor m = bp::arange(12, bp::f64).reshape({2, 3, 2});
  const bp::ValuesIndices col = bp::topk(m, 1, 1);
  EXPECT_EQ(col.values.shape(), (bp::Shape{2, 1, 2}));
  EXPECT_EQ(values(col.values), (std::vector<double>{4, 5, 10, 11}));
  bp::Tensor v = bp::tensor({3.0, 1.0, 3.0, 5.0, 2.0}, bp::f64).requires_grad_();
  bp::sum(bp::topk(v, 2).values * bp::tensor({10.0, 1.0}, bp::f64)).backward();
  EXPECT_EQ(values(v.grad()), (std::vector<double>{1, 0, 0, 10, 0}));
}

TEST(ReduceDims, NormAndStdHaveZeroSubgradientAtZero) {
  for (const double p : {1.0, 2.0, std::numeric_limits<double>::infinity()}) {
    bp::Tensor z = bp::zeros({2, 3}, bp::f64).requires_grad_();
    bp::Tensor n = bp::norm(z, p, {1});
    EXPECT_EQ(values(n), (std::vector<double>{0, 0})) << "p = " << p;
    bp::sum(n).backward();
    EXPECT_EQ(values(z.grad()), std::vector<double>(6, 0.0)) << "p = " << p;
  }
  bp::Tensor c = bp::full({4}, 2.0, bp::f64).requires_grad_();
  const bp::Tensor s = bp::std(c);
  EXPECT_EQ(s.item(), 0.0);
  s.backward();
  EXPECT_EQ(values(c.grad()), std::vector<double>(4, 0.0));
  const bp::Tensor x = bp::tensor({3.0, -4.0}, bp::f64);
  EXPECT_EQ(bp::norm(x).item(), 5.0);
  EXPECT_EQ(bp::norm(x, 1).item(), 7.0);
  EXPECT_EQ(bp::norm(x, -std::numeric_limits<double>::infinity()).item(), 3.0);
  EXPECT_NEAR(bp::norm(x, 3).item(), std::cbrt(91.0), 1e-14);
  EXPECT_EQ(bp::var(x).item(), 24.5);
  EXPECT_EQ(bp::var(x, {}, 0).item(), 12.25);
  EXPECT_EQ(bp::std(x, {0}, 0).item(), 3.5);
}

TEST(ReduceDims, LogsumexpIsStableAtLargeAndInfiniteValues) {
  const double inf = std::numeric_limits<double>::infinity();
  const bp::Tensor x = bp::tensor({1000.0, 1000.0, -inf, -inf, 2.0, inf}, bp::f64).reshape({3, 2});
  const bp::Tensor y = bp::logsumexp(x, {1});
  EXPECT_NEAR(y.flat(0), 1000.0 + std::log(2.0), 1e-12);
  EXPECT_EQ(y.flat(1), -inf);
  EXPECT_EQ(y.flat(2), inf);
  const bp::Tensor f = bp::logsumexp(bp::tensor({100.0f, 100.0f}), {0});
  EXPECT_NEAR(f.item(), 100.0 + std::log(2.0), 1e-4);
}

TEST(ReduceDims, SoftmaxOnAnyDimAgreesWithTheLastDimPath) {
  // 300 inner positions: more than one block of the strided path, and a partial one.
  for (const bp::DType dtype : {bp::f32, bp::f64}) {
    bp::Generator gen(5);
    const bp::Tensor x = bp::randn({4, 300}, gen, dtype, 0.0, 3.0);
    const bp::Tensor xt = bp::transpose(x);
    EXPECT_EQ(values(bp::softmax(x, 0)), values(bp::transpose(bp::softmax(xt, 1))));
    EXPECT_EQ(values(bp::log_softmax(x, 0)), values(bp::transpose(bp::log_softmax(xt, 1))));
  }
}

TEST(ReduceDims, ErrorsNameTheOpTheArgumentTheShapeAndTheDim) {
  const bp::Tensor x = bp::zeros({2, 3});
  EXPECT_THAT(
      [&] {
        bp::sum(x, {0, 2});
      },
      ThrowsMessage<bp::IndexError>(
          AllOf(HasSubstr("sum: dim 2"), HasSubstr("dims [0, 2]"), HasSubstr("[2, 3]"))));
  EXPECT_THAT(
      [&] {
        bp::amax(x, {1, -1});
      },
      ThrowsMessage<bp::ValueError>(
          AllOf(HasSubstr("amax: dim -1 appears twice"), HasSubstr("[1, -1]"), HasSubstr("[2, 3]"))));
  EXPECT_THAT([&] { bp::var(x, {-3}); }, ThrowsMessage<bp::IndexError>(HasSubstr("var: dim -3")));
  EXPECT_THAT([&] { bp::topk(x, 4, 1); },
              ThrowsMessage<bp::ValueError>(AllOf(HasSubstr("topk: k = 4"), HasSubstr("dim 1"),
                                                  HasSubstr("[2, 3]"), HasSubstr("0..3"))));
  EXPECT_THAT([&] { bp::argmin(x, 2); }, ThrowsMessage<bp::IndexError>(HasSubstr("argmin: axis 2")));
  EXPECT_THAT(
      [&] {
        bp::amin(bp::zeros({2, 0}), {1});
      },
      ThrowsMessage<bp::ShapeError>(AllOf(HasSubstr("amin"), HasSubstr("[2, 0]"))));
  EXPECT_THAT(
      [&] {
        bp::mean(bp::zeros({2, 0}), {1});
      },
      ThrowsMessage<bp::ValueError>(AllOf(HasSubstr("mean"), HasSubstr("[2, 0]"))));
  EXPECT_THAT([&] { bp::norm(x, -1); }, ThrowsMessage<bp::ValueError>(HasSubstr("norm: p must be")));
}
