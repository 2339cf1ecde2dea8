// backprop/data/standardize.hpp — per-feature standardisation, fitted on training data only.
//
// Fit on the training split, then apply the same mean and std to validation, test and prediction inputs, so
// no statistic of held-out data leaks into training.
//
// Example:
//   auto st = bp::data::Standardizer::fit(train.features);   // mean, std: [D]
//   train.features = st.transform(train.features);
//   test.features = st.transform(test.features);             // training statistics, not the test set's
#pragma once

#include <backprop/tensor.hpp>

namespace backprop::data {

struct Standardizer {
  Tensor mean;  // [D], the features' dtype
  Tensor std;   // [D], population standard deviation (divides by N); 1 for a constant feature

  /// Learns mean_j = (1/N) sum_i x_ij and std_j = sqrt((1/N) sum_i (x_ij - mean_j)^2) from features [N, D]
  /// (accumulated in double). A feature whose values are all equal gets std 1, so it maps to 0 instead of
  /// dividing by zero. Throws ShapeError unless features is 2-D with N >= 1.
  static Standardizer fit(const Tensor& features);
  /// x'_ij = (x_ij - mean_j) / std_j for features [M, D]; returns a new tensor of the input's dtype (nothing
  /// recorded by autograd). Throws ValueError if not fitted, ShapeError if D differs from the fitted D.
  Tensor transform(const Tensor& features) const;
  /// x_ij = x'_ij * std_j + mean_j, the inverse of transform (same shapes and errors).
  Tensor inverse_transform(const Tensor& features) const;
  /// True once mean and std are set (by fit, or by a caller restoring them from a saved model).
  bool fitted() const;
};

}  // namespace backprop::data
