// backprop/optim/optimizers.hpp — SGD (momentum, Nesterov), Adam, AdamW, RMSprop and Rprop.
//
// Each update below is applied element-wise, for every parameter w with gradient g = dC/dw, in one fused loop
// (f32 parameters are updated in f32 arithmetic, f64 in f64). t counts this parameter's updates from 1.
//
//   SGD      g <- g + wd w;  with momentum mu: b <- g (first step), b <- mu b + (1 - dampening) g (later);
//            g <- g + mu b (nesterov) or g <- b;  w <- w - lr g
//   Adam     g <- g + wd w (L2 folded into the gradient);  m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;
//            w <- w - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
//   AdamW    w <- w (1 - lr wd) (decoupled weight decay), then Adam's update with wd = 0
//   RMSprop  g <- g + wd w;  s <- alpha s + (1 - alpha) g^2;  s~ = s
//            (centered: c <- alpha c + (1 - alpha) g, s~ = s - c^2)
//            d = sqrt(s~) + eps;  with momentum mu: b <- mu b + g / d, w <- w - lr b;  else w <- w - lr g / d
//   Rprop    (iRprop-) per element step size s (starts at lr): if g g_prev > 0, s <- min(s eta+, step_max);
//            if g g_prev < 0, s <- max(s eta-, step_min) and g <- 0;  w <- w - sign(g) s;  g_prev <- g
// These are the update rules PyTorch documents for its optimisers of the same names (defaults included), so
// results can be compared with it.
//
// Example:
//   bp::optim::SGD sgd(net.parameters(),
//                      {.lr = 0.1, .momentum = 0.9, .nesterov = true, .weight_decay = 5e-4});
//   bp::optim::Adam adam(net.parameters(), {.lr = 1e-3});
//   bp::optim::AdamW adamw(net.parameters(), {.lr = 1e-3, .weight_decay = 1e-2});
//   bp::optim::RMSprop rmsprop(net.parameters(), {.lr = 1e-3});  // momentum 0 unless given
#pragma once

#include <backprop/optim/optimizer.hpp>
#include <string>

namespace backprop::optim {

struct SGDOptions {
  double lr = 0.01;
  double momentum = 0.0;
  double dampening = 0.0;
  bool nesterov = false;
  double weight_decay = 0.0;
};

/// Plain, momentum or Nesterov gradient descent. Buffer: "momentum_buffer" (when momentum > 0).
/// Throws ValueError on a negative lr, momentum, dampening or weight_decay, or nesterov without momentum or
/// with dampening.
class SGD : public Optimizer {
 public:
  explicit SGD(Tensors params, SGDOptions options = {});
  void step() override;
  std::string repr() const override;
  const SGDOptions& options() const { return options_; }

 private:
  SGDOptions options_;
};

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  /// L2 regularisation added to the gradient (for decoupled decay use AdamW).
  double weight_decay = 0.0;
};

/// Adam. Buffers: "step" (0-d, this parameter's update count), "exp_avg" (m), "exp_avg_sq" (v).
/// Throws ValueError on lr < 0, betas outside [0, 1), eps < 0 or weight_decay < 0.
class Adam : public Optimizer {
 public:
  explicit Adam(Tensors params, AdamOptions options = {});
  void step() override;
  std::string repr() const override;
  const AdamOptions& options() const { return options_; }

 protected:
  Adam(Tensors params, AdamOptions options, bool decoupled);

 private:
  AdamOptions options_;
  bool decoupled_ = false;
};

struct AdamWOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  /// Decoupled: w <- w (1 - lr weight_decay) before the Adam step.
  double weight_decay = 1e-2;
};

/// Adam with decoupled weight decay (Loshchilov & Hutter). Same buffers and checks as Adam.
class AdamW : public Adam {
 public:
  explicit AdamW(Tensors params, AdamWOptions options = {});
};

struct RMSpropOptions {
  double lr = 1e-2;
  double alpha = 0.99;
  double eps = 1e-8;
  double momentum = 0.0;
  double weight_decay = 0.0;
  /// Normalise by an estimate of the gradient's variance instead of its second moment.
  bool centered = false;
};

/// RMSprop. Buffers: "square_avg", "momentum_buffer" (momentum > 0), "grad_avg" (centered).
/// Throws ValueError on lr < 0, alpha outside [0, 1], eps < 0, momentum < 0 or weight_decay < 0.
class RMSprop : public Optimizer {
 public:
  explicit RMSprop(Tensors params, RMSpropOptions options = {});
  void step() override;
  std::string repr() const override;
  const RMSpropOptions& options() const { return options_; }

 private:
  RMSpropOptions options_;
};

struct RpropOptions {
  /// Initial per-element step size.
  double lr = 0.01;
  double eta_minus = 0.5;
  double eta_plus = 1.2;
  double step_min = 1e-6;
  double step_max = 50;
};

/// Resilient backpropagation (iRprop-): uses only the sign of the gradient, with a per-element step size.
/// Meant for full-batch training. Buffers: "prev" (the previous gradient, 0 after a sign change) and
/// "step_size". Throws ValueError unless 0 < eta_minus < 1 < eta_plus, 0 <= step_min <= step_max and lr > 0.
class Rprop : public Optimizer {
 public:
  explicit Rprop(Tensors params, RpropOptions options = {});
  void step() override;
  std::string repr() const override;
  const RpropOptions& options() const { return options_; }

 private:
  RpropOptions options_;
};

}  // namespace backprop::optim
