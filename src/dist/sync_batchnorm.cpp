// SyncBatchNorm1d: batch normalisation with the mean and variance of the global batch (every rank's rows).
#include <backprop/ops.hpp>
#include <cstdio>
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

SyncBatchNorm1d::SyncBatchNorm1d(const nn::BatchNorm1d& bn)
    : features_(bn.num_features()), eps_(1e-5), momentum_(0.1), affine_(bn.weight().defined()) {
  // eps and momentum are only visible through repr(): "BatchNorm1d(256, eps=1e-05, momentum=0.1,
  // affine=true)".
  const std::string text = bn.repr();
  const auto at = text.find("eps=");
  BP_CHECK(at != std::string::npos &&
               std::sscanf(text.c_str() + at, "eps=%lf, momentum=%lf", &eps_, &momentum_) == 2,
           ValueError, "SyncBatchNorm1d: cannot read eps and momentum from '", text, "'");
  if (affine_) {
    weight_ = register_parameter("weight", bn.weight());
    bias_ = register_parameter("bias", bn.bias());
  }
  const auto buffers = bn.named_buffers();
  running_mean_ = register_buffer("running_mean", find(buffers, "running_mean"));
  running_var_ = register_buffer("running_var", find(buffers, "running_var"));
  num_batches_tracked_ = register_buffer("num_batches_tracked", find(buffers, "num_batches_tracked"));
  train(bn.is_training());
}

Tensor SyncBatchNorm1d::forward(const Tensor& x) {
  BP_CHECK(x.dim() == 2 && x.size(1) == features_, ShapeError, "SyncBatchNorm1d(", features_,
           "): expected input [N, ", features_, "], got ", x.shape());
  BP_CHECK(x.dtype() == running_mean_.dtype(), DTypeError, "SyncBatchNorm1d(", features_, "): input is ",
           x.dtype(), " but the layer is ", running_mean_.dtype());
  Tensor y;
  if (is_training()) {
    const double n = all_reduce_sum(static_cast<double>(x.size(0)));
    BP_CHECK(n > 1, ValueError, "SyncBatchNorm1d(", features_,
             "): training needs more than one row in the global batch to estimate a variance, got ", n);
    // Global moments from summed local ones: mu = S1 / n, var = S2 / n - mu^2. all_reduce_sum is an op whose
    // backward all-reduces too, so each rank's dL/dx carries the terms through every rank's rows.
    const Tensor s1 = all_reduce_sum(sum(x, 0, true));
    const Tensor s2 = all_reduce_sum(sum(mul(x, x), 0, true));
    const Tensor mu = mul(s1, 1.0 / n);
    const Tensor var = sub(mul(s2, 1.0 / n), mul(mu, mu));
    y = mul(sub(x, mu), rdiv(sqrt(add(var, eps_)), 1.0));

    NoGradGuard guard;
    running_mean_.mul_(1.0 - momentum_).add_(mu.detach().reshape({features_}), momentum_);
    running_var_.mul_(1.0 - momentum_).add_(var.detach().reshape({features_}), momentum_ * n / (n - 1));
    num_batches_tracked_.fill_(num_batches_tracked_.item() + 1.0);
  } else {
    Tensor inv;
    {
      NoGradGuard guard;
      inv = rdiv(sqrt(add(running_var_, eps_)), 1.0);
    }
    y = mul(sub(x, running_mean_), inv);
  }
  if (affine_) y = add(mul(y, weight_), bias_);
  return y;
}

std::string SyncBatchNorm1d::repr() const {
  return backprop::detail::cat("SyncBatchNorm1d(", features_, ", eps=", eps_, ", momentum=", momentum_,
                               ", affine=", affine_ ? "true" : "false", ")");
}

std::shared_ptr<nn::Sequential> convert_sync_batchnorm(const nn::Sequential& model) {
  auto out = std::make_shared<nn::Sequential>();
  for (std::size_t i = 0; i < model.size(); ++i) {
    nn::ModulePtr layer = model[i];
    if (auto bn = std::dynamic_pointer_cast<nn::BatchNorm1d>(layer)) {
      layer = std::make_shared<SyncBatchNorm1d>(*bn);
    } else if (auto inner = std::dynamic_pointer_cast<nn::Sequential>(layer)) {
      layer = convert_sync_batchnorm(*inner);
    }
    out->push_back(layer);
  }
  out->train(model.is_training());
  return out;
}

}  // namespace backprop::dist
