// SyncBatchNorm1d and SyncBatchNorm2d: batch normalisation with the mean and variance of the global batch
// (every rank's rows), one implementation for both.
#include <backprop/ops.hpp>
#include <string>

#include "dist/mpi_util.hpp"

namespace backprop::dist {

namespace {

Tensor find(const std::vector<std::pair<std::string, Tensor>>& named, const std::string& name) {
  for (const auto& [n, t] : named)
    if (n == name) return t;
  return {};
}

}  // namespace

// ---- the shared part --------------------------------------------------------------------------------------

detail::SyncBatchNorm::SyncBatchNorm(const nn::Module& bn, std::int64_t features,
                                     const nn::BatchNormOptions& options)
    : features_(features), options_(options) {
  const auto params = bn.named_parameters(), buffers = bn.named_buffers();
  if (options.affine) {
    weight_ = register_parameter("weight", find(params, "weight"));
    bias_ = register_parameter("bias", find(params, "bias"));
  }
  running_mean_ = register_buffer("running_mean", find(buffers, "running_mean"));
  running_var_ = register_buffer("running_var", find(buffers, "running_var"));
  num_batches_tracked_ = register_buffer("num_batches_tracked", find(buffers, "num_batches_tracked"));
  train(bn.is_training());
}

// Training: two all-reduces, as one process's two passes: mu = (sum over ranks of sum_r x) / n, then
// var = (sum over ranks of sum_r (x - mu)^2) / n, with n the global count of values per channel. The centred
// second pass keeps the variance accurate when |mu| >> sigma (S2/n - mu^2 would cancel). all_reduce_sum is an
// op whose backward all-reduces too, so each rank's dL/dx carries the terms through every rank's values.
Tensor detail::SyncBatchNorm::normalize(const Tensor& x, const std::vector<std::int64_t>& dims,
                                        const Shape& channel, const std::string& who) {
  Tensor y;
  if (is_training()) {
    const double n = all_reduce_sum(static_cast<double>(x.numel() / features_));
    BP_CHECK(n > 1, ValueError, who,
             ": training needs more than one value per channel in the global batch to estimate a variance, "
             "got ",
             n);
    const Tensor mu = mul(all_reduce_sum(sum(x, dims, true)), 1.0 / n);
    const Tensor xc = sub(x, mu);
    const Tensor var = mul(all_reduce_sum(sum(mul(xc, xc), dims, true)), 1.0 / n);
    y = mul(xc, rdiv(sqrt(add(var, options_.eps)), 1.0));

    NoGradGuard guard;
    const double m = options_.momentum;
    running_mean_.mul_(1.0 - m).add_(mu.detach().reshape({features_}), m);
    running_var_.mul_(1.0 - m).add_(var.detach().reshape({features_}), m * n / (n - 1));
    num_batches_tracked_.fill_(num_batches_tracked_.item() + 1.0);
  } else {
    Tensor inv;
    {
      NoGradGuard guard;
      inv = rdiv(sqrt(add(running_var_, options_.eps)), 1.0).reshape(channel);
    }
    y = mul(sub(x, running_mean_.reshape(channel)), inv);
  }
  if (options_.affine) y = add(mul(y, reshape(weight_, channel)), reshape(bias_, channel));
  return y;
}

// ---- SyncBatchNorm1d ----------------------------------------------------------------------------------------

SyncBatchNorm1d::SyncBatchNorm1d(const nn::BatchNorm1d& bn)
    : SyncBatchNorm(bn, bn.num_features(), bn.options()) {}

Tensor SyncBatchNorm1d::forward(const Tensor& x) {
  BP_CHECK(x.dim() == 2 && x.size(1) == features_, ShapeError, "SyncBatchNorm1d(", features_,
           "): expected input [N, ", features_, "], got ", x.shape());
  BP_CHECK(x.dtype() == running_mean_.dtype(), DTypeError, "SyncBatchNorm1d(", features_, "): input is ",
           x.dtype(), " but the layer is ", running_mean_.dtype());
  return normalize(x, {0}, {1, features_}, backprop::detail::cat("SyncBatchNorm1d(", features_, ")"));
}

std::string SyncBatchNorm1d::repr() const {
  return backprop::detail::cat("SyncBatchNorm1d(", features_, ", eps=", options_.eps,
                               ", momentum=", options_.momentum,
                               ", affine=", options_.affine ? "true" : "false", ")");
}

// ---- SyncBatchNorm2d ----------------------------------------------------------------------------------------

SyncBatchNorm2d::SyncBatchNorm2d(const nn::BatchNorm2d& bn)
    : SyncBatchNorm(bn, bn.num_features(), bn.options()) {}

Tensor SyncBatchNorm2d::forward(const Tensor& x) {
  BP_CHECK(x.dim() == 4 && x.size(1) == features_, ShapeError, "SyncBatchNorm2d(", features_,
           "): expected input [N, ", features_, ", H, W], got ", x.shape());
  BP_CHECK(x.dtype() == running_mean_.dtype(), DTypeError, "SyncBatchNorm2d(", features_, "): input is ",
           x.dtype(), " but the layer is ", running_mean_.dtype());
  return normalize(x, {0, 2, 3}, {1, features_, 1, 1},
                   backprop::detail::cat("SyncBatchNorm2d(", features_, ")"));
}

std::string SyncBatchNorm2d::repr() const {
  return backprop::detail::cat(
      "SyncBatchNorm2d(", features_, ", eps=", options_.eps, ", momentum=", options_.momentum,
      ", affine=", options_.affine ? "True" : "False", ", track_running_stats=True)");
}

std::shared_ptr<nn::Sequential> convert_sync_batchnorm(const nn::Sequential& model) {
  auto out = std::make_shared<nn::Sequential>();
  for (std::size_t i = 0; i < model.size(); ++i) {
    nn::ModulePtr layer = model[i];
    if (auto bn1 = std::dynamic_pointer_cast<nn::BatchNorm1d>(layer)) {
      layer = std::make_shared<SyncBatchNorm1d>(*bn1);
    } else if (auto bn2 = std::dynamic_pointer_cast<nn::BatchNorm2d>(layer)) {
      layer = std::make_shared<SyncBatchNorm2d>(*bn2);
    } else if (auto inner = std::dynamic_pointer_cast<nn::Sequential>(layer)) {
      layer = convert_sync_batchnorm(*inner);
    }
    out->push_back(layer);
  }
  out->train(model.is_training());
  return out;
}

}  // namespace backprop::dist
