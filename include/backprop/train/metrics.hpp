// backprop/train/metrics.hpp — the errors of a regression model, as scikit-learn's metrics compute them.
// (Classification: train::accuracy() and train::evaluate()'s confusion matrix, backprop/train.hpp.)
//
// Example:
//   bp::Tensor y = bp::from_vector(std::vector<double>{1, 3, 2, 6}, {4, 1});
//   bp::Tensor p = bp::from_vector(std::vector<double>{1, 2, 3, 4}, {4, 1});  // or train::predict(net, x)
//   bp::train::RegressionMetrics m = bp::train::regression_metrics(p, y);
//   // m.rmse == sqrt(6 / 4), m.mae == 1, m.r2 == 1 - 6 / 14
#pragma once

#include <backprop/tensor.hpp>
#include <backprop/train/state.hpp>

namespace backprop::train {

/// The errors of `predictions` against `targets`, element by element: root mean squared error, mean absolute
/// error, and R^2 = 1 - SSE / SST (NaN when the targets are all equal).
struct RegressionMetrics {
  double rmse = kNone;
  double mae = kNone;
  double r2 = kNone;
};

/// `predictions` and `targets` hold the same number of elements (e.g. [N, 1]); none gives NaN throughout.
/// Throws ShapeError when the counts differ.
RegressionMetrics regression_metrics(const Tensor& predictions, const Tensor& targets);

}  // namespace backprop::train
