// Tensors of model files and checkpoints written by older versions, brought to today's dtypes. Internal.
#pragma once

#include <backprop/tensor.hpp>
#include <string>

namespace backprop::io::detail {

/// BatchNorm's "num_batches_tracked" was a 0-d F64 counter before it became I64, as in PyTorch: such a tensor
/// comes back as i64 (its value is a whole number); every other tensor as it is.
inline Tensor upgrade_state_tensor(const std::string& name, const Tensor& t) {
  const bool counter = name == "num_batches_tracked" || name.ends_with(".num_batches_tracked");
  if (counter && t.dtype() == f64 && t.dim() == 0) return t.to(i64);
  return t;
}

}  // namespace backprop::io::detail
