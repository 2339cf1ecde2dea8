// Custom ops through record(), and the checkers that guard every op: gradcheck and gradgradcheck must catch a
// wrong first derivative, a second derivative lost by computing the backward outside the graph, and the
// engine must reject a backward that returns the wrong number or shape of gradients.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>

namespace bp = backprop;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

namespace {

// y = x^2 with a backward written with ops: d/dx = 2x, itself differentiable.
bp::Tensor good_square(const bp::Tensor& x) {
  bp::Tensor y;
  {
    bp::NoGradGuard guard;
    y = bp::mul(x, x);
  }
  return bp::record("good_square", y, {x}, [x](const bp::Tensor& dy) { return bp::Tensors{dy * x * 2.0}; });
}

// The same with the factor 2 forgotten.
bp::Tensor wrong_square(const bp::Tensor& x) {
  bp::Tensor y;
  {
    bp::NoGradGuard guard;
    y = bp::mul(x, x);
  }
  return bp::record("wrong_square", y, {x}, [x](const bp::Tensor& dy) { return bp::Tensors{dy * x}; });
}

// The right first derivative computed outside the graph (from a detached x): the second derivative is lost.
bp::Tensor detached_square(const bp::Tensor& x) {
  bp::Tensor y;
  {
    bp::NoGradGuard guard;
    y = bp::mul(x, x);
  }
  return bp::record("detached_square", y, {x},
                    [x](const bp::Tensor& dy) { return bp::Tensors{dy * (x.detach() * 2.0)}; });
}

bp::Tensor input() {
  bp::Generator gen(1);
  return bp::randn({2, 3}, gen, bp::f64).requires_grad_();
}

}  // namespace

TEST(Record, ACustomOpJoinsTheGraphAndPassesBothChecks) {
  const bp::Tensor x = input();
  const bp::Tensor y = good_square(x);
  ASSERT_NE(y.grad_fn(), nullptr);
  EXPECT_EQ(std::string(y.grad_fn()->name()), "good_square");
  EXPECT_TRUE(bp::gradcheck([](const bp::Tensors& in) { return good_square(in[0]); }, {x}).ok);
  EXPECT_TRUE(bp::gradgradcheck([](const bp::Tensors& in) { return good_square(in[0]); }, {x}).ok);
}

TEST(Record, NothingIsRecordedForConstantsOrWithoutGradMode) {
  const bp::Tensor c = bp::ones({2}, bp::f64);
  EXPECT_EQ(good_square(c).grad_fn(), nullptr);
  bp::NoGradGuard guard;
  EXPECT_EQ(good_square(input()).grad_fn(), nullptr);
}

TEST(Gradcheck, CatchesAWrongFirstDerivative) {
  const bp::Tensor x = input();
  auto f = [](const bp::Tensors& in) { return wrong_square(in[0]); };
  const bp::GradcheckResult r = bp::gradcheck(f, {x}, {.raise = false});
  EXPECT_FALSE(r.ok);
  EXPECT_NEAR(r.analytic * 2, r.numeric, 1e-6) << "the analytic value is half the numeric one";
  EXPECT_THAT([&] { bp::gradcheck(f, {x}); },
              ThrowsMessage<bp::Error>(
                  AllOf(HasSubstr("gradcheck failed"), HasSubstr("analytic"), HasSubstr("numeric"))));
}

TEST(Gradcheck, CatchesASecondDerivativeLostOutsideTheGraph) {
  const bp::Tensor x = input();
  auto f = [](const bp::Tensors& in) { return detached_square(in[0]); };
  EXPECT_TRUE(bp::gradcheck(f, {x}).ok) << "first derivatives are right";
  EXPECT_FALSE(bp::gradgradcheck(f, {x}, {.raise = false}).ok) << "second derivatives are missing";
  EXPECT_THAT([&] { bp::gradgradcheck(f, {x}); },
              ThrowsMessage<bp::Error>(HasSubstr("gradgradcheck failed")));
}

TEST(Gradcheck, NeedsF64InputsAndSomethingToCheck) {
  auto f = [](const bp::Tensors& in) { return bp::exp(in[0]); };
  EXPECT_THAT([&] { bp::gradcheck(f, {bp::ones({2}).requires_grad_()}); },
              ThrowsMessage<bp::DTypeError>(AllOf(HasSubstr("input 0 is f32"), HasSubstr("f64"))));
  EXPECT_THAT([&] { bp::gradcheck(f, {bp::ones({2}, bp::f64)}); },
              ThrowsMessage<bp::ValueError>(HasSubstr("no input requires grad")));
}

TEST(Record, TheEngineRejectsABackwardWithTheWrongNumberOrShapeOfGradients) {
  const bp::Tensor x = input();
  bp::Tensor y;
  {
    bp::NoGradGuard guard;
    y = bp::exp(x);
  }
  const bp::Tensor two = bp::record("two_grads", y, {x}, [x](const bp::Tensor& dy) {
    return bp::Tensors{dy, dy};
  });
  EXPECT_THAT([&] { bp::sum(two).backward(); },
              ThrowsMessage<bp::AutogradError>(
                  AllOf(HasSubstr("'two_grads'"), HasSubstr("returned 2 gradients for 1 inputs"))));
  const bp::Tensor bad_shape =
      bp::record("bad_shape", y, {x}, [](const bp::Tensor& dy) { return bp::Tensors{bp::sum(dy, 0)}; });
  EXPECT_THAT(
      [&] { bp::sum(bad_shape).backward(); },
      ThrowsMessage<bp::AutogradError>(AllOf(HasSubstr("'bad_shape'"), HasSubstr("gradient of shape [3]"),
                                             HasSubstr("input 0 of shape [2, 3]"))));
}
