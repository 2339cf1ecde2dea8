// MaxPool2d, AvgPool2d, AdaptiveAvgPool2d: the pooling ops with PyTorch's defaults and repr.
#include <backprop/nn/pooling.hpp>

namespace backprop::nn {

namespace {
/// PyTorch prints a size given as one number as that number, else as a tuple.
std::string size_text(Size2 s) {
  return s.h == s.w ? detail::cat(s.h) : detail::cat("(", s.h, ", ", s.w, ")");
}

void check_pool(const char* layer, Size2 kernel, const PoolOptions& o) {
  BP_CHECK(kernel.h > 0 && kernel.w > 0, ValueError, layer, ": kernel_size must be positive, got ",
           size_text(kernel));
  BP_CHECK(o.stride.h >= 0 && o.stride.w >= 0 && (o.stride.h > 0) == (o.stride.w > 0), ValueError, layer,
           ": stride must be positive (or 0 for the kernel size), got ", size_text(o.stride));
  BP_CHECK(o.dilation.h > 0 && o.dilation.w > 0, ValueError, layer, ": dilation must be positive, got ",
           size_text(o.dilation));
  BP_CHECK(o.padding.h >= 0 && o.padding.w >= 0 && 2 * o.padding.h <= kernel.h && 2 * o.padding.w <= kernel.w,
           ValueError, layer, ": padding ", size_text(o.padding),
           " must be >= 0 and at most half the kernel size ", size_text(kernel));
}

const char* py_bool(bool b) {
  return b ? "True" : "False";
}
}  // namespace

MaxPool2d::MaxPool2d(Size2 kernel_size, PoolOptions options) : kernel_(kernel_size), options_(options) {
  check_pool("MaxPool2d", kernel_size, options);
  if (options_.stride.h == 0) options_.stride = kernel_size;
}

Tensor MaxPool2d::forward(const Tensor& x) {
  return max_pool2d(x, kernel_, options_.stride, options_.padding, options_.dilation, options_.ceil_mode);
}

std::string MaxPool2d::repr() const {
  return detail::cat("MaxPool2d(kernel_size=", size_text(kernel_), ", stride=", size_text(options_.stride),
                     ", padding=", size_text(options_.padding), ", dilation=", size_text(options_.dilation),
                     ", ceil_mode=", py_bool(options_.ceil_mode), ")");
}

AvgPool2d::AvgPool2d(Size2 kernel_size, PoolOptions options) : kernel_(kernel_size), options_(options) {
  check_pool("AvgPool2d", kernel_size, options);
  if (options_.stride.h == 0) options_.stride = kernel_size;
}

Tensor AvgPool2d::forward(const Tensor& x) {
  return avg_pool2d(x, kernel_, options_.stride, options_.padding, options_.ceil_mode,
                    options_.count_include_pad);
}

std::string AvgPool2d::repr() const {
  std::string s =
      detail::cat("AvgPool2d(kernel_size=", size_text(kernel_), ", stride=", size_text(options_.stride),
                  ", padding=", size_text(options_.padding));
  if (options_.ceil_mode) s += ", ceil_mode=True";
  if (!options_.count_include_pad) s += ", count_include_pad=False";
  return s + ")";
}

AdaptiveAvgPool2d::AdaptiveAvgPool2d(Size2 output_size) : size_(output_size) {
  BP_CHECK(output_size.h > 0 && output_size.w > 0, ValueError,
           "AdaptiveAvgPool2d: output_size must be positive, got ", size_text(output_size));
}

Tensor AdaptiveAvgPool2d::forward(const Tensor& x) {
  return adaptive_avg_pool2d(x, size_);
}

std::string AdaptiveAvgPool2d::repr() const {
  return detail::cat("AdaptiveAvgPool2d(output_size=", size_text(size_), ")");
}

}  // namespace backprop::nn
