// BatchNorm1d, composed of ops so that the gradient flows through the batch mean and variance (and can be
// differentiated again). The running statistics are updated outside the graph.
#include <backprop/nn/batchnorm.hpp>
#include <backprop/ops.hpp>

namespace backprop::nn {

BatchNorm1d::BatchNorm1d(std::int64_t features, BatchNormOptions options)
    : features_(features), options_(options) {
  BP_CHECK(features > 0, ValueError, "BatchNorm1d: features must be positive, got ", features);
  BP_CHECK(options.eps >= 0, ValueError, "BatchNorm1d: eps must be >= 0, got ", options.eps);
  BP_CHECK(options.momentum >= 0 && options.momentum <= 1, ValueError,
           "BatchNorm1d: momentum must be in [0, 1], got ", options.momentum);
  if (options.affine) {
    weight_ = register_parameter("weight", ones({features}, options.dtype));
    bias_ = register_parameter("bias", zeros({features}, options.dtype));
  }
  running_mean_ = register_buffer("running_mean", zeros({features}, options.dtype));
  running_var_ = register_buffer("running_var", ones({features}, options.dtype));
  num_batches_tracked_ = register_buffer("num_batches_tracked", scalar(0.0, f64));
}

std::int64_t BatchNorm1d::num_batches_tracked() const {
  return static_cast<std::int64_t>(num_batches_tracked_.item());
}

Tensor BatchNorm1d::forward(const Tensor& x) {
  BP_CHECK(x.dim() == 2 && x.size(1) == features_, ShapeError, "BatchNorm1d(", features_,
           "): expected input [N, ", features_, "], got ", x.shape());
  BP_CHECK(x.dtype() == running_mean_.dtype(), DTypeError, "BatchNorm1d(", features_, "): input is ",
           x.dtype(), " but the layer is ", running_mean_.dtype());
  const std::int64_t n = x.size(0);
  const double eps = options_.eps;
  Tensor y;
  if (is_training()) {
    BP_CHECK(n > 1, ValueError, "BatchNorm1d(", features_,
             "): training needs more than one row per batch to estimate a variance, got input ", x.shape());
    // mu and var are functions of every row, so dL/dx_i picks up terms through them:
    // dL/dx = (1/sqrt(var+eps)) (g - mean(g) - xhat mean(g xhat)) with g = gamma dL/dy; the ops derive it.
    const Tensor mu = mean(x, 0, true);
    const Tensor xc = sub(x, mu);
    const Tensor var = mean(mul(xc, xc), 0, true);
    y = mul(xc, rdiv(sqrt(add(var, eps)), 1.0));

    NoGradGuard guard;
    const double m = options_.momentum;
    const double unbiased = static_cast<double>(n) / static_cast<double>(n - 1);
    running_mean_.mul_(1.0 - m).add_(mu.detach().reshape({features_}), m);
    running_var_.mul_(1.0 - m).add_(var.detach().reshape({features_}), m * unbiased);
    num_batches_tracked_.fill_(num_batches_tracked_.item() + 1.0);
  } else {
    // Running statistics are constants: y = (x - running_mean) / sqrt(running_var + eps).
    Tensor inv;
    {
      NoGradGuard guard;
      inv = rdiv(sqrt(add(running_var_, eps)), 1.0);
    }
    y = mul(sub(x, running_mean_), inv);
  }
  if (options_.affine) y = add(mul(y, weight_), bias_);
  return y;
}

std::string BatchNorm1d::repr() const {
  return detail::cat("BatchNorm1d(", features_, ", eps=", options_.eps, ", momentum=", options_.momentum,
                     ", affine=", options_.affine ? "true" : "false", ")");
}

// ---- BatchNorm2d: the same normalisation with the statistics over N, H and W of each channel ---------------

BatchNorm2d::BatchNorm2d(std::int64_t features, BatchNormOptions options)
    : features_(features), options_(options) {
  BP_CHECK(features > 0, ValueError, "BatchNorm2d: features must be positive, got ", features);
  BP_CHECK(options.eps >= 0, ValueError, "BatchNorm2d: eps must be >= 0, got ", options.eps);
  BP_CHECK(options.momentum >= 0 && options.momentum <= 1, ValueError,
           "BatchNorm2d: momentum must be in [0, 1], got ", options.momentum);
  if (options.affine) {
    weight_ = register_parameter("weight", ones({features}, options.dtype));
    bias_ = register_parameter("bias", zeros({features}, options.dtype));
  }
  running_mean_ = register_buffer("running_mean", zeros({features}, options.dtype));
  running_var_ = register_buffer("running_var", ones({features}, options.dtype));
  num_batches_tracked_ = register_buffer("num_batches_tracked", scalar(0.0, f64));
}

std::int64_t BatchNorm2d::num_batches_tracked() const {
  return static_cast<std::int64_t>(num_batches_tracked_.item());
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  BP_CHECK(x.dim() == 4 && x.size(1) == features_, ShapeError, "BatchNorm2d(", features_,
           "): expected input [N, ", features_, ", H, W], got ", x.shape());
  BP_CHECK(x.dtype() == running_mean_.dtype(), DTypeError, "BatchNorm2d(", features_, "): input is ",
           x.dtype(), " but the layer is ", running_mean_.dtype());
  const std::int64_t n = x.size(0) * x.size(2) * x.size(3);
  const Shape channel{1, features_, 1, 1};
  const double eps = options_.eps;
  Tensor y;
  if (is_training()) {
    BP_CHECK(n > 1, ValueError, "BatchNorm2d(", features_,
             "): training needs more than one value per channel to estimate a variance, got input ",
             x.shape());
    const Dims dims{0, 2, 3};
    const Tensor mu = mean(x, dims, true);
    const Tensor xc = sub(x, mu);
    const Tensor var = mean(mul(xc, xc), dims, true);
    // The per-channel factors are combined first ([1, C, 1, 1]), so the image-sized tensor is scaled once.
    Tensor scale = rdiv(sqrt(add(var, eps)), 1.0);
    if (options_.affine) scale = mul(scale, reshape(weight_, channel));
    y = mul(xc, scale);

    NoGradGuard guard;
    const double m = options_.momentum;
    const double unbiased = static_cast<double>(n) / static_cast<double>(n - 1);
    running_mean_.mul_(1.0 - m).add_(mu.detach().reshape({features_}), m);
    running_var_.mul_(1.0 - m).add_(var.detach().reshape({features_}), m * unbiased);
    num_batches_tracked_.fill_(num_batches_tracked_.item() + 1.0);
  } else {
    Tensor inv;
    {
      NoGradGuard guard;
      inv = rdiv(sqrt(add(running_var_, eps)), 1.0).reshape(channel);
    }
    y = mul(sub(x, running_mean_.reshape(channel)),
            options_.affine ? mul(inv, reshape(weight_, channel)) : inv);
  }
  return options_.affine ? add(y, reshape(bias_, channel)) : y;
}

std::string BatchNorm2d::repr() const {
  return detail::cat("BatchNorm2d(", features_, ", eps=", options_.eps, ", momentum=", options_.momentum,
                     ", affine=", options_.affine ? "True" : "False", ", track_running_stats=True)");
}

}  // namespace backprop::nn
