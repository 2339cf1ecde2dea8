// Activation modules: each forwards to the op of the same name (the op holds the derivative).
#include <backprop/nn/activation.hpp>
#include <backprop/ops.hpp>
#include <cmath>

namespace backprop::nn {

Tensor Sigmoid::forward(const Tensor& x) {
  return sigmoid(x);
}
Tensor Tanh::forward(const Tensor& x) {
  return tanh(x);
}
Tensor ReLU::forward(const Tensor& x) {
  return relu(x);
}

LeakyReLU::LeakyReLU(double slope) : slope_(slope) {
  BP_CHECK(std::isfinite(slope), ValueError, "LeakyReLU: slope must be finite, got ", slope);
}
Tensor LeakyReLU::forward(const Tensor& x) {
  return leaky_relu(x, slope_);
}
std::string LeakyReLU::repr() const {
  return detail::cat("LeakyReLU(slope=", slope_, ")");
}

Tensor Softmax::forward(const Tensor& x) {
  return softmax(x, axis_);
}
std::string Softmax::repr() const {
  return detail::cat("Softmax(axis=", axis_, ")");
}

Tensor LogSoftmax::forward(const Tensor& x) {
  return log_softmax(x, axis_);
}
std::string LogSoftmax::repr() const {
  return detail::cat("LogSoftmax(axis=", axis_, ")");
}

}  // namespace backprop::nn
