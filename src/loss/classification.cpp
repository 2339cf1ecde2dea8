// Classification costs: softmax cross-entropy (one fused op) and the negative log-likelihood (composed).
#include <algorithm>
#include <backprop/loss.hpp>
#include <backprop/ops.hpp>
#include <cmath>

#include "kernels/kernels.hpp"

namespace backprop::loss {

namespace {
double reduction_scale(Reduction r, std::int64_t n) {
  return r == Reduction::mean ? 1.0 / static_cast<double>(n) : 1.0;
}

// Checks logits [N, C] against class indices [N] (whole numbers in [0, C)) and returns the target
// distribution q = (1 - eps) one_hot(y) + eps / C as a constant [N, C] tensor of the logits' dtype.
Tensor class_targets(const char* who, const Tensor& scores, const Tensor& target, double eps) {
  check_floating(scores, who, "scores");
  BP_CHECK(target.defined() && target.dtype() != bool_, DTypeError, who,
           ": target must be i64 class indices (or whole numbers in f32/f64), got ",
           target.defined() ? dtype_name(target.dtype()) : "an undefined tensor");
  BP_CHECK(scores.dim() == 2, ShapeError, who, ": expected scores [N, C], got ", scores.shape());
  const std::int64_t n = scores.size(0), c = scores.size(1);
  BP_CHECK(n > 0 && c > 0, ShapeError, who, ": empty scores ", scores.shape());
  BP_CHECK(target.dim() == 1 && target.size(0) == n, ShapeError, who, ": expected target [", n,
           "] of class indices for scores ", scores.shape(), ", got ", target.shape());
  Tensor q = full({n, c}, eps / static_cast<double>(c), scores.dtype());
  dispatch(scores.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* qp = q.data<T>();
    for (std::int64_t i = 0; i < n; ++i) {
      const double v = target.flat(i);
      BP_CHECK(v == std::floor(v) && v >= 0 && v < static_cast<double>(c), ValueError, who,
               ": target at position ", i, " is ", v, ", expected a class index in [0, ", c, ")");
      qp[i * c + static_cast<std::int64_t>(v)] += static_cast<T>(1.0 - eps);
    }
  });
  return q;
}

// Row-wise sum_i (logsumexp(z_i) - <q_i, z_i>) = -sum_i <q_i, log softmax(z_i)> (q_i sums to 1), accumulated
// in double with the row maximum subtracted before exp.
template <class T>
double fused_cross_entropy(const T* z, const T* q, std::int64_t n, std::int64_t c) {
  double total = 0.0;
  for (std::int64_t i = 0; i < n; ++i) {
    const T* row = z + i * c;
    const T* qi = q + i * c;
    const double m = static_cast<double>(*std::max_element(row, row + c));
    double s = 0.0, dot = 0.0;
    for (std::int64_t j = 0; j < c; ++j) {
      s += std::exp(static_cast<double>(row[j]) - m);
      dot += static_cast<double>(qi[j]) * static_cast<double>(row[j]);
    }
    total += m + std::log(s) - dot;
  }
  return total;
}
}  // namespace

const char* to_string(Reduction r) {
  return r == Reduction::mean ? "mean" : "sum";
}

// C = scale sum_i (lse(z_i) - <q_i, z_i>):  dC/dz = scale (softmax(z) - q).  The backward uses the softmax
// op, so it is recorded under create_graph and the Hessian scale (diag(p) - p p^T) follows from softmax's own
// backward.
Tensor CrossEntropy::operator()(const Tensor& logits, const Tensor& target) const {
  BP_CHECK(label_smoothing >= 0.0 && label_smoothing <= 1.0, ValueError,
           "CrossEntropy: label_smoothing must be in [0, 1], got ", label_smoothing);
  const Tensor q = class_targets("CrossEntropy", logits, target, label_smoothing);
  const std::int64_t n = logits.size(0), c = logits.size(1);
  const double scale = reduction_scale(reduction, n);
  const double value = dispatch(logits.dtype(), [&](auto tag) {
    using T = decltype(tag);
    return fused_cross_entropy(kernels::dense(logits).data<T>(), q.data<T>(), n, c);
  });
  Tensor out = scalar(value * scale, logits.dtype());
  return record("cross_entropy", out, {logits}, [logits, q, scale](const Tensor& dy) {
    return Tensors{mul(mul(sub(softmax(logits, 1), q), scale), dy)};
  });
}

std::string CrossEntropy::repr() const {
  return detail::cat("CrossEntropy(label_smoothing=", label_smoothing, ", reduction=", to_string(reduction),
                     ")");
}

// C = -scale sum_i logp_i,y_i = -scale <one_hot(y), logp>: composed, so its gradient -scale one_hot(y) is
// exact.
Tensor NLL::operator()(const Tensor& log_probs, const Tensor& target) const {
  const Tensor onehot = class_targets("NLL", log_probs, target, 0.0);
  return mul(sum(mul(log_probs, onehot)), -reduction_scale(reduction, log_probs.size(0)));
}

std::string NLL::repr() const {
  return detail::cat("NLL(reduction=", to_string(reduction), ")");
}

// C = MSE(softmax(z), one_hot(y)): composed of differentiable ops, so its backward (and double backward) is
// theirs.
Tensor SoftmaxMSE::operator()(const Tensor& logits, const Tensor& target) const {
  BP_CHECK(logits.dim() == 2 && target.dim() == 1 && target.size(0) == logits.size(0), ShapeError,
           "SoftmaxMSE: expected logits [N, C] and class indices [N], got ", logits.shape(), " and ",
           target.shape());
  return MSE({.reduction = reduction})(softmax(logits, 1), one_hot(target, logits.size(1), logits.dtype()));
}

std::string SoftmaxMSE::repr() const {
  return detail::cat("SoftmaxMSE(reduction=", to_string(reduction), ")");
}

}  // namespace backprop::loss
