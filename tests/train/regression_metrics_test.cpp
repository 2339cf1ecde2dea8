// train::regression_metrics against values computed by hand.
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/train/metrics.hpp>
#include <cmath>

namespace bp = backprop;

TEST(RegressionMetrics, HandComputedValues) {
  // errors 0, -1, 1, -2: SSE 6, SAE 4; targets' mean 3, SST 4 + 0 + 1 + 9 = 14.
  const bp::Tensor p = bp::from_vector(std::vector<double>{1, 2, 3, 4}, {4, 1}, bp::f64);
  const bp::Tensor y = bp::from_vector(std::vector<double>{1, 3, 2, 6}, {4, 1}, bp::f64);
  const bp::train::RegressionMetrics r = bp::train::regression_metrics(p, y);
  EXPECT_DOUBLE_EQ(r.rmse, std::sqrt(6.0 / 4));
  EXPECT_DOUBLE_EQ(r.mae, 1.0);
  EXPECT_DOUBLE_EQ(r.r2, 1 - 6.0 / 14);
}

TEST(RegressionMetrics, ConstantTargetsHaveNoR2) {
  const bp::Tensor p = bp::from_vector(std::vector<double>{1, 2}, {2, 1}, bp::f64);
  const bp::Tensor y = bp::from_vector(std::vector<double>{2, 2}, {2, 1}, bp::f64);
  const bp::train::RegressionMetrics r = bp::train::regression_metrics(p, y);
  EXPECT_DOUBLE_EQ(r.rmse, std::sqrt(0.5));
  EXPECT_DOUBLE_EQ(r.mae, 0.5);
  EXPECT_TRUE(std::isnan(r.r2));
}

TEST(RegressionMetrics, DifferentElementCountsThrowShapeError) {
  const bp::Tensor p = bp::from_vector(std::vector<double>{1, 2, 3}, {3, 1}, bp::f64);
  const bp::Tensor y = bp::from_vector(std::vector<double>{1, 2}, {2, 1}, bp::f64);
  EXPECT_THROW(bp::train::regression_metrics(p, y), bp::ShapeError);
}
