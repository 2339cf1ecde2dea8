// LayerNorm, composed of ops over the last axis of x reshaped to [rows, features], so gradients flow through
// the mean and variance of each row (and can be differentiated again).
#include <algorithm>
#include <backprop/nn/layernorm.hpp>
#include <backprop/ops.hpp>
#include <utility>

namespace backprop::nn {

LayerNorm::LayerNorm(Shape normalized_shape, LayerNormOptions options)
    : shape_(std::move(normalized_shape)), options_(options) {
  BP_CHECK(!shape_.empty(), ValueError, "LayerNorm: normalized_shape must have at least one dimension");
  for (std::int64_t d : shape_)
    BP_CHECK(d > 0, ValueError, "LayerNorm: normalized_shape sizes must be positive, got ", shape_);
  BP_CHECK(options.eps >= 0, ValueError, "LayerNorm: eps must be >= 0, got ", options.eps);
  if (options.elementwise_affine) {
    weight_ = register_parameter("weight", ones(shape_, options.dtype));
    bias_ = register_parameter("bias", zeros(shape_, options.dtype));
  }
}

Tensor LayerNorm::forward(const Tensor& x) {
  const Shape& xs = x.shape();
  const std::size_t k = shape_.size();
  const bool trailing_match =
      xs.size() >= k && std::equal(shape_.begin(), shape_.end(), xs.end() - static_cast<std::ptrdiff_t>(k));
  BP_CHECK(trailing_match, ShapeError, "LayerNorm(", shape_,
           "): expected an input whose last dimensions are ", shape_, ", got ", xs);
  BP_CHECK(x.dtype() == options_.dtype, DTypeError, "LayerNorm(", shape_, "): input is ", x.dtype(),
           " but the layer is ", options_.dtype);
  std::int64_t features = 1;
  for (std::int64_t d : shape_) features *= d;
  const Tensor rows = reshape(x, {x.numel() / features, features});
  const Tensor mu = mean(rows, 1, true);
  const Tensor xc = sub(rows, mu);
  const Tensor var = mean(mul(xc, xc), 1, true);
  Tensor y = reshape(mul(xc, rdiv(sqrt(add(var, options_.eps)), 1.0)), xs);
  if (options_.elementwise_affine) y = add(mul(y, weight_), bias_);
  return y;
}

std::string LayerNorm::repr() const {
  return detail::cat("LayerNorm(", shape_, ", eps=", options_.eps,
                     ", elementwise_affine=", options_.elementwise_affine ? "true" : "false", ")");
}

}  // namespace backprop::nn
