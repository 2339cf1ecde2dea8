// What each op computes (beyond the kernels' tests), which ops stay out of the graph, and the errors of
// misuse.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <cmath>

namespace bp = backprop;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

TEST(ShapeOps, NarrowIndexSelectConcatCopyTheRightRows) {
  const bp::Tensor x = bp::arange(12).reshape({4, 3});
  EXPECT_EQ(bp::narrow(x, 1, 2).to_vector(), (std::vector<double>{3, 4, 5, 6, 7, 8}));
  EXPECT_EQ(bp::narrow(x, 4, 0).shape(), (bp::Shape{0, 3}));
  EXPECT_EQ(bp::index_select(x, {3, 0, 3}).to_vector(), (std::vector<double>{9, 10, 11, 0, 1, 2, 9, 10, 11}));
  const bp::Tensor c = bp::concat({bp::narrow(x, 2, 2), bp::narrow(x, 0, 1)});
  EXPECT_EQ(c.shape(), (bp::Shape{3, 3}));
  EXPECT_EQ(c.to_vector(), (std::vector<double>{6, 7, 8, 9, 10, 11, 0, 1, 2}));
  const bp::Tensor narrowed = bp::narrow(x, 0, 1);
  EXPECT_EQ(narrowed.storage(), x.storage()) << "narrow is a view";
  EXPECT_EQ(narrowed.storage_offset(), 0);
  EXPECT_EQ(bp::narrow(x, 2, 1).storage_offset(), 6);
}

TEST(ShapeOps, IndexSelectScattersGradientsOfRepeatedRows) {
  bp::Tensor x = bp::zeros({3, 2}, bp::f64).requires_grad_();
  bp::sum(bp::index_select(x, {1, 1, 2, 1})).backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<double>{0, 0, 3, 3, 1, 1}));
}

TEST(ShapeOps, ErrorsNameTheOffendingValues) {
  const bp::Tensor x = bp::zeros({4, 3});
  EXPECT_THAT(
      [&] { bp::narrow(x, 3, 2); },
      ThrowsMessage<bp::IndexError>(AllOf(HasSubstr("narrow"), HasSubstr("[3, 5)"), HasSubstr("[4, 3]"))));
  EXPECT_THAT([&] { bp::narrow(bp::scalar(1), 0, 1); }, ThrowsMessage<bp::ShapeError>(HasSubstr("scalar")));
  EXPECT_THAT(
      [&] {
        bp::index_select(x, {0, 4});
      },
      ThrowsMessage<bp::IndexError>(
          AllOf(HasSubstr("index 4"), HasSubstr("position 1"), HasSubstr("dim 0 of size 4"))));
  EXPECT_THAT([&] { bp::index_select(x, {-1}); }, ThrowsMessage<bp::IndexError>(HasSubstr("index -1")));
  EXPECT_THAT(
      [&] {
        bp::concat({x, bp::zeros({2, 2})});
      },
      ThrowsMessage<bp::ShapeError>(AllOf(HasSubstr("tensor 1"), HasSubstr("[2, 2]"), HasSubstr("[4, 3]"))));
  EXPECT_THAT(
      [&] {
        bp::concat({x, bp::zeros({2, 3}, bp::f64)});
      },
      ThrowsMessage<bp::ShapeError>(AllOf(HasSubstr("f64"), HasSubstr("f32"))));
  EXPECT_THAT([] { bp::concat({}); }, ThrowsMessage<bp::ValueError>(HasSubstr("no tensors")));
  EXPECT_THAT(
      [&] {
        bp::transpose(bp::zeros({2, 3, 4}));
      },
      ThrowsMessage<bp::ShapeError>(AllOf(HasSubstr("transpose"), HasSubstr("[2, 3, 4]"))));
  EXPECT_THAT(
      [&] {
        bp::masked_scale(x, bp::ones({3, 4}), 2.0);
      },
      ThrowsMessage<bp::ShapeError>(AllOf(HasSubstr("mask shape [3, 4]"), HasSubstr("[4, 3]"))));
  EXPECT_THAT([&] { bp::clamp(x, 1.0, -1.0); }, ThrowsMessage<bp::ValueError>(HasSubstr("must not exceed")));
  EXPECT_THAT([&] { bp::softmax(x, 2); }, ThrowsMessage<bp::IndexError>(HasSubstr("softmax: axis 2")));
  EXPECT_THAT([&] { bp::log_softmax(x, -3); },
              ThrowsMessage<bp::IndexError>(HasSubstr("log_softmax: axis -3")));
  EXPECT_THAT([&] { bp::max(x, 5); }, ThrowsMessage<bp::IndexError>(HasSubstr("max: axis 5")));
}

TEST(NnOps, OneHotEncodesAndValidatesLabels) {
  const bp::Tensor oh = bp::one_hot(bp::tensor({2, 0, 1}), 3, bp::f64);
  EXPECT_EQ(oh.shape(), (bp::Shape{3, 3}));
  EXPECT_EQ(oh.to_vector(), (std::vector<double>{0, 0, 1, 1, 0, 0, 0, 1, 0}));
  EXPECT_THAT(
      [] {
        bp::one_hot(bp::tensor({0, 3}), 3);
      },
      ThrowsMessage<bp::ValueError>(
          AllOf(HasSubstr("label 3"), HasSubstr("position 1"), HasSubstr("[0, 3)"))));
  EXPECT_THAT([] { bp::one_hot(bp::tensor({0.5}), 3); },
              ThrowsMessage<bp::ValueError>(HasSubstr("label 0.5")));
  EXPECT_THAT([] { bp::one_hot(bp::tensor({0}), 0); },
              ThrowsMessage<bp::ValueError>(HasSubstr("must be positive")));
}

TEST(NnOps, SoftmaxRowsSumToOneAndLogSoftmaxIsItsLog) {
  bp::Generator gen(1);
  const bp::Tensor x = bp::randn({5, 7}, gen, bp::f64, 0.0, 3.0);
  const bp::Tensor p = bp::softmax(x), lp = bp::log_softmax(x);
  const bp::Tensor rows = bp::sum(p, 1);
  for (std::int64_t r = 0; r < 5; ++r) EXPECT_NEAR(rows.flat(r), 1.0, 1e-14);
  for (std::int64_t i = 0; i < 35; ++i) EXPECT_NEAR(std::log(p.flat(i)), lp.flat(i), 1e-12);
}

TEST(NonDifferentiable, ComparisonsArgmaxSignAndOneHotRecordNothing) {
  bp::Tensor x = bp::tensor({-1.0, 0.0, 2.0}, bp::f64).requires_grad_();
  EXPECT_EQ(bp::greater(x, 0.0).to_vector(), (std::vector<double>{0, 0, 1}));
  EXPECT_EQ(bp::equal(x, bp::tensor({-1.0, 1.0, 2.0}, bp::f64)).to_vector(), (std::vector<double>{1, 0, 1}));
  EXPECT_EQ(bp::sign(x).to_vector(), (std::vector<double>{-1, 0, 1}));
  for (const bp::Tensor& t :
       {bp::greater(x, 0.0), bp::equal(x, x), bp::sign(x), bp::argmax(x.reshape({1, 3}), 1)}) {
    EXPECT_FALSE(t.requires_grad());
    EXPECT_EQ(t.grad_fn(), nullptr);
  }
  EXPECT_THAT(
      [&] {
        bp::equal(x, bp::tensor({1, 2, 3}));
      },
      ThrowsMessage<bp::DTypeError>(HasSubstr("equal")));
}

TEST(Recording, OpsOnConstantsRecordNothingAndOpsOnVariablesRecordTheirName) {
  const bp::Tensor c = bp::ones({2, 2});
  EXPECT_EQ(bp::exp(c).grad_fn(), nullptr);
  bp::Tensor w = bp::ones({2, 2}).requires_grad_();
  EXPECT_TRUE(w.is_leaf());
  const std::vector<std::pair<bp::Tensor, std::string>> recorded = {
      {bp::exp(w), "exp"},         {bp::matmul(w, c), "matmul"}, {w + c, "add"},
      {bp::sum(w, 0), "sum_axis"}, {w.reshape({4}), "reshape"},  {bp::softmax(w), "softmax"}};
  for (const auto& [t, name] : recorded) {
    ASSERT_NE(t.grad_fn(), nullptr) << name;
    EXPECT_EQ(std::string(t.grad_fn()->name()), name);
    EXPECT_FALSE(t.is_leaf());
    EXPECT_TRUE(t.requires_grad());
  }
}

TEST(Recording, ReshapeOfAVariableIsAViewWithItsOwnNode) {
  bp::Tensor w = bp::zeros({2, 3}).requires_grad_();
  const bp::Tensor v = w.reshape({3, 2});
  EXPECT_EQ(v.storage(), w.storage());
  EXPECT_TRUE(w.is_leaf()) << "recording the view does not turn its input into a non-leaf";
  EXPECT_EQ(w.grad_fn(), nullptr);
}
