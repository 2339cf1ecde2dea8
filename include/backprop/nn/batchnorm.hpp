// backprop/nn/batchnorm.hpp — batch normalisation over the features of a [N, C] input.
//
// In training, for each feature c over the N rows of the batch:
//   mu_c = (1/N) sum_i x_ic,   var_c = (1/N) sum_i (x_ic - mu_c)^2          (biased variance)
//   xhat_ic = (x_ic - mu_c) / sqrt(var_c + eps),   y_ic = gamma_c xhat_ic + beta_c
// and the running statistics move towards the batch's:
//   running_mean = (1 - momentum) running_mean + momentum mu
//   running_var  = (1 - momentum) running_var  + momentum var * N / (N - 1)   (unbiased)
// In eval mode mu and var are replaced by running_mean and running_var. The forward is composed of ops, so
// the gradient flows through mu and var as well (each row's output depends on every row of the batch), and
// second derivatives work. gamma ("weight") starts at 1, beta ("bias") at 0; buffers are running_mean (0),
// running_var (1) and num_batches_tracked (a 0-d i64 counter, as in PyTorch's state dicts).
//
// Example:
//   bp::nn::Sequential net{bp::nn::Linear(784, 256, gen), bp::nn::BatchNorm1d(256), bp::nn::ReLU()};
#pragma once

#include <backprop/nn/module.hpp>
#include <cstdint>
#include <string>

namespace backprop::nn {

struct BatchNormOptions {
  double eps = 1e-5;
  double momentum = 0.1;
  /// Learn a per-feature scale gamma and shift beta.
  bool affine = true;
  DType dtype = f32;
};

/// What BatchNorm1d and BatchNorm2d share: the options, the parameters gamma ("weight") and beta ("bias"), the
/// buffers and their accessors, and the update of the running statistics. Not a layer of its own.
class BatchNormBase : public Module {
 public:
  /// gamma [C] and beta [C] (undefined when affine is false).
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }
  const Tensor& running_mean() const { return running_mean_; }
  const Tensor& running_var() const { return running_var_; }
  /// Training steps taken so far (the i64 buffer "num_batches_tracked").
  std::int64_t num_batches_tracked() const;
  std::int64_t num_features() const { return features_; }
  const BatchNormOptions& options() const { return options_; }

 protected:
  /// Registers the parameters and buffers. `type` ("BatchNorm1d") starts the messages. Throws ValueError when
  /// features <= 0, eps < 0 or momentum is outside [0, 1].
  BatchNormBase(const char* type, std::int64_t features, BatchNormOptions options);
  /// Moves the running statistics towards the batch's mean `mu` and biased variance `var` (C values each, any
  /// shape) taken over `n` values per feature, and counts the step. Outside the graph.
  void track(const Tensor& mu, const Tensor& var, std::int64_t n);

  std::int64_t features_;
  BatchNormOptions options_;
  Tensor weight_, bias_, running_mean_, running_var_, num_batches_tracked_;
};

class BatchNorm1d : public BatchNormBase {
 public:
  /// Throws ValueError when features <= 0, eps < 0 or momentum is outside [0, 1].
  explicit BatchNorm1d(std::int64_t features, BatchNormOptions options = {});

  /// x [N, C] -> [N, C]. Throws ShapeError unless x is [N, features]; ValueError when training with N < 2
  /// (a batch of one has no variance); DTypeError when x's dtype differs from the layer's.
  Tensor forward(const Tensor& x) override;
  /// "BatchNorm1d(256, eps=1e-05, momentum=0.1, affine=true)"
  std::string repr() const override;
};

/// Batch normalisation of images [N, C, H, W]: the statistics of channel c are taken over N, H and W (n =
/// N H W values, running_var moves with var * n / (n - 1)); otherwise as BatchNorm1d, with the same options,
/// parameters and buffers. Example: bp::nn::BatchNorm2d bn(32);  // after a Conv2d with 32 output channels
class BatchNorm2d : public BatchNormBase {
 public:
  /// Throws ValueError when features <= 0, eps < 0 or momentum is outside [0, 1].
  explicit BatchNorm2d(std::int64_t features, BatchNormOptions options = {});

  /// x [N, C, H, W] -> the same shape. Throws ShapeError unless x is 4-D with C = features; ValueError when
  /// training with N H W < 2; DTypeError when x's dtype differs from the layer's.
  Tensor forward(const Tensor& x) override;
  /// relu(forward(x)), the same values and gradients up to rounding; in training one op whose passes over the
  /// image also apply the ReLU (Sequential calls it for a BatchNorm2d followed by a ReLU).
  Tensor forward_relu(const Tensor& x);
  /// max_pool2d(relu(forward(x)), 2), the same values and gradients up to rounding; in training one op that
  /// writes only the pooled output and recomputes the windows from x in its backward, so neither the
  /// full-size ReLU output nor the pool's indices are kept (Sequential calls it for a BatchNorm2d followed by
  /// a ReLU and a MaxPool2d with a 2x2 window, stride 2, no padding or dilation).
  Tensor forward_relu_pool(const Tensor& x);
  /// "BatchNorm2d(32, eps=1e-05, momentum=0.1, affine=True, track_running_stats=True)", as PyTorch prints it.
  std::string repr() const override;

 private:
  /// What the training op fuses after the normalisation.
  enum class Then { nothing, relu, relu_max_pool };
  Tensor normalize(const Tensor& x, Then then);
};

}  // namespace backprop::nn
