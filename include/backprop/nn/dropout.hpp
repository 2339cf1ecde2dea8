// backprop/nn/dropout.hpp — random masks against overfitting: Dropout (activations), DropConnect (weights).
//
// Dropout (inverted): in training each element is kept with probability 1 - p and scaled by 1 / (1 - p),
//   y = x * m / (1 - p),   m_i ~ Bernoulli(1 - p),   so E[y] = x,
// which makes eval mode the identity (no rescaling at test time). The gradient is dy/dx = m / (1 - p).
//
// DropConnect (Wan et al. 2013): a Linear layer whose *weights* are masked instead, with a fresh mask for
// each forward call (one mask shared by the whole mini-batch), using the same scaled convention:
//   W~ = W * M / (1 - p),   M_ij ~ Bernoulli(1 - p),   u = x W~^T + b,   y = f(u)
// (the bias is never masked; f is the optional activation). In eval mode:
//   - DropConnectInference::mean      y = f(x W^T + b)  (E[W~] = W: the "mean network")
//   - DropConnectInference::gaussian  moment matching: for each row and output unit, u is about normal
//       with mean mu = x W^T + b and variance s^2 = p / (1 - p) * (x^2) (W^2)^T  (sums of independent scaled
//       Bernoulli terms: Var[M/(1-p)] = p / (1-p)), and y = (1/S) sum_s f(mu + s * z_s) with z_s ~ N(0, 1),
//       S = `samples` draws. With f = linear the average is exactly mu, so no samples are drawn.
// Each module owns its own Generator, seeded from the one given at construction (gen.next()), so a run with
// the same seed draws the same masks.
//
// Example:
//   bp::Generator gen(7);
//   bp::nn::Sequential net{bp::nn::Linear(784, 256, gen), bp::nn::ReLU(), bp::nn::Dropout(0.5, gen),
//                          bp::nn::DropConnect(256, 10, 0.5, gen)};
//   net.eval();                                            // both become deterministic
#pragma once

#include <backprop/generator.hpp>
#include <backprop/nn/init.hpp>
#include <backprop/nn/module.hpp>
#include <cstdint>
#include <string>

namespace backprop::nn {

class Dropout : public Module {
 public:
  /// Throws ValueError naming p unless 0 <= p < 1.
  Dropout(double p, Generator& gen);
  /// Any shape, either dtype. Identity in eval mode or when p == 0.
  Tensor forward(const Tensor& x) override;
  /// "Dropout(p=0.5)"
  std::string repr() const override;
  double p() const { return p_; }
  /// The module's own random stream (its state can be saved and restored for exact resumption).
  Generator& generator() { return gen_; }

 private:
  double p_;
  Generator gen_;
};

enum class DropConnectInference { mean, gaussian };

struct DropConnectOptions {
  bool bias = true;
  DropConnectInference inference = DropConnectInference::mean;
  /// Draws per unit for the gaussian inference.
  int samples = 16;
  /// Applied after the masked product (inside the layer, so gaussian inference can average it). Default:
  /// none.
  Nonlinearity activation = Nonlinearity::linear;
  double slope = 0.01;  // for leaky_relu
  /// Weight initialisation, as for Linear (gain from `activation`, or ReLU's when the activation is linear).
  Init init = Init::kaiming_uniform;
  DType dtype = f32;
};

class DropConnect : public Module {
 public:
  /// Throws ValueError naming p unless 0 <= p < 1, when in or out is not positive, or samples < 1.
  DropConnect(std::int64_t in, std::int64_t out, double p, Generator& gen, DropConnectOptions options = {});
  /// x [N, in] -> [N, out]. Throws ShapeError / DTypeError like Linear.
  Tensor forward(const Tensor& x) override;
  /// "DropConnect(in=256, out=10, p=0.5, bias=true, inference=mean)"
  std::string repr() const override;

  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }
  double p() const { return p_; }
  const DropConnectOptions& options() const { return options_; }
  Generator& generator() { return gen_; }

 private:
  std::int64_t in_, out_;
  double p_;
  DropConnectOptions options_;
  Generator gen_;
  Tensor weight_, bias_;
};

/// Dropout of whole channels: in training each channel of each sample of [N, C, H, W] (or [C, H, W]) is kept
/// with probability 1 - p and scaled by 1 / (1 - p), else zeroed (one draw per (n, c), in row-major order).
/// Neighbouring pixels of a feature map are strongly correlated, so dropping single pixels barely
/// regularises a convolution; dropping its channels does. Identity in eval mode. Example:
/// bp::nn::Dropout2d drop(0.2, gen);
class Dropout2d : public Module {
 public:
  /// Throws ValueError naming p unless 0 <= p < 1.
  Dropout2d(double p, Generator& gen);
  /// x [N, C, H, W] or [C, H, W]; ShapeError for other ranks.
  Tensor forward(const Tensor& x) override;
  /// "Dropout2d(p=0.5)"
  std::string repr() const override;
  double p() const { return p_; }
  Generator& generator() { return gen_; }

 private:
  double p_;
  Generator gen_;
};

}  // namespace backprop::nn
