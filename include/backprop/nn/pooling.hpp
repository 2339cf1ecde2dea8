// backprop/nn/pooling.hpp — pooling layers: MaxPool2d, AvgPool2d, AdaptiveAvgPool2d (NCHW).
//
// Each wraps the op of the same name (backprop/ops.hpp) with PyTorch's defaults: the stride defaults to the
// kernel size, AvgPool2d counts the zero padding in its divisor (count_include_pad). They hold no parameters.
// MaxPool2d's gradient goes to the maximal element of each window; AvgPool2d's is spread evenly over it.
//
// Example:
//   bp::nn::MaxPool2d pool(2);                                     // [N, C, 28, 28] -> [N, C, 14, 14]
//   bp::nn::AdaptiveAvgPool2d gap(1);                              // global average: [N, C, 1, 1]
//   bp::Tensor y = gap(pool(bp::zeros({8, 16, 28, 28})));
#pragma once

#include <backprop/nn/module.hpp>
#include <backprop/ops.hpp>
#include <string>

namespace backprop::nn {

struct PoolOptions {
  /// 0: the kernel size.
  Size2 stride = 0;
  Size2 padding = 0;
  /// MaxPool2d only.
  Size2 dilation = 1;
  bool ceil_mode = false;
  /// AvgPool2d only.
  bool count_include_pad = true;
};

class MaxPool2d : public Module {
 public:
  /// Throws ValueError for a kernel, stride or dilation below 1, or padding above half the kernel.
  explicit MaxPool2d(Size2 kernel_size, PoolOptions options = {});
  Tensor forward(const Tensor& x) override;
  /// "MaxPool2d(kernel_size=2, stride=2, padding=0, dilation=1, ceil_mode=False)"
  std::string repr() const override;
  Size2 kernel_size() const { return kernel_; }
  const PoolOptions& options() const { return options_; }

 private:
  Size2 kernel_;
  PoolOptions options_;
};

class AvgPool2d : public Module {
 public:
  explicit AvgPool2d(Size2 kernel_size, PoolOptions options = {});
  Tensor forward(const Tensor& x) override;
  /// "AvgPool2d(kernel_size=2, stride=2, padding=0)"
  std::string repr() const override;
  Size2 kernel_size() const { return kernel_; }
  const PoolOptions& options() const { return options_; }

 private:
  Size2 kernel_;
  PoolOptions options_;
};

class AdaptiveAvgPool2d : public Module {
 public:
  /// Throws ValueError unless both output sizes are positive.
  explicit AdaptiveAvgPool2d(Size2 output_size);
  Tensor forward(const Tensor& x) override;
  /// "AdaptiveAvgPool2d(output_size=1)"
  std::string repr() const override;
  Size2 output_size() const { return size_; }

 private:
  Size2 size_;
};

}  // namespace backprop::nn
