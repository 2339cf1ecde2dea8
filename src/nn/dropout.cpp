// Dropout and DropConnect: random Bernoulli masks, scaled by 1 / (1 - p) so that eval needs no rescaling.
#include <algorithm>
#include <array>
#include <backprop/nn/dropout.hpp>
#include <backprop/nn/linear.hpp>
#include <backprop/ops.hpp>
#include <cmath>

namespace backprop::nn {

namespace {
void check_p(double p, const char* who) {
  BP_CHECK(p >= 0.0 && p < 1.0, ValueError, who, ": drop probability p must be in [0, 1), got p=", p);
}

// 1 with probability keep, else 0, one uniform draw per element in row-major order. The draws come in blocks
// from Generator::fill; uniform() < keep is compared as (bits >> 11) < keep * 2^53, which is exact (both
// sides are uniform() and keep scaled by a power of two), so the masks are those of per-element uniform().
Tensor bernoulli_mask(const Shape& shape, DType dtype, double keep, Generator& gen) {
  Tensor mask(shape, dtype);
  const double threshold = keep * 0x1.0p53;
  dispatch(dtype, [&](auto tag) {
    using T = decltype(tag);
    T* m = mask.data<T>();
    const std::int64_t n = mask.numel();
    constexpr std::int64_t kBlock = 1024;
    std::array<std::uint64_t, kBlock> bits;
    for (std::int64_t lo = 0; lo < n; lo += kBlock) {
      const std::int64_t len = std::min(kBlock, n - lo);
      gen.fill(bits.data(), len);
      for (std::int64_t i = 0; i < len; ++i)
        m[lo + i] = static_cast<double>(bits[static_cast<std::size_t>(i)] >> 11) < threshold ? T(1) : T(0);
    }
  });
  return mask;
}

Tensor activate(const Tensor& u, Nonlinearity f, double slope) {
  switch (f) {
    case Nonlinearity::linear:
      return u;
    case Nonlinearity::sigmoid:
      return sigmoid(u);
    case Nonlinearity::tanh:
      return tanh(u);
    case Nonlinearity::relu:
      return relu(u);
    case Nonlinearity::leaky_relu:
      return leaky_relu(u, slope);
  }
  return u;
}

const char* to_string(DropConnectInference i) {
  return i == DropConnectInference::mean ? "mean" : "gaussian";
}
}  // namespace

// ---- Dropout ----------------------------------------------------------------------------------------------

Dropout::Dropout(double p, Generator& gen) : p_(p), gen_(gen.next()) {
  check_p(p, "Dropout");
}

// y = x m / (1 - p): the gradient is the same mask and scale (masked_scale's backward).
Tensor Dropout::forward(const Tensor& x) {
  if (!is_training() || p_ == 0.0) return x;
  const double keep = 1.0 - p_;
  return masked_scale(x, bernoulli_mask(x.shape(), x.dtype(), keep, gen_), 1.0 / keep);
}

std::string Dropout::repr() const {
  return detail::cat("Dropout(p=", p_, ")");
}

// ---- DropConnect ------------------------------------------------------------------------------------------

DropConnect::DropConnect(std::int64_t in, std::int64_t out, double p, Generator& gen,
                         DropConnectOptions options)
    : in_(in), out_(out), p_(p), options_(options), gen_(0) {
  check_p(p, "DropConnect");
  BP_CHECK(in > 0 && out > 0, ValueError, "DropConnect: in and out features must be positive, got in=", in,
           ", out=", out);
  BP_CHECK(options.samples >= 1, ValueError, "DropConnect: samples must be >= 1, got ", options.samples);
  const Nonlinearity gain_for =
      options.activation == Nonlinearity::linear ? Nonlinearity::relu : options.activation;
  weight_ = register_parameter(
      "weight", init::apply(options.init, empty({out, in}, options.dtype), gen, gain_for, options.slope));
  if (options.bias) bias_ = register_parameter("bias", zeros({out}, options.dtype));
  gen_.seed_(gen.next());  // drawn after the weights, so the weights match a Linear built from the same seed
}

Tensor DropConnect::forward(const Tensor& x) {
  BP_CHECK(x.dim() == 2 && x.size(1) == in_, ShapeError, "DropConnect(in=", in_, ", out=", out_,
           "): expected input [N, ", in_, "], got ", x.shape());
  BP_CHECK(x.dtype() == weight_.dtype(), DTypeError, "DropConnect(in=", in_, ", out=", out_, "): input is ",
           x.dtype(), " but the layer is ", weight_.dtype());
  const Nonlinearity f = options_.activation;
  const double keep = 1.0 - p_;
  if (p_ == 0.0) return activate(linear(x, weight_, bias_), f, options_.slope);
  if (is_training()) {
    // One mask per call (per mini-batch): W~ = W M / (1 - p), so dL/dW = (dL/dW~) M / (1 - p).
    const Tensor w =
        masked_scale(weight_, bernoulli_mask(weight_.shape(), weight_.dtype(), keep, gen_), 1.0 / keep);
    return activate(linear(x, w, bias_), f, options_.slope);
  }
  const Tensor mu = linear(x, weight_, bias_);
  if (options_.inference == DropConnectInference::mean || f == Nonlinearity::linear)
    return activate(mu, f, options_.slope);
  // u_j = sum_k W~_jk x_k + b_j with independent W~_jk = W_jk M_jk / (1 - p): E[u] = mu and
  // Var[u_j] = sum_k W_jk^2 x_k^2 Var[M / (1 - p)] = p / (1 - p) (x^2 (W^2)^T)_j. 1e-12 keeps sqrt's gradient
  // finite for an all-zero row.
  const Tensor var = mul(mm(mul(x, x), mul(weight_, weight_), false, true), p_ / keep);
  const Tensor sd = sqrt(add(var, 1e-12));
  Tensor acc;
  for (int s = 0; s < options_.samples; ++s) {
    const Tensor z = randn(mu.shape(), gen_, mu.dtype());
    const Tensor a = activate(add(mu, mul(sd, z)), f, options_.slope);
    acc = acc.defined() ? add(acc, a) : a;
  }
  return mul(acc, 1.0 / options_.samples);
}

std::string DropConnect::repr() const {
  return detail::cat(
      "DropConnect(in=", in_, ", out=", out_, ", p=", p_, ", bias=", bias_.defined() ? "true" : "false",
      ", inference=", to_string(options_.inference),
      options_.activation == Nonlinearity::linear ? "" : ", activation=",
      options_.activation == Nonlinearity::linear ? "" : nn::to_string(options_.activation), ")");
}

// ---- Dropout2d ----------------------------------------------------------------------------------------------

Dropout2d::Dropout2d(double p, Generator& gen) : p_(p), gen_(gen.next()) {
  check_p(p, "Dropout2d");
}

Tensor Dropout2d::forward(const Tensor& x) {
  BP_CHECK(x.dim() == 3 || x.dim() == 4, ShapeError, "Dropout2d(p=", p_,
           "): expected input [N, C, H, W] or [C, H, W], got ", x.shape());
  if (!is_training() || p_ == 0.0) return x;
  const double keep = 1.0 - p_;
  Shape mask_shape = x.shape();
  mask_shape[mask_shape.size() - 1] = 1;
  mask_shape[mask_shape.size() - 2] = 1;
  Tensor mask = bernoulli_mask(mask_shape, x.dtype(), keep, gen_);
  mask.mul_(1.0 / keep);
  return mul(x, mask);  // the mask is a constant: d/dx = mask, broadcast over H and W
}

std::string Dropout2d::repr() const {
  return detail::cat("Dropout2d(p=", p_, ")");
}

}  // namespace backprop::nn
