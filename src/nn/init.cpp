// Weight initialisers. Each draws from the caller's Generator and writes in place under NoGradGuard.
#include <backprop/autograd.hpp>
#include <backprop/nn/init.hpp>
#include <cmath>

namespace backprop::nn {

const char* to_string(Nonlinearity n) {
  switch (n) {
    case Nonlinearity::linear:
      return "linear";
    case Nonlinearity::sigmoid:
      return "sigmoid";
    case Nonlinearity::tanh:
      return "tanh";
    case Nonlinearity::relu:
      return "relu";
    case Nonlinearity::leaky_relu:
      return "leaky_relu";
  }
  return "?";
}

const char* to_string(Init i) {
  switch (i) {
    case Init::kaiming_uniform:
      return "kaiming_uniform";
    case Init::kaiming_normal:
      return "kaiming_normal";
    case Init::xavier_uniform:
      return "xavier_uniform";
    case Init::xavier_normal:
      return "xavier_normal";
    case Init::zeros:
      return "zeros";
  }
  return "?";
}

namespace init {

// For z ~ N(0, 1): E[relu(z)^2] = 1/2, hence gain sqrt(2); leaky ReLU keeps slope^2 / 2 more of the variance.
// tanh's 5/3 and sigmoid's 1 are the conventional values (tanh' <= 1 shrinks the variance; 5/3 compensates).
double gain(Nonlinearity nonlinearity, double slope) {
  switch (nonlinearity) {
    case Nonlinearity::linear:
    case Nonlinearity::sigmoid:
      return 1.0;
    case Nonlinearity::tanh:
      return 5.0 / 3.0;
    case Nonlinearity::relu:
      return std::sqrt(2.0);
    case Nonlinearity::leaky_relu:
      return std::sqrt(2.0 / (1.0 + slope * slope));
  }
  return 1.0;
}

Fans fans(const Tensor& weight) {
  BP_CHECK(weight.defined() && weight.dim() >= 2, ValueError,
           "init: fan-in and fan-out need a weight with at least 2 dimensions [out, in, ...], got ",
           weight.defined() ? backprop::to_string(weight.shape()) : std::string("an undefined tensor"));
  std::int64_t receptive = 1;
  for (std::int64_t d = 2; d < weight.dim(); ++d) receptive *= weight.size(d);
  return {.fan_in = weight.size(1) * receptive, .fan_out = weight.size(0) * receptive};
}

namespace {
void check_defined(const Tensor& w, const char* fn) {
  BP_CHECK(w.defined(), ValueError, "init::", fn, ": the tensor is undefined");
}

std::int64_t checked_fan(std::int64_t fan, const char* fn) {
  BP_CHECK(fan > 0, ValueError, "init::", fn, ": fan is ", fan, " (a dimension of the weight is empty)");
  return fan;
}
}  // namespace

Tensor uniform(Tensor w, Generator& gen, double lo, double hi) {
  check_defined(w, "uniform");
  BP_CHECK(lo <= hi, ValueError, "init::uniform: lo (", lo, ") must not exceed hi (", hi, ")");
  NoGradGuard guard;
  w.copy_(rand(w.shape(), gen, w.dtype(), lo, hi));
  return w;
}

Tensor normal(Tensor w, Generator& gen, double mean, double stddev) {
  check_defined(w, "normal");
  BP_CHECK(stddev >= 0, ValueError, "init::normal: stddev must be >= 0, got ", stddev);
  NoGradGuard guard;
  w.copy_(randn(w.shape(), gen, w.dtype(), mean, stddev));
  return w;
}

Tensor constant(Tensor w, double value) {
  check_defined(w, "constant");
  NoGradGuard guard;
  w.fill_(value);
  return w;
}

Tensor zeros(Tensor w) {
  return constant(std::move(w), 0.0);
}

// Var[U(-b, b)] = b^2 / 3, so b = sqrt(3) * std.
Tensor xavier_uniform(Tensor w, Generator& gen, double gain) {
  const Fans f = fans(w);
  const double stddev =
      gain * std::sqrt(2.0 / static_cast<double>(checked_fan(f.fan_in + f.fan_out, "xavier_uniform")));
  const double bound = std::sqrt(3.0) * stddev;
  return uniform(std::move(w), gen, -bound, bound);
}

Tensor xavier_normal(Tensor w, Generator& gen, double gain) {
  const Fans f = fans(w);
  const double stddev =
      gain * std::sqrt(2.0 / static_cast<double>(checked_fan(f.fan_in + f.fan_out, "xavier_normal")));
  return normal(std::move(w), gen, 0.0, stddev);
}

namespace {
double kaiming_std(const Tensor& w, const KaimingOptions& o, const char* fn) {
  const Fans f = fans(w);
  const std::int64_t fan = checked_fan(o.mode == FanMode::fan_in ? f.fan_in : f.fan_out, fn);
  return gain(o.nonlinearity, o.slope) / std::sqrt(static_cast<double>(fan));
}
}  // namespace

Tensor kaiming_uniform(Tensor w, Generator& gen, KaimingOptions options) {
  const double bound = std::sqrt(3.0) * kaiming_std(w, options, "kaiming_uniform");
  return uniform(std::move(w), gen, -bound, bound);
}

Tensor kaiming_normal(Tensor w, Generator& gen, KaimingOptions options) {
  const double stddev = kaiming_std(w, options, "kaiming_normal");
  return normal(std::move(w), gen, 0.0, stddev);
}

// Glorot's derivation assumes an activation that is linear with unit slope near 0, so xavier ignores the
// nonlinearity here; Kaiming's gain is the point of choosing it.
Tensor apply(Init scheme, Tensor w, Generator& gen, Nonlinearity nonlinearity, double slope) {
  const KaimingOptions k{.nonlinearity = nonlinearity, .slope = slope, .mode = FanMode::fan_in};
  switch (scheme) {
    case Init::kaiming_uniform:
      return kaiming_uniform(std::move(w), gen, k);
    case Init::kaiming_normal:
      return kaiming_normal(std::move(w), gen, k);
    case Init::xavier_uniform:
      return xavier_uniform(std::move(w), gen, 1.0);
    case Init::xavier_normal:
      return xavier_normal(std::move(w), gen, 1.0);
    case Init::zeros:
      return zeros(std::move(w));
  }
  return w;
}

}  // namespace init
}  // namespace backprop::nn
