// Neural-network functions: softmax and log-softmax along an axis, one-hot encoding.
#include <backprop/ops.hpp>
#include <cmath>

#include "kernels/kernels.hpp"

namespace backprop {

// y_i = exp(x_i) / sum_j exp(x_j): dL/dx = y (dy - sum(dy y)), written with the kept output y.
Tensor softmax(const Tensor& x, std::int64_t axis) {
  check_floating(x, "softmax", "x");
  const std::int64_t ax = normalize_axis(axis, x.dim(), "softmax");
  Tensor y = kernels::softmax(x, ax, false);
  return record("softmax", y, {x},
                [ax](const Tensor& dy, const Tensor& out) {
                  return Tensors{mul(out, sub(dy, sum(mul(dy, out), ax, true)))};
                },
                {.save_output = true, .saves_inputs = false});
}

// y = x - logsumexp(x): dL/dx = dy - softmax(x) sum(dy) = dy - exp(y) sum(dy).
Tensor log_softmax(const Tensor& x, std::int64_t axis) {
  check_floating(x, "log_softmax", "x");
  const std::int64_t ax = normalize_axis(axis, x.dim(), "log_softmax");
  Tensor y = kernels::softmax(x, ax, true);
  return record("log_softmax", y, {x},
                [ax](const Tensor& dy, const Tensor& out) {
                  return Tensors{sub(dy, mul(exp(out), sum(dy, ax, true)))};
                },
                {.save_output = true, .saves_inputs = false});
}

Tensor one_hot(const Tensor& labels, std::int64_t classes, DType dtype) {
  BP_CHECK(classes > 0, ValueError, "one_hot: number of classes must be positive, got ", classes);
  const std::int64_t n = labels.numel();
  Tensor y = zeros({n, classes}, dtype);
  dispatch_all(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* p = y.data<T>();
    for (std::int64_t i = 0; i < n; ++i) {
      const double v = labels.flat(i);
      BP_CHECK(v == std::floor(v) && v >= 0 && v < static_cast<double>(classes), ValueError,
               "one_hot: label ", v, " at position ", i, " is not a class index in [0, ", classes, ")");
      p[i * classes + static_cast<std::int64_t>(v)] = T(1);
    }
  });
  return y;
}

}  // namespace backprop
