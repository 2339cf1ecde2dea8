// Mean: backprop::mean over one dimension, with the layer's own shape check.
#include <backprop/nn/reduce.hpp>
#include <backprop/ops.hpp>

namespace backprop::nn {

Tensor Mean::forward(const Tensor& x) {
  const auto rank = static_cast<std::int64_t>(x.dim());
  BP_CHECK(dim_ >= -rank && dim_ < rank, ShapeError, repr(), ": dim is out of range for input ", x.shape());
  return mean(x, dim_, keepdim_);
}

std::string Mean::repr() const {
  return detail::cat("Mean(dim=", dim_, ", keepdim=", keepdim_ ? "true" : "false", ")");
}

}  // namespace backprop::nn
