// Conv1d, Conv2d, ConvTranspose2d: parameters, PyTorch's initialisation and repr around the conv ops.
#include <backprop/nn/conv.hpp>
#include <backprop/nn/init.hpp>
#include <cmath>

namespace backprop::nn {

namespace {

void check_layer(const char* layer, std::int64_t in, std::int64_t out, Size2 kernel, const ConvOptions& o,
                 bool transposed) {
  BP_CHECK(in > 0 && out > 0, ValueError, layer, ": in and out channels must be positive, got in=", in,
           ", out=", out);
  BP_CHECK(kernel.h > 0 && kernel.w > 0, ValueError, layer, ": kernel_size must be positive, got (", kernel.h,
           ", ", kernel.w, ")");
  BP_CHECK(o.stride.h > 0 && o.stride.w > 0, ValueError, layer, ": stride must be positive, got (",
           o.stride.h, ", ", o.stride.w, ")");
  BP_CHECK(o.dilation.h > 0 && o.dilation.w > 0, ValueError, layer, ": dilation must be positive, got (",
           o.dilation.h, ", ", o.dilation.w, ")");
  BP_CHECK(o.padding.size.h >= 0 && o.padding.size.w >= 0, ValueError, layer, ": padding must be >= 0, got (",
           o.padding.size.h, ", ", o.padding.size.w, ")");
  BP_CHECK(o.groups > 0 && in % o.groups == 0 && out % o.groups == 0, ValueError, layer,
           ": groups=", o.groups, " must be positive and divide in (", in, ") and out (", out, ")");
  BP_CHECK(!o.padding.same || (o.stride.h == 1 && o.stride.w == 1), ValueError, layer,
           ": padding=\"same\" needs stride 1, got (", o.stride.h, ", ", o.stride.w, ")");
  BP_CHECK(!transposed || !o.padding.same, ValueError, layer, ": padding=\"same\" is not supported");
  if (transposed)
    BP_CHECK((o.output_padding.h >= 0 && o.output_padding.w >= 0) &&
                 (o.output_padding.h < o.stride.h || o.output_padding.h < o.dilation.h) &&
                 (o.output_padding.w < o.stride.w || o.output_padding.w < o.dilation.w),
             ValueError, layer, ": output_padding (", o.output_padding.h, ", ", o.output_padding.w,
             ") must be >= 0 and smaller than stride or dilation");
}

/// PyTorch's default: kaiming_uniform(a = sqrt(5)) is U(-1/sqrt(fan_in), 1/sqrt(fan_in)); the bias likewise.
void init_uniform(Tensor& weight, Tensor& bias, std::int64_t fan_in, Generator& gen) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(fan_in));
  init::uniform(weight, gen, -bound, bound);
  if (bias.defined()) init::uniform(bias, gen, -bound, bound);
}

std::string tuple(Size2 s) {
  return detail::cat("(", s.h, ", ", s.w, ")");
}

/// PyTorch's extra_repr of a convolution: stride always, the other options when not at their defaults.
std::string conv_repr(const char* name, std::int64_t in, std::int64_t out, const std::string& kernel,
                      const std::string& stride, const ConvOptions& o, bool one_d, bool transposed,
                      bool has_bias) {
  auto fmt = [one_d](Size2 s) { return one_d ? detail::cat("(", s.w, ",)") : tuple(s); };
  std::string s = detail::cat(name, "(", in, ", ", out, ", kernel_size=", kernel, ", stride=", stride);
  if (o.padding.same)
    s += ", padding=same";
  else if ((one_d ? o.padding.size.w : o.padding.size.h + o.padding.size.w) != 0)
    s += ", padding=" + fmt(o.padding.size);
  if ((one_d && o.dilation.w != 1) || (!one_d && (o.dilation.h != 1 || o.dilation.w != 1)))
    s += ", dilation=" + fmt(o.dilation);
  if (transposed && (o.output_padding.h != 0 || o.output_padding.w != 0))
    s += ", output_padding=" + fmt(o.output_padding);
  if (o.groups != 1) s += detail::cat(", groups=", o.groups);
  if (!has_bias) s += ", bias=False";
  return s + ")";
}

}  // namespace

Conv2d::Conv2d(std::int64_t in, std::int64_t out, Size2 kernel_size, Generator& gen, ConvOptions options)
    : in_(in), out_(out), kernel_(kernel_size), options_(options) {
  check_layer("Conv2d", in, out, kernel_size, options, false);
  weight_ = empty({out, in / options.groups, kernel_size.h, kernel_size.w}, options.dtype);
  if (options.bias) bias_ = empty({out}, options.dtype);
  init_uniform(weight_, bias_, in / options.groups * kernel_size.h * kernel_size.w, gen);
  weight_ = register_parameter("weight", weight_);
  if (options.bias) bias_ = register_parameter("bias", bias_);
}

Tensor Conv2d::forward(const Tensor& x) {
  BP_CHECK((x.dim() == 4 || x.dim() == 3) && x.size(x.dim() - 3) == in_, ShapeError, repr(),
           ": expected input [N, ", in_, ", H, W] or [", in_, ", H, W], got ", x.shape());
  BP_CHECK(x.dtype() == weight_.dtype(), DTypeError, repr(), ": input is ", x.dtype(), " but the layer is ",
           weight_.dtype());
  return conv2d(x, weight_, bias_, options_.stride, options_.padding, options_.dilation, options_.groups);
}

std::string Conv2d::repr() const {
  return conv_repr("Conv2d", in_, out_, tuple(kernel_), tuple(options_.stride), options_, false, false,
                   bias_.defined());
}

Conv1d::Conv1d(std::int64_t in, std::int64_t out, std::int64_t kernel_size, Generator& gen,
               ConvOptions options)
    : in_(in), out_(out), kernel_(kernel_size), options_(options) {
  check_layer("Conv1d", in, out, Size2(kernel_size), options, false);
  weight_ = empty({out, in / options.groups, kernel_size}, options.dtype);
  if (options.bias) bias_ = empty({out}, options.dtype);
  init_uniform(weight_, bias_, in / options.groups * kernel_size, gen);
  weight_ = register_parameter("weight", weight_);
  if (options.bias) bias_ = register_parameter("bias", bias_);
}

Tensor Conv1d::forward(const Tensor& x) {
  BP_CHECK((x.dim() == 3 || x.dim() == 2) && x.size(x.dim() - 2) == in_, ShapeError, repr(),
           ": expected input [N, ", in_, ", L] or [", in_, ", L], got ", x.shape());
  BP_CHECK(x.dtype() == weight_.dtype(), DTypeError, repr(), ": input is ", x.dtype(), " but the layer is ",
           weight_.dtype());
  const ConvPadding pad = options_.padding.same ? options_.padding : ConvPadding(options_.padding.size.w);
  return conv1d(x, weight_, bias_, options_.stride.w, pad, options_.dilation.w, options_.groups);
}

std::string Conv1d::repr() const {
  return conv_repr("Conv1d", in_, out_, detail::cat("(", kernel_, ",)"),
                   detail::cat("(", options_.stride.w, ",)"), options_, true, false, bias_.defined());
}

ConvTranspose2d::ConvTranspose2d(std::int64_t in, std::int64_t out, Size2 kernel_size, Generator& gen,
                                 ConvOptions options)
    : in_(in), out_(out), kernel_(kernel_size), options_(options) {
  check_layer("ConvTranspose2d", in, out, kernel_size, options, true);
  weight_ = empty({in, out / options.groups, kernel_size.h, kernel_size.w}, options.dtype);
  if (options.bias) bias_ = empty({out}, options.dtype);
  init_uniform(weight_, bias_, out / options.groups * kernel_size.h * kernel_size.w, gen);
  weight_ = register_parameter("weight", weight_);
  if (options.bias) bias_ = register_parameter("bias", bias_);
}

Tensor ConvTranspose2d::forward(const Tensor& x) {
  BP_CHECK((x.dim() == 4 || x.dim() == 3) && x.size(x.dim() - 3) == in_, ShapeError, repr(),
           ": expected input [N, ", in_, ", H, W] or [", in_, ", H, W], got ", x.shape());
  BP_CHECK(x.dtype() == weight_.dtype(), DTypeError, repr(), ": input is ", x.dtype(), " but the layer is ",
           weight_.dtype());
  return conv_transpose2d(x, weight_, bias_, options_.stride, options_.padding.size, options_.output_padding,
                          options_.groups, options_.dilation);
}

std::string ConvTranspose2d::repr() const {
  return conv_repr("ConvTranspose2d", in_, out_, tuple(kernel_), tuple(options_.stride), options_, false,
                   true, bias_.defined());
}

}  // namespace backprop::nn
