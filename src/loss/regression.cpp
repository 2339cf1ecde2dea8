// Element-wise costs (MSE, the quadratic cost, binary cross-entropy from logits) and weight penalties.
#include <algorithm>
#include <backprop/loss.hpp>
#include <backprop/ops.hpp>
#include <cmath>

#include "kernels/kernels.hpp"

namespace backprop::loss {

namespace {
// The target as a tensor of the output's shape and dtype.
Tensor matching_target(const char* who, const Tensor& output, const Tensor& target) {
  BP_CHECK(output.defined() && target.defined(), ValueError, who,
           ": output and target must be defined tensors");
  BP_CHECK(output.shape() == target.shape(), ShapeError, who, ": output ", output.shape(), " and target ",
           target.shape(), " must have the same shape");
  BP_CHECK(output.numel() > 0, ShapeError, who, ": empty output ", output.shape());
  return target.dtype() == output.dtype() ? target : to_dtype(target, output.dtype());
}
}  // namespace

Tensor MSE::operator()(const Tensor& output, const Tensor& target) const {
  const Tensor d = sub(output, matching_target("MSE", output, target));
  const Tensor sq = mul(d, d);
  return reduction == Reduction::mean ? mean(sq) : sum(sq);
}

std::string MSE::repr() const {
  return detail::cat("MSE(reduction=", to_string(reduction), ")");
}

// C = (1/2) sum (y - a)^2, times 1/N for the mean over N examples: dC/da = (a - y) / N.
Tensor Quadratic::operator()(const Tensor& output, const Tensor& target) const {
  const Tensor d = sub(output, matching_target("Quadratic", output, target));
  const std::int64_t examples = output.dim() == 0 ? 1 : output.size(0);
  const double scale = reduction == Reduction::mean ? 0.5 / static_cast<double>(examples) : 0.5;
  return mul(sum(mul(d, d)), scale);
}

std::string Quadratic::repr() const {
  return detail::cat("Quadratic(reduction=", to_string(reduction), ")");
}

// l(x, y) = max(x, 0) - x y + log(1 + exp(-|x|)), which never exponentiates a positive number.
// dl/dx = sigmoid(x) - y and dl/dy = -x, written with ops so that d2l/dx2 = sigmoid(x) (1 - sigmoid(x))
// follows.
Tensor BCEWithLogits::operator()(const Tensor& logits, const Tensor& target) const {
  const Tensor y = matching_target("BCEWithLogits", logits, target);
  const std::int64_t n = logits.numel();
  const double scale = reduction == Reduction::mean ? 1.0 / static_cast<double>(n) : 1.0;
  const double value = dispatch(logits.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const Tensor xd = kernels::dense(logits), yd = kernels::dense(y);  // views are read row-major
    const T* x = xd.data<T>();
    const T* t = yd.data<T>();
    double total = 0.0;
    for (std::int64_t i = 0; i < n; ++i) {
      const double xi = x[i], ti = t[i];
      BP_CHECK(ti >= 0.0 && ti <= 1.0, ValueError, "BCEWithLogits: target at position ", i, " is ", ti,
               ", expected a probability in [0, 1]");
      total += std::max(xi, 0.0) - xi * ti + std::log1p(std::exp(-std::abs(xi)));
    }
    return total;
  });
  Tensor out = scalar(value * scale, logits.dtype());
  return record("bce_with_logits", out, {logits, y}, [logits, y, scale](const Tensor& dy) {
    const Tensor g = mul(dy, scale);
    return Tensors{logits.requires_grad() ? mul(sub(sigmoid(logits), y), g) : Tensor(),
                   y.requires_grad() ? mul(neg(logits), g) : Tensor()};
  });
}

std::string BCEWithLogits::repr() const {
  return detail::cat("BCEWithLogits(reduction=", to_string(reduction), ")");
}

namespace {
template <class F>
Tensor penalty(const char* who, const Tensors& params, F term) {
  if (params.empty()) return scalar(0.0);
  Tensor total;
  for (std::size_t k = 0; k < params.size(); ++k) {
    BP_CHECK(params[k].defined(), ValueError, who, ": tensor ", k, " is undefined");
    const DType dt = total.defined() ? total.dtype() : params[k].dtype();
    const Tensor p = params[k].dtype() == dt ? params[k] : to_dtype(params[k], dt);
    const Tensor t = sum(term(p));
    total = total.defined() ? add(total, t) : t;
  }
  return total;
}
}  // namespace

Tensor l1_penalty(const Tensors& params) {
  return penalty("l1_penalty", params, [](const Tensor& p) { return abs(p); });
}

Tensor l2_penalty(const Tensors& params) {
  return mul(penalty("l2_penalty", params, [](const Tensor& p) { return mul(p, p); }), 0.5);
}

}  // namespace backprop::loss
