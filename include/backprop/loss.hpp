// backprop/loss.hpp — costs: what training minimises.
//
// A Loss maps the network's output and the target to a 0-d tensor of the output's dtype. Reduction::mean
// averages over the batch (the first dimension; for MSE over every element), Reduction::sum adds instead. The
// choice scales the gradient by the batch size N: with summed losses the learning rate must be about N times
// smaller for the same step (see docs/loss.md).
//
// Example:
//   bp::loss::CrossEntropy ce;                                     // logits [N, C], target [N] class indices
//   bp::Tensor c = ce(net(x), y);                                  // 0-d, mean over the batch
//   bp::loss::MSE sse({.reduction = bp::loss::Reduction::sum});
//   bp::loss::CrossEntropy smooth({.label_smoothing = 0.1});
//   bp::Tensor reg = 1e-4 * bp::loss::l2_penalty(net.parameters()); // 1/2 sum w^2
//
// Targets never need gradients, but they may have them: every loss is written with differentiable ops (or is
// an op with a backward written with ops), so second derivatives work where the loss is smooth.
#pragma once

#include <backprop/tensor.hpp>
#include <string>

namespace backprop::loss {

enum class Reduction { mean, sum };
const char* to_string(Reduction r);

struct Loss {
  virtual ~Loss() = default;
  /// The cost of `output` against `target`, a 0-d tensor. Throws ShapeError when they do not fit (naming both
  /// shapes), ValueError for an invalid target value (naming its position and value).
  virtual Tensor operator()(const Tensor& output, const Tensor& target) const = 0;
  /// "CrossEntropy(label_smoothing=0.1, reduction=mean)"
  virtual std::string repr() const = 0;
};

struct MSEOptions {
  Reduction reduction = Reduction::mean;
};
/// Mean (or sum) over every element of (y - a)^2; output and target have the same shape (the target is
/// converted to the output's dtype). dC/da = 2 (a - y) / numel (mean) or 2 (a - y) (sum).
struct MSE : Loss {
  MSE(MSEOptions options = {}) : reduction(options.reduction) {}
  Tensor operator()(const Tensor& output, const Tensor& target) const override;
  std::string repr() const override;
  Reduction reduction;
};

/// The quadratic cost on class probabilities: MSE(softmax(z), one_hot(y)) from raw logits [N, C] and class
/// indices [N]. With it a classifier keeps one kind of output (logits) whatever the cost, so evaluation and
/// prediction need not know which cost trained it. Mean (or sum) over every element, as MSE. Throws
/// ShapeError unless logits are [N, C] and target [N].
struct SoftmaxMSE : Loss {
  SoftmaxMSE(MSEOptions options = {}) : reduction(options.reduction) {}
  Tensor operator()(const Tensor& logits, const Tensor& target) const override;
  std::string repr() const override;
  Reduction reduction;
};

struct QuadraticOptions {
  Reduction reduction = Reduction::mean;
};
/// The quadratic cost of one example, C_x = 1/2 sum_j (y_j - a_j)^2 summed over the outputs j (every
/// dimension but the first), then averaged over the N examples of the batch (mean: C = (1/N) sum_x C_x) or
/// summed (sum). So dC/da = (a - y) / N (mean) or (a - y) (sum): the delta rule's dC/da^L. A 1-D output [N]
/// is N examples of one output; a 0-d output is one example. Same shape rules as MSE.
struct Quadratic : Loss {
  Quadratic(QuadraticOptions options = {}) : reduction(options.reduction) {}
  Tensor operator()(const Tensor& output, const Tensor& target) const override;
  std::string repr() const override;
  Reduction reduction;
};

struct CrossEntropyOptions {
  /// epsilon: the target distribution becomes (1 - epsilon) one_hot(y) + epsilon / C. In [0, 1].
  double label_smoothing = 0.0;
  Reduction reduction = Reduction::mean;
};
/// Softmax cross-entropy (the negative log-likelihood of a softmax output) from raw logits [N, C] and class
/// indices [N] given as whole numbers in any float dtype:
///   C_i = -sum_c q_ic log softmax(z_i)_c,   q_i = (1 - eps) one_hot(y_i) + eps / C,
/// averaged (mean) or summed (sum) over i. Fused and stable (logsumexp with the row maximum subtracted);
/// dC/dz_i = (softmax(z_i) - q_i) / N for mean. Throws ShapeError unless logits are [N, C] and target [N],
/// ValueError naming the position and value of a target that is not an integer in [0, C).
struct CrossEntropy : Loss {
  CrossEntropy(CrossEntropyOptions options = {})
      : label_smoothing(options.label_smoothing), reduction(options.reduction) {}
  Tensor operator()(const Tensor& logits, const Tensor& target) const override;
  std::string repr() const override;
  double label_smoothing;
  Reduction reduction;
};

struct NLLOptions {
  Reduction reduction = Reduction::mean;
};
/// Negative log-likelihood from log-probabilities [N, C] (e.g. LogSoftmax's output) and class indices [N]:
/// C = -(1/N) sum_i logp_i,y_i (mean) or without the 1/N (sum). Same target rules as CrossEntropy.
struct NLL : Loss {
  NLL(NLLOptions options = {}) : reduction(options.reduction) {}
  Tensor operator()(const Tensor& log_probs, const Tensor& target) const override;
  std::string repr() const override;
  Reduction reduction;
};

struct BCEWithLogitsOptions {
  Reduction reduction = Reduction::mean;
};
/// Binary cross-entropy of sigmoid(x) against targets y in [0, 1] (same shape as x), computed stably from the
/// logits:  l = max(x, 0) - x y + log(1 + exp(-|x|))  (= -y log sigmoid(x) - (1 - y) log(1 - sigmoid(x))),
/// mean or sum over every element. dl/dx = sigmoid(x) - y, d2l/dx2 = sigmoid(x) (1 - sigmoid(x)).
struct BCEWithLogits : Loss {
  BCEWithLogits(BCEWithLogitsOptions options = {}) : reduction(options.reduction) {}
  Tensor operator()(const Tensor& logits, const Tensor& target) const override;
  std::string repr() const override;
  Reduction reduction;
};

/// L1 penalty sum_k sum |w_k| over all the tensors (0-d, dtype of the first; 0 for an empty list). Its
/// gradient sign(w) pushes weights to exactly zero (sparse weights). Add lambda * l1_penalty(params) to the
/// cost.
Tensor l1_penalty(const Tensors& params);
/// L2 penalty 1/2 sum_k sum w_k^2 (the 1/2 makes the gradient exactly w, so lambda * l2_penalty adds lambda w
/// to dC/dw: weight decay w <- (1 - eta lambda) w - eta dC0/dw). 0-d, dtype of the first; 0 for an empty
/// list.
Tensor l2_penalty(const Tensors& params);

}  // namespace backprop::loss
