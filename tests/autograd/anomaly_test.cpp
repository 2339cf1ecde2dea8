// Anomaly detection names the op that produced the first non-finite value, forward or backward.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/anomaly.hpp>
#include <backprop/backprop.hpp>

namespace bp = backprop;
using ::testing::HasSubstr;

TEST(Anomaly, ForwardNamesTheOp) {
  bp::Tensor x = bp::tensor({1.0, 0.0}, bp::f64).requires_grad_();
  bp::DetectAnomalyGuard guard;
  try {
    bp::log(x);
    FAIL() << "expected DivergedError";
  } catch (const bp::DivergedError& e) {
    EXPECT_THAT(e.what(), HasSubstr("anomaly: op 'log' produced a non-finite value in the forward pass"));
    EXPECT_THAT(e.what(), HasSubstr("[2]"));
  }
}

TEST(Anomaly, BackwardNamesTheOp) {
  // sqrt(0) is finite, but its derivative 1 / (2 sqrt(x)) is not.
  bp::Tensor x = bp::tensor({4.0, 0.0}, bp::f64).requires_grad_();
  bp::Tensor y = bp::sum(bp::sqrt(x));
  bp::DetectAnomalyGuard guard;
  try {
    y.backward();
    FAIL() << "expected DivergedError";
  } catch (const bp::DivergedError& e) {
    EXPECT_THAT(e.what(),
                HasSubstr("anomaly: the backward of op 'sqrt' produced a non-finite gradient for input 0"));
  }
}

TEST(Anomaly, OffByDefaultAndRestoredByTheGuard) {
  EXPECT_FALSE(bp::AnomalyMode::is_enabled());
  {
    bp::DetectAnomalyGuard guard;
    EXPECT_TRUE(bp::AnomalyMode::is_enabled());
  }
  EXPECT_FALSE(bp::AnomalyMode::is_enabled());
  bp::Tensor x = bp::tensor({0.0}, bp::f64).requires_grad_();
  bp::Tensor y = bp::sum(bp::sqrt(x));
  y.backward();  // no check without the mode: the infinity reaches the gradient
  EXPECT_TRUE(std::isinf(x.grad().item()));
}
