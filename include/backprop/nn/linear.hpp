// backprop/nn/linear.hpp — the dense (fully connected) layer.
//
// y = x W^T + b for x [N, in], W [out, in], b [out], computed in one fused GEMM (backprop::linear). Its
// gradients are the delta rule in matrix form: with delta = dC/dy [N, out],
//   dC/dW = delta^T x  [out, in],   dC/db = sum over the batch of delta  [out],   dC/dx = delta W  [N, in].
//
// Example:
//   bp::Generator gen(0);
//   bp::nn::Linear fc(784, 256, gen);                                   // He-uniform weight, zero bias
//   bp::nn::Linear out(256, 10, gen, {.bias = false, .init = bp::nn::Init::xavier_uniform});
//   bp::Tensor y = fc(x);                                               // x [64, 784] -> y [64, 256]
#pragma once

#include <backprop/generator.hpp>
#include <backprop/nn/init.hpp>
#include <backprop/nn/module.hpp>
#include <cstdint>
#include <string>

namespace backprop::nn {

struct LinearOptions {
  bool bias = true;
  /// Default: Kaiming (He) uniform with the ReLU gain, U(-b, b), b = sqrt(6 / in), and a zero bias. ReLU
  /// networks are the common case, and this scale keeps the variance of activations constant through ReLU
  /// layers, so deep stacks neither vanish nor explode at the start. For sigmoid or tanh layers choose
  /// `.nonlinearity` accordingly or Init::xavier_uniform.
  Init init = Init::kaiming_uniform;
  /// The activation that follows this layer; it sets the initialisation gain.
  Nonlinearity nonlinearity = Nonlinearity::relu;
  DType dtype = f32;
};

class Linear : public Module {
 public:
  /// A layer mapping `in` features to `out`. Throws ValueError when in or out is not positive.
  Linear(std::int64_t in, std::int64_t out, Generator& gen, LinearOptions options = {});

  /// x [N, in] -> [N, out]; x [..., in] -> [..., out] (leading dims as one batch). Throws ShapeError naming
  /// both shapes when x is not [..., in], DTypeError when its dtype differs from the layer's.
  Tensor forward(const Tensor& x) override;
  /// "Linear(in=784, out=256, bias=true)".
  std::string repr() const override;

  /// [out, in]
  const Tensor& weight() const { return weight_; }
  /// [out], undefined when the layer has no bias.
  const Tensor& bias() const { return bias_; }
  std::int64_t in_features() const { return in_; }
  std::int64_t out_features() const { return out_; }

 protected:
  /// "weight" and "bias" can be shared (Module::share_parameter), e.g. an output layer tied to an Embedding.
  bool on_parameter_shared(const std::string& name, const Tensor& t) override;

 private:
  std::int64_t in_ = 0, out_ = 0;
  Tensor weight_, bias_;
};

}  // namespace backprop::nn
