// Standardizer: per-feature mean and standard deviation, accumulated in double.
#include <backprop/data/standardize.hpp>
#include <cmath>
#include <vector>

namespace backprop::data {
namespace {

void check_features(const Tensor& x, const char* op) {
  BP_CHECK(x.defined() && x.dim() == 2, ShapeError, op, ": expected features [N, D], got ",
           x.defined() ? to_string(x.shape()) : std::string("an undefined tensor"));
}

// y_ij = (x_ij - shift_j) * scale_j + offset_j for every row, computed in double, stored in x's dtype.
Tensor affine_columns(const Tensor& x, const std::vector<double>& shift, const std::vector<double>& scale,
                      const std::vector<double>& offset) {
  Tensor y(x.shape(), x.dtype());
  const std::int64_t n = x.size(0), d = x.size(1);
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* src = x.data<T>();
    T* dst = y.data<T>();
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < d; ++j)
        dst[i * d + j] =
            static_cast<T>((static_cast<double>(src[i * d + j]) - shift[j]) * scale[j] + offset[j]);
  });
  return y;
}

}  // namespace

Standardizer Standardizer::fit(const Tensor& features) {
  check_features(features, "Standardizer::fit");
  const std::int64_t n = features.size(0), d = features.size(1);
  BP_CHECK(n >= 1, ShapeError, "Standardizer::fit: needs at least one row, got features ", features.shape());
  std::vector<double> mean(d, 0.0), var(d, 0.0);
  std::vector<bool> constant(d, true);
  dispatch(features.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* x = features.data<T>();
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < d; ++j) {
        mean[j] += x[i * d + j];
        if (x[i * d + j] != x[j]) constant[j] = false;
      }
    for (std::int64_t j = 0; j < d; ++j) mean[j] /= static_cast<double>(n);
    // Two passes: sum of squared deviations from the mean does not cancel catastrophically like E[x^2] -
    // E[x]^2.
    for (std::int64_t i = 0; i < n; ++i)
      for (std::int64_t j = 0; j < d; ++j) {
        const double dev = x[i * d + j] - mean[j];
        var[j] += dev * dev;
      }
    // A constant column: its mean is exactly its value (rounding of the sum could leave a tiny nonzero spread
    // that would blow up on division), and std 1 maps it to 0.
    for (std::int64_t j = 0; j < d; ++j)
      if (constant[j]) mean[j] = x[j];
  });
  Standardizer s;
  s.mean = Tensor({d}, features.dtype());
  s.std = Tensor({d}, features.dtype());
  for (std::int64_t j = 0; j < d; ++j) {
    const double sd = std::sqrt(var[j] / static_cast<double>(n));
    s.mean.set({j}, mean[j]);
    s.std.set({j}, constant[j] || !(sd > 0.0) ? 1.0 : sd);
  }
  return s;
}

bool Standardizer::fitted() const {
  return mean.defined() && std.defined();
}

namespace {
void check_fitted(const Standardizer& s, const Tensor& x, const char* op) {
  BP_CHECK(s.fitted(), ValueError, op,
           ": the standardizer is not fitted (call Standardizer::fit on training data)");
  check_features(x, op);
  BP_CHECK(s.mean.numel() == x.size(1) && s.std.numel() == x.size(1), ShapeError, op, ": fitted on ",
           s.mean.numel(), " features, got features ", x.shape());
}
}  // namespace

Tensor Standardizer::transform(const Tensor& features) const {
  check_fitted(*this, features, "Standardizer::transform");
  const std::int64_t d = features.size(1);
  std::vector<double> shift(d), scale(d);
  for (std::int64_t j = 0; j < d; ++j) {
    shift[j] = mean.flat(j);
    const double sd = std.flat(j);
    BP_CHECK(sd > 0.0 && std::isfinite(sd), ValueError, "Standardizer::transform: std of feature ", j, " is ",
             sd, ", expected a positive finite number");
    scale[j] = 1.0 / sd;
  }
  return affine_columns(features, shift, scale, std::vector<double>(d, 0.0));
}

Tensor Standardizer::inverse_transform(const Tensor& features) const {
  check_fitted(*this, features, "Standardizer::inverse_transform");
  const std::int64_t d = features.size(1);
  std::vector<double> scale(d), offset(d);
  for (std::int64_t j = 0; j < d; ++j) {
    scale[j] = std.flat(j);
    offset[j] = mean.flat(j);
  }
  return affine_columns(features, std::vector<double>(d, 0.0), scale, offset);
}

}  // namespace backprop::data
