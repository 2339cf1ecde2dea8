// backprop/nn/conv.hpp — convolution layers: Conv1d, Conv2d, ConvTranspose2d (NCHW, PyTorch's conventions).
//
// Conv2d(in, out, kernel) holds a weight [out, in / groups, kh, kw] and a bias [out] and computes
// backprop::conv2d; ConvTranspose2d(in, out, kernel) holds a weight [in, out / groups, kh, kw] and computes
// backprop::conv_transpose2d; Conv1d is Conv2d on [N, C, L]. The delta rule carries over: with
// delta = dL/dy, dL/dx is the transposed convolution of delta with the same weight, dL/dW the correlation of x
// with delta, dL/db the sum of delta over N and the positions. Both weight and bias start as PyTorch's do:
// U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform with a = sqrt(5)), fan_in = in / groups * kh * kw (for
// ConvTranspose2d: out / groups * kh * kw).
//
// Example:
//   bp::Generator gen(0);
//   bp::nn::Conv2d conv(1, 32, 3, gen, {.padding = 1});            // [N, 1, 28, 28] -> [N, 32, 28, 28]
//   bp::nn::Conv2d depthwise(32, 32, 3, gen, {.padding = "same", .groups = 32});
//   bp::Tensor y = depthwise(conv(bp::zeros({8, 1, 28, 28})));
#pragma once

#include <backprop/generator.hpp>
#include <backprop/nn/module.hpp>
#include <backprop/ops.hpp>
#include <cstdint>
#include <string>

namespace backprop::nn {

struct ConvOptions {
  Size2 stride = 1;
  /// A number, {h, w}, "valid" or "same" (Conv1d and Conv2d only; stride 1).
  ConvPadding padding = 0;
  Size2 dilation = 1;
  std::int64_t groups = 1;
  bool bias = true;
  /// ConvTranspose2d only: extra rows and columns at the end of the output (< stride or dilation).
  Size2 output_padding = 0;
  DType dtype = f32;
};

class Conv2d : public Module {
 public:
  /// Throws ValueError when a size is not positive, groups does not divide in and out, or padding is "same"
  /// with a stride other than 1.
  Conv2d(std::int64_t in, std::int64_t out, Size2 kernel_size, Generator& gen, ConvOptions options = {});
  /// x [N, in, H, W] (or [in, H, W]) -> [N, out, OH, OW]; ShapeError naming the layer when x does not fit.
  Tensor forward(const Tensor& x) override;
  /// "Conv2d(1, 32, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))", as PyTorch prints it.
  std::string repr() const override;

  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }
  std::int64_t in_channels() const { return in_; }
  std::int64_t out_channels() const { return out_; }
  Size2 kernel_size() const { return kernel_; }
  const ConvOptions& options() const { return options_; }

 private:
  std::int64_t in_, out_;
  Size2 kernel_;
  ConvOptions options_;
  Tensor weight_, bias_;
};

class Conv1d : public Module {
 public:
  /// options.stride.w, padding.size.w and dilation.w are the 1-D values (a single number sets both).
  Conv1d(std::int64_t in, std::int64_t out, std::int64_t kernel_size, Generator& gen,
         ConvOptions options = {});
  /// x [N, in, L] (or [in, L]) -> [N, out, OL].
  Tensor forward(const Tensor& x) override;
  /// "Conv1d(4, 8, kernel_size=(3,), stride=(1,))"
  std::string repr() const override;

  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }
  std::int64_t in_channels() const { return in_; }
  std::int64_t out_channels() const { return out_; }
  std::int64_t kernel_size() const { return kernel_; }
  const ConvOptions& options() const { return options_; }

 private:
  std::int64_t in_, out_, kernel_;
  ConvOptions options_;
  Tensor weight_, bias_;
};

class ConvTranspose2d : public Module {
 public:
  /// Throws ValueError as Conv2d, and for padding "same" or output_padding not below stride or dilation.
  ConvTranspose2d(std::int64_t in, std::int64_t out, Size2 kernel_size, Generator& gen,
                  ConvOptions options = {});
  /// x [N, in, H, W] (or [in, H, W]) -> [N, out, (H - 1) stride - 2 padding + dilation (k - 1) +
  /// output_padding + 1, ...].
  Tensor forward(const Tensor& x) override;
  /// "ConvTranspose2d(16, 8, kernel_size=(2, 2), stride=(2, 2))"
  std::string repr() const override;

  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }
  std::int64_t in_channels() const { return in_; }
  std::int64_t out_channels() const { return out_; }
  Size2 kernel_size() const { return kernel_; }
  const ConvOptions& options() const { return options_; }

 private:
  std::int64_t in_, out_;
  Size2 kernel_;
  ConvOptions options_;
  Tensor weight_, bias_;
};

}  // namespace backprop::nn
