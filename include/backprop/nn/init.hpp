// backprop/nn/init.hpp — initial values for weights.
//
// Weights must start random (identical units would stay identical) and at the right scale: too small and the
// signal and its gradient shrink layer by layer, too large and units saturate. The rules here pick the scale
// from the layer's fan-in and fan-out so that the variance of activations (Kaiming/He: forward pass, for
// ReLU) or of activations and gradients together (Xavier/Glorot) stays about constant through depth. Every
// function writes in place into the tensor it is given (a handle: the caller's tensor changes), under
// NoGradGuard, drawing from the caller's Generator, and returns the same handle.
//
// Example:
//   bp::Generator gen(0);
//   bp::Tensor w = bp::empty({256, 784});                   // [out, in], like Linear's weight
//   bp::nn::init::kaiming_normal(w, gen, {.nonlinearity = bp::nn::Nonlinearity::relu});   // std sqrt(2/784)
//   bp::nn::init::xavier_uniform(w, gen, bp::nn::init::gain(bp::nn::Nonlinearity::tanh));
#pragma once

#include <backprop/generator.hpp>
#include <backprop/tensor.hpp>
#include <cstdint>

namespace backprop::nn {

/// The activation that follows a layer; it sets the initialisation gain (and DropConnect's activation).
enum class Nonlinearity { linear, sigmoid, tanh, relu, leaky_relu };

/// How Linear (and DropConnect) initialise their weight. See LinearOptions for the default and why.
enum class Init { kaiming_uniform, kaiming_normal, xavier_uniform, xavier_normal, zeros };

/// "linear", "sigmoid", ...
const char* to_string(Nonlinearity n);
const char* to_string(Init i);

namespace init {

/// Which fan Kaiming initialisation preserves: fan_in keeps the forward activations' variance, fan_out the
/// backward gradients'.
enum class FanMode { fan_in, fan_out };

/// The factor that makes the variance of f(z) match that of z for unit-variance z:
/// linear 1, sigmoid 1, tanh 5/3, relu sqrt(2), leaky_relu sqrt(2 / (1 + slope^2)).
double gain(Nonlinearity nonlinearity, double slope = 0.01);

/// Fan-in and fan-out of a weight of shape [out, in, ...]: fan_in = in * (product of trailing dims),
/// fan_out = out * (same). Throws ValueError for a tensor with fewer than 2 dimensions.
struct Fans {
  std::int64_t fan_in = 0;
  std::int64_t fan_out = 0;
};
Fans fans(const Tensor& weight);

struct KaimingOptions {
  Nonlinearity nonlinearity = Nonlinearity::relu;
  double slope = 0.01;  // for leaky_relu
  FanMode mode = FanMode::fan_in;
};

/// U(-b, b) with b = gain * sqrt(6 / (fan_in + fan_out)), so Var = gain^2 * 2 / (fan_in + fan_out).
Tensor xavier_uniform(Tensor w, Generator& gen, double gain = 1.0);
/// N(0, s^2) with s = gain * sqrt(2 / (fan_in + fan_out)).
Tensor xavier_normal(Tensor w, Generator& gen, double gain = 1.0);
/// U(-b, b) with b = gain * sqrt(3 / fan), fan = fan_in or fan_out, so Var = gain^2 / fan (He et al. 2015).
Tensor kaiming_uniform(Tensor w, Generator& gen, KaimingOptions options = {});
/// N(0, s^2) with s = gain / sqrt(fan).
Tensor kaiming_normal(Tensor w, Generator& gen, KaimingOptions options = {});
/// Every element 0.
Tensor zeros(Tensor w);
/// Every element `value`.
Tensor constant(Tensor w, double value);
/// U(lo, hi). Throws ValueError when lo > hi.
Tensor uniform(Tensor w, Generator& gen, double lo = 0.0, double hi = 1.0);
/// N(mean, stddev^2). Throws ValueError when stddev < 0.
Tensor normal(Tensor w, Generator& gen, double mean = 0.0, double stddev = 1.0);

/// Applies `scheme` to a weight of shape [out, in, ...]: the kaiming variants use gain(nonlinearity, slope)
/// with fan_in; the xavier variants use gain 1 (Glorot's setting, for sigmoid/tanh/linear layers).
Tensor apply(Init scheme, Tensor w, Generator& gen, Nonlinearity nonlinearity = Nonlinearity::relu,
             double slope = 0.01);

}  // namespace init
}  // namespace backprop::nn
