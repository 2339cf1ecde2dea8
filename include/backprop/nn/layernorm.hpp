// backprop/nn/layernorm.hpp — layer normalisation over the trailing dimensions of each sample.
//
// With F = the product of normalized_shape, each input is seen as rows of F features (x reshaped to
// [rows, F]) and every row is normalised on its own:
//   mu = (1/F) sum_f x_f,   var = (1/F) sum_f (x_f - mu)^2          (biased variance)
//   y_f = (x_f - mu) / sqrt(var + eps) * gamma_f + beta_f
// Unlike BatchNorm1d there are no running statistics: training and eval compute the same thing, and a batch of
// one is fine. The forward is composed of ops, so gradients flow through mu and var and can be differentiated
// again. gamma ("weight") starts at 1 and beta ("bias") at 0, both of shape normalized_shape, as in PyTorch.
//
// Example:
//   bp::Generator gen(0);
//   bp::nn::LayerNorm norm(256);                                // normalise the last dimension (256)
//   bp::Tensor y = norm(bp::randn({32, 256}, gen));             // [32, 256] -> [32, 256]
//   bp::nn::LayerNorm norm2({4, 8}, {.eps = 1e-6});             // normalise the last two dimensions
//   bp::Tensor z = norm2(bp::randn({2, 4, 8}, gen));            // [2, 4, 8] -> [2, 4, 8]
#pragma once

#include <backprop/nn/module.hpp>
#include <cstdint>
#include <string>

namespace backprop::nn {

struct LayerNormOptions {
  double eps = 1e-5;
  /// Learn a per-element scale gamma and shift beta of shape normalized_shape.
  bool elementwise_affine = true;
  DType dtype = f32;
};

class LayerNorm : public Module {
 public:
  /// Normalises over the last normalized_shape.size() dimensions. Throws ValueError when normalized_shape is
  /// empty or has a size below 1, or when eps < 0.
  explicit LayerNorm(Shape normalized_shape, LayerNormOptions options = {});
  /// LayerNorm({features}, options): normalise the last dimension.
  explicit LayerNorm(std::int64_t features, LayerNormOptions options = {})
      : LayerNorm(Shape{features}, options) {}

  /// x [..., *normalized_shape] (or x = normalized_shape) -> the same shape. Throws ShapeError naming both shapes when x's trailing
  /// dimensions are not normalized_shape; DTypeError when x's dtype differs from the layer's.
  Tensor forward(const Tensor& x) override;
  /// "LayerNorm([256], eps=1e-05, elementwise_affine=true)"
  std::string repr() const override;

  /// gamma and beta, of shape normalized_shape (undefined when elementwise_affine is false).
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }
  const Shape& normalized_shape() const { return shape_; }
  const LayerNormOptions& options() const { return options_; }

 private:
  Shape shape_;
  LayerNormOptions options_;
  Tensor weight_, bias_;
};

}  // namespace backprop::nn
