// Linear: y = x W^T + b through the fused op backprop::linear (which holds the delta-rule backward).
#include <backprop/nn/linear.hpp>
#include <backprop/ops.hpp>

namespace backprop::nn {

Linear::Linear(std::int64_t in, std::int64_t out, Generator& gen, LinearOptions options)
    : in_(in), out_(out) {
  BP_CHECK(in > 0 && out > 0, ValueError, "Linear: in and out features must be positive, got in=", in,
           ", out=", out);
  weight_ = register_parameter(
      "weight", init::apply(options.init, empty({out, in}, options.dtype), gen, options.nonlinearity));
  if (options.bias) bias_ = register_parameter("bias", zeros({out}, options.dtype));
}

Tensor Linear::forward(const Tensor& x) {
  BP_CHECK(x.dim() >= 2 && x.size(-1) == in_, ShapeError, "Linear(in=", in_, ", out=", out_,
           "): expected input [N, ", in_, "], got ", x.shape(), " (leading dims [..., N, ", in_,
           "] also work)");
  BP_CHECK(x.dtype() == weight_.dtype(), DTypeError, "Linear(in=", in_, ", out=", out_, "): input is ",
           x.dtype(), " but the layer is ", weight_.dtype(), "; convert with .to()");
  if (x.dim() == 2) return linear(x, weight_, bias_);
  // [..., in]: the leading dims as one batch, as PyTorch's Linear does.
  Shape out = x.shape();
  out.back() = out_;
  return reshape(linear(reshape(x, {-1, in_}), weight_, bias_), out);
}

std::string Linear::repr() const {
  return detail::cat("Linear(in=", in_, ", out=", out_, ", bias=", bias_.defined() ? "true" : "false", ")");
}

bool Linear::on_parameter_shared(const std::string& name, const Tensor& t) {
  if (name == "weight")
    weight_ = t;
  else if (name == "bias")
    bias_ = t;
  else
    return false;
  return true;
}

}  // namespace backprop::nn
