// BatchNormBase holds the options, tensors and running-statistics update of both layers. BatchNorm1d is
// composed of ops so that the gradient flows through the batch mean and variance (and can be differentiated
// again); the running statistics are updated outside the graph.
#include <backprop/nn/batchnorm.hpp>
#include <backprop/ops.hpp>

#include "kernels/conv.hpp"
#include "kernels/kernels.hpp"

namespace backprop::nn {

BatchNormBase::BatchNormBase(const char* type, std::int64_t features, BatchNormOptions options)
    : features_(features), options_(options) {
  BP_CHECK(features > 0, ValueError, type, ": features must be positive, got ", features);
  BP_CHECK(options.eps >= 0, ValueError, type, ": eps must be >= 0, got ", options.eps);
  BP_CHECK(options.momentum >= 0 && options.momentum <= 1, ValueError, type,
           ": momentum must be in [0, 1], got ", options.momentum);
  if (options.affine) {
    weight_ = register_parameter("weight", ones({features}, options.dtype));
    bias_ = register_parameter("bias", zeros({features}, options.dtype));
  }
  running_mean_ = register_buffer("running_mean", zeros({features}, options.dtype));
  running_var_ = register_buffer("running_var", ones({features}, options.dtype));
  num_batches_tracked_ = register_buffer("num_batches_tracked", scalar(0.0, i64));
}

std::int64_t BatchNormBase::num_batches_tracked() const {
  return num_batches_tracked_.data<std::int64_t>()[0];
}

void BatchNormBase::track(const Tensor& mu, const Tensor& var, std::int64_t n) {
  NoGradGuard guard;
  const double m = options_.momentum;
  const double unbiased = static_cast<double>(n) / static_cast<double>(n - 1);
  const DType dt = running_mean_.dtype();
  running_mean_.mul_(1.0 - m).add_(mu.detach().reshape({features_}).to(dt), m);
  running_var_.mul_(1.0 - m).add_(var.detach().reshape({features_}).to(dt), m * unbiased);
  num_batches_tracked_.fill_(static_cast<double>(num_batches_tracked() + 1));
}

BatchNorm1d::BatchNorm1d(std::int64_t features, BatchNormOptions options)
    : BatchNormBase("BatchNorm1d", features, options) {}

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
    track(mu, var, n);
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

namespace {
using kernels::BnEpilogue;

// dx, dgamma, dbeta of y = xhat gamma + beta (xhat = (x - mean) / sqrt(var + eps), the statistics of x over
// N, H, W) from dL/dy in ops: dx = invstd (g - mean(g) - xhat mean(g xhat)) with g = gamma dy, the textbook
// form, with the statistics recomputed from x so that second derivatives flow through them.
Tensors batch_norm_grads_in_ops(const Tensor& dy, const Tensor& x, const Tensor& gamma, bool has_beta,
                                double eps) {
  const Dims dims{0, 2, 3};
  const Tensor xc = sub(x, backprop::mean(x, dims, true));
  const Tensor inv = rdiv(sqrt(add(backprop::mean(mul(xc, xc), dims, true), eps)), 1.0);
  const Tensor xhat = mul(xc, inv);
  const Tensor g = gamma.defined() ? mul(dy, reshape(gamma, {1, x.size(1), 1, 1})) : dy;
  const Tensor dx = mul(
      inv, sub(sub(g, backprop::mean(g, dims, true)), mul(xhat, backprop::mean(mul(g, xhat), dims, true))));
  return Tensors{dx, gamma.defined() ? sum(mul(dy, xhat), dims) : Tensor(),
                 has_beta ? sum(dy, dims) : Tensor()};
}

// Training-mode normalisation as one op with a fused kernel (three passes forward, two backward) instead of
// ten composed ops over the image. Under create_graph the backward is the same formula written in ops, so
// second derivatives still flow through mean and variance. With `after`, a ReLU (forward_relu) or a ReLU and
// a 2x2 max pool (forward_relu_pool) after it are part of the op: their outputs and gradients come from the
// same passes, equal to what the separate ops give up to rounding.
Tensor batch_norm_train(const Tensor& x, const Tensor& gamma, const Tensor& beta, double eps,
                        Tensor& mean_out, Tensor& var_out, BnEpilogue after) {
  Tensor invstd;
  Tensor y = kernels::batch_norm_forward(x, gamma, beta, eps, mean_out, var_out, invstd, after);
  const bool has_beta = beta.defined();
  if (after == BnEpilogue::relu_max_pool)
    return record(
        "batch_norm_relu_max_pool", y, {x, gamma, beta},
        [x, gamma, beta, mean = mean_out, invstd, eps](const Tensor& dy_pooled) {
          if (!GradMode::is_enabled()) {
            Tensor dx, dgamma, dbeta;
            kernels::batch_norm_backward(dy_pooled, x, gamma, beta, mean, invstd, dx, dgamma, dbeta,
                                         BnEpilogue::relu_max_pool);
            return Tensors{dx, gamma.defined() ? dgamma : Tensor(), beta.defined() ? dbeta : Tensor()};
          }
          // In ops: the ReLU's output (a constant) gives the pool's indices and the ReLU's mask; dy is
          // scattered to the indices (differentiable in dy), masked, and goes into the formula.
          Tensor m, v, inv;
          const Tensor r = kernels::batch_norm_forward(x, gamma, beta, eps, m, v, inv, BnEpilogue::relu);
          Tensor pooled, indices;
          const std::int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
          kernels::max_pool2d(
              r,
              {.planes = n * c, .h = h, .w = w, .oh = h / 2, .ow = w / 2, .kh = 2, .kw = 2, .sh = 2, .sw = 2},
              dy_pooled.shape(), pooled, indices);
          const Tensor flat = reshape(dy_pooled, {n, c, (h / 2) * (w / 2)});
          const Tensor dy = reshape(
              scatter_add(zeros({n, c, h * w}, x.dtype()), 2, indices.reshape(flat.shape()).to(i64), flat),
              x.shape());
          return batch_norm_grads_in_ops(masked_scale(dy, kernels::unary(kernels::Unary::relu_mask, r), 1.0),
                                         x, gamma, beta.defined(), eps);
        });
  const bool relu = after == BnEpilogue::relu;
  return record(
      relu ? "batch_norm_relu" : "batch_norm", y, {x, gamma, beta},
      [x, gamma, mean = mean_out, invstd, eps, has_beta, relu](const Tensor& dy_out, const Tensor& out) {
        if (!GradMode::is_enabled()) {
          Tensor dx, dgamma, dbeta;
          kernels::batch_norm_backward(dy_out, x, gamma, Tensor(), mean, invstd, dx, dgamma, dbeta,
                                       relu ? BnEpilogue::relu : BnEpilogue::none, out);
          return Tensors{dx, gamma.defined() ? dgamma : Tensor(), has_beta ? dbeta : Tensor()};
        }
        // The ReLU's backward as relu() writes it, then the formula in ops.
        const Tensor dy =
            relu ? masked_scale(dy_out, kernels::unary(kernels::Unary::relu_mask, out), 1.0) : dy_out;
        return batch_norm_grads_in_ops(dy, x, gamma, has_beta, eps);
      },
      {.save_output = relu});
}
}  // namespace

BatchNorm2d::BatchNorm2d(std::int64_t features, BatchNormOptions options)
    : BatchNormBase("BatchNorm2d", features, options) {}

Tensor BatchNorm2d::forward(const Tensor& x) {
  return normalize(x, Then::nothing);
}

Tensor BatchNorm2d::forward_relu(const Tensor& x) {
  return is_training() ? normalize(x, Then::relu) : relu(normalize(x, Then::nothing));
}

Tensor BatchNorm2d::forward_relu_pool(const Tensor& x) {
  if (!is_training() || x.dim() != 4 || x.size(2) < 2 || x.size(3) < 2) return max_pool2d(forward_relu(x), 2);
  return normalize(x, Then::relu_max_pool);
}

Tensor BatchNorm2d::normalize(const Tensor& x, Then then) {
  BP_CHECK(x.dim() == 4 && x.size(1) == features_, ShapeError, "BatchNorm2d(", features_,
           "): expected input [N, ", features_, ", H, W], got ", x.shape());
  BP_CHECK(x.dtype() == running_mean_.dtype(), DTypeError, "BatchNorm2d(", features_, "): input is ",
           x.dtype(), " but the layer is ", running_mean_.dtype());
  const std::int64_t n = x.size(0) * x.size(2) * x.size(3);
  const double eps = options_.eps;
  if (is_training()) {
    BP_CHECK(n > 1, ValueError, "BatchNorm2d(", features_,
             "): training needs more than one value per channel to estimate a variance, got input ",
             x.shape());
    Tensor mu, var;
    const BnEpilogue after = then == Then::relu            ? BnEpilogue::relu
                             : then == Then::relu_max_pool ? BnEpilogue::relu_max_pool
                                                           : BnEpilogue::none;
    Tensor y = batch_norm_train(x, weight_, bias_, eps, mu, var, after);
    track(mu, var, n);
    return y;
  }
  // Eval: the running statistics are constants, y = (x - running_mean) (gamma / sqrt(running_var + eps)) + beta
  // with the per-channel factor formed first, so the image is scaled once.
  const Shape channel{1, features_, 1, 1};
  Tensor inv;
  {
    NoGradGuard guard;
    inv = rdiv(sqrt(add(running_var_, eps)), 1.0).reshape(channel);
  }
  const Tensor y = mul(sub(x, running_mean_.reshape(channel)),
                       options_.affine ? mul(inv, reshape(weight_, channel)) : inv);
  return options_.affine ? add(y, reshape(bias_, channel)) : y;
}

std::string BatchNorm2d::repr() const {
  return detail::cat("BatchNorm2d(", features_, ", eps=", options_.eps, ", momentum=", options_.momentum,
                     ", affine=", options_.affine ? "True" : "False", ", track_running_stats=True)");
}

}  // namespace backprop::nn
