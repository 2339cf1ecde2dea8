// Convolution and pooling ops on NCHW tensors. A convolution is linear in its input and in its weight, so
// three kernels close under differentiation: the convolution y = A_w x, its input adjoint dx = A_w^T dy (the
// transposed convolution) and its weight adjoint dw = W(x, dy) (the correlation of the input with dy). Each
// op's backward is written with the other two, so derivatives of any order stay convolutions. Pooling's
// backward is likewise an adjoint op pair: max pooling scatters dy through the saved indices (its backward
// gathers), average pooling spreads dy over the windows (its backward averages again).
#include "kernels/conv.hpp"

#include <algorithm>
#include <backprop/ops.hpp>
#include <cstring>
#include <memory>
#include <string>

namespace backprop {

ConvPadding::ConvPadding(const std::string& m) : size(0) {
  BP_CHECK(m == "same" || m == "valid", ValueError, "conv: padding must be a number, {h, w}, \"same\" or ",
           "\"valid\", got \"", m, "\"");
  same = m == "same";
}

namespace {
using kernels::ConvGeom;

Tensor conv_weight_op(const Tensor& x, const Tensor& dy, const ConvGeom& g);
Tensor conv_input_op(const Tensor& dy, const Tensor& w, const ConvGeom& g, const char* name);

// y = A_w x + b: dx = A_w^T dy, dw = W(x, dy), db = dy summed over N, H, W.
Tensor conv_op(const Tensor& x, const Tensor& w, const Tensor& b, const ConvGeom& g) {
  Tensor y = kernels::conv2d_forward(x, w, b, g);
  return record("conv2d", y, {x, w, b}, [x, w, g, gb = b.defined() && b.requires_grad()](const Tensor& dy) {
    return Tensors{x.requires_grad() ? conv_input_op(dy, w, g, "conv_transpose2d") : Tensor(),
                   w.requires_grad() ? conv_weight_op(x, dy, g) : Tensor(),
                   gb ? sum(dy, Dims{0, 2, 3}) : Tensor()};
  });
}

// dx = A_w^T dy is bilinear in (dy, w): for a gradient gx, d/d(dy) = A_w gx and d/dw = W(gx, dy).
Tensor conv_input_op(const Tensor& dy, const Tensor& w, const ConvGeom& g, const char* name) {
  Tensor dx = kernels::conv2d_input_grad(dy, w, g);
  return record(name, dx, {dy, w}, [dy, w, g](const Tensor& gx) {
    return Tensors{dy.requires_grad() ? conv_op(gx, w, Tensor(), g) : Tensor(),
                   w.requires_grad() ? conv_weight_op(gx, dy, g) : Tensor()};
  });
}

// dw = W(x, dy) with <gw, W(x, dy)> = <A_gw x, dy>: d/d(dy) = A_gw x, d/dx = A_gw^T dy.
Tensor conv_weight_op(const Tensor& x, const Tensor& dy, const ConvGeom& g) {
  Tensor dw = kernels::conv2d_weight_grad(x, dy, g);
  return record("conv2d_weight_grad", dw, {x, dy}, [x, dy, g](const Tensor& gw) {
    return Tensors{x.requires_grad() ? conv_input_op(dy, gw, g, "conv_transpose2d") : Tensor(),
                   dy.requires_grad() ? conv_op(x, gw, Tensor(), g) : Tensor()};
  });
}

void check_positive(const char* op, const char* arg, Size2 s) {
  BP_CHECK(s.h > 0 && s.w > 0, ValueError, op, ": ", arg, " must be positive, got (", s.h, ", ", s.w, ")");
}

void check_non_negative(const char* op, const char* arg, Size2 s) {
  BP_CHECK(s.h >= 0 && s.w >= 0, ValueError, op, ": ", arg, " must be >= 0, got (", s.h, ", ", s.w, ")");
}

void check_operands(const char* op, const Tensor& x, const Tensor& w, const Tensor& b, std::int64_t wdim) {
  BP_CHECK(x.defined() && w.defined(), ValueError, op, ": input and weight must be defined");
  BP_CHECK(x.dtype() == w.dtype(), DTypeError, op, ": input is ", x.dtype(), " but weight is ", w.dtype());
  BP_CHECK(x.dtype() == f32 || x.dtype() == f64, DTypeError, op, ": expected f32 or f64 tensors, got ",
           x.dtype());
  BP_CHECK(w.dim() == wdim, ShapeError, op, ": expected a ", wdim, "-D weight, got ", w.shape());
  if (b.defined())
    BP_CHECK(b.dtype() == x.dtype(), DTypeError, op, ": bias is ", b.dtype(), " but input is ", x.dtype());
}

/// Output size of a window sliding over `size` (padded by `pad` on both sides), or 0 when none fits.
std::int64_t out_size(std::int64_t size, std::int64_t pad, std::int64_t dilation, std::int64_t kernel,
                      std::int64_t stride, bool ceil_mode = false) {
  const std::int64_t span = size + 2 * pad - dilation * (kernel - 1) - 1;
  if (span < 0) return 0;
  std::int64_t out = (span + (ceil_mode ? stride - 1 : 0)) / stride + 1;
  if (ceil_mode && (out - 1) * stride >= size + pad) --out;  // the last window must start inside
  return out;
}

}  // namespace

Tensor conv2d(const Tensor& input, const Tensor& weight, const Tensor& bias, Size2 stride,
              ConvPadding padding, Size2 dilation, std::int64_t groups) {
  check_operands("conv2d", input, weight, bias, 4);
  if (input.dim() == 3)
    return squeeze(conv2d(unsqueeze(input, 0), weight, bias, stride, padding, dilation, groups), 0);
  BP_CHECK(input.dim() == 4, ShapeError, "conv2d: expected input [N, C, H, W] or [C, H, W], got ",
           input.shape());
  check_positive("conv2d", "stride", stride);
  check_positive("conv2d", "dilation", dilation);
  check_non_negative("conv2d", "padding", padding.size);
  BP_CHECK(groups > 0, ValueError, "conv2d: groups must be positive, got ", groups);
  const std::int64_t c = input.size(1), o = weight.size(0);
  BP_CHECK(c % groups == 0 && o % groups == 0, ShapeError, "conv2d: groups=", groups,
           " must divide the input channels (", c, ") and the output channels (", o, "); input ",
           input.shape(), ", weight ", weight.shape());
  BP_CHECK(weight.size(1) * groups == c, ShapeError, "conv2d: input ", input.shape(), " has ", c,
           " channels but weight ", weight.shape(), " with groups=", groups, " expects ",
           weight.size(1) * groups);
  if (bias.defined())
    BP_CHECK(bias.dim() == 1 && bias.size(0) == o, ShapeError, "conv2d: bias ", bias.shape(),
             " does not match weight ", weight.shape(), " (expected [", o, "])");
  Tensor x = input;
  Size2 pad = padding.size;
  if (padding.same) {
    BP_CHECK(stride.h == 1 && stride.w == 1, ValueError, "conv2d: padding=\"same\" needs stride 1, got (",
             stride.h, ", ", stride.w, ")");
    const std::int64_t th = dilation.h * (weight.size(2) - 1), tw = dilation.w * (weight.size(3) - 1);
    pad = Size2(th / 2, tw / 2);
    if (th % 2 != 0 || tw % 2 != 0) x = backprop::pad(x, {0, tw % 2, 0, th % 2});  // the extra at the end
  }
  ConvGeom g{.n = x.size(0),
             .c = c,
             .h = x.size(2),
             .w = x.size(3),
             .o = o,
             .kh = weight.size(2),
             .kw = weight.size(3),
             .sh = stride.h,
             .sw = stride.w,
             .ph = pad.h,
             .pw = pad.w,
             .dh = dilation.h,
             .dw = dilation.w,
             .groups = groups};
  g.oh = out_size(g.h, g.ph, g.dh, g.kh, g.sh);
  g.ow = out_size(g.w, g.pw, g.dw, g.kw, g.sw);
  BP_CHECK(g.oh > 0 && g.ow > 0, ShapeError, "conv2d: kernel ", weight.shape(), " with dilation (",
           dilation.h, ", ", dilation.w, ") is larger than the padded input ", input.shape(), " (padding (",
           pad.h, ", ", pad.w, "))");
  return conv_op(x, weight, bias, g);
}

Tensor conv1d(const Tensor& input, const Tensor& weight, const Tensor& bias, std::int64_t stride,
              ConvPadding padding, std::int64_t dilation, std::int64_t groups) {
  check_operands("conv1d", input, weight, bias, 3);
  if (input.dim() == 2)
    return squeeze(conv1d(unsqueeze(input, 0), weight, bias, stride, padding, dilation, groups), 0);
  BP_CHECK(input.dim() == 3, ShapeError, "conv1d: expected input [N, C, L] or [C, L], got ", input.shape());
  BP_CHECK(padding.same || padding.size.h == padding.size.w, ValueError,
           "conv1d: padding must be one number, got (", padding.size.h, ", ", padding.size.w, ")");
  const ConvPadding pad2 = padding.same ? ConvPadding(std::string("same")) : ConvPadding(0, padding.size.w);
  return squeeze(conv2d(unsqueeze(input, 2), unsqueeze(weight, 2), bias, Size2(1, stride), pad2,
                        Size2(1, dilation), groups),
                 2);
}

Tensor conv_transpose2d(const Tensor& input, const Tensor& weight, const Tensor& bias, Size2 stride,
                        Size2 padding, Size2 output_padding, std::int64_t groups, Size2 dilation) {
  check_operands("conv_transpose2d", input, weight, bias, 4);
  if (input.dim() == 3)
    return squeeze(conv_transpose2d(unsqueeze(input, 0), weight, bias, stride, padding, output_padding,
                                    groups, dilation),
                   0);
  BP_CHECK(input.dim() == 4, ShapeError, "conv_transpose2d: expected input [N, C, H, W] or [C, H, W], got ",
           input.shape());
  check_positive("conv_transpose2d", "stride", stride);
  check_positive("conv_transpose2d", "dilation", dilation);
  check_non_negative("conv_transpose2d", "padding", padding);
  check_non_negative("conv_transpose2d", "output_padding", output_padding);
  BP_CHECK((output_padding.h < stride.h || output_padding.h < dilation.h) &&
               (output_padding.w < stride.w || output_padding.w < dilation.w),
           ValueError, "conv_transpose2d: output_padding (", output_padding.h, ", ", output_padding.w,
           ") must be smaller than stride (", stride.h, ", ", stride.w, ") or dilation (", dilation.h, ", ",
           dilation.w, ")");
  BP_CHECK(groups > 0, ValueError, "conv_transpose2d: groups must be positive, got ", groups);
  const std::int64_t c = input.size(1);
  BP_CHECK(weight.size(0) == c, ShapeError, "conv_transpose2d: input ", input.shape(), " has ", c,
           " channels but weight ", weight.shape(), " expects ", weight.size(0));
  BP_CHECK(c % groups == 0, ShapeError, "conv_transpose2d: groups=", groups,
           " must divide the input channels (", c, "); input ", input.shape(), ", weight ", weight.shape());
  const std::int64_t o = weight.size(1) * groups;
  if (bias.defined())
    BP_CHECK(bias.dim() == 1 && bias.size(0) == o, ShapeError, "conv_transpose2d: bias ", bias.shape(),
             " does not match weight ", weight.shape(), " with groups=", groups, " (expected [", o, "])");
  // The convolution this is the adjoint of maps the output [N, o, oh, ow] back to the input [N, c, h, w].
  ConvGeom g{.n = input.size(0),
             .c = o,
             .h = 0,
             .w = 0,
             .o = c,
             .kh = weight.size(2),
             .kw = weight.size(3),
             .sh = stride.h,
             .sw = stride.w,
             .ph = padding.h,
             .pw = padding.w,
             .dh = dilation.h,
             .dw = dilation.w,
             .groups = groups,
             .oh = input.size(2),
             .ow = input.size(3)};
  g.h = (g.oh - 1) * g.sh - 2 * g.ph + g.dh * (g.kh - 1) + output_padding.h + 1;
  g.w = (g.ow - 1) * g.sw - 2 * g.pw + g.dw * (g.kw - 1) + output_padding.w + 1;
  BP_CHECK(g.h > 0 && g.w > 0 && g.oh > 0 && g.ow > 0, ShapeError, "conv_transpose2d: input ", input.shape(),
           " with weight ", weight.shape(), ", stride (", stride.h, ", ", stride.w, ") and padding (",
           padding.h, ", ", padding.w, ") gives an empty output [", g.h, ", ", g.w, "]");
  Tensor y = conv_input_op(input, weight, g, "conv_transpose2d");
  return bias.defined() ? add(y, reshape(bias, {1, o, 1, 1})) : y;
}

// ---- pooling ----------------------------------------------------------------------------------------------

namespace {

Tensor pool_gather_op(const Tensor& x, const Tensor& indices);

// dx = dy scattered to the saved positions; its adjoint gathers from them.
Tensor pool_scatter_op(const Tensor& dy, const Tensor& indices, const Shape& in_shape) {
  Tensor dx = kernels::pool_scatter(dy, indices, in_shape);
  return record("max_pool2d_backward", dx, {dy},
                [indices](const Tensor& g) { return Tensors{pool_gather_op(g, indices)}; },
                {.saves_inputs = false});
}

Tensor pool_gather_op(const Tensor& x, const Tensor& indices) {
  Tensor y = kernels::pool_gather(x, indices);
  return record(
      "max_pool2d_gather", y, {x},
      [indices, shape = x.shape()](const Tensor& g) { return Tensors{pool_scatter_op(g, indices, shape)}; },
      {.saves_inputs = false});
}

using AvgGeomPtr = std::shared_ptr<const kernels::AvgGeom>;
Tensor avg_adjoint_op(const Tensor& dy, const AvgGeomPtr& g);

Tensor avg_op(const Tensor& x, const AvgGeomPtr& g, const char* name) {
  Tensor y = kernels::avg_pool2d(x, *g);
  return record(name, y, {x}, [g](const Tensor& dy) { return Tensors{avg_adjoint_op(dy, g)}; },
                {.saves_inputs = false});
}

Tensor avg_adjoint_op(const Tensor& dy, const AvgGeomPtr& g) {
  Tensor dx = kernels::avg_pool2d_adjoint(dy, *g);
  return record("avg_pool2d_backward", dx, {dy},
                [g](const Tensor& gx) { return Tensors{avg_op(gx, g, "avg_pool2d")}; },
                {.saves_inputs = false});
}

void check_pool_input(const char* op, const Tensor& x) {
  BP_CHECK(x.defined(), ValueError, op, ": input is undefined");
  BP_CHECK(x.dim() == 3 || x.dim() == 4, ShapeError, op, ": expected input [N, C, H, W] or [C, H, W], got ",
           x.shape());
  BP_CHECK(x.dtype() == f32 || x.dtype() == f64, DTypeError, op, ": expected an f32 or f64 tensor, got ",
           x.dtype());
}

/// Checks kernel, stride (0: the kernel's) and padding of a pooling; returns the stride.
Size2 check_pool_args(const char* op, Size2 kernel, Size2 stride, Size2 padding) {
  check_positive(op, "kernel_size", kernel);
  if (stride.h == 0 && stride.w == 0) stride = kernel;
  check_positive(op, "stride", stride);
  check_non_negative(op, "padding", padding);
  BP_CHECK(2 * padding.h <= kernel.h && 2 * padding.w <= kernel.w, ValueError, op, ": padding (", padding.h,
           ", ", padding.w, ") must be at most half the kernel size (", kernel.h, ", ", kernel.w, ")");
  return stride;
}

Shape pooled_shape(const Tensor& x, std::int64_t oh, std::int64_t ow) {
  Shape s = x.shape();
  s[s.size() - 2] = oh;
  s[s.size() - 1] = ow;
  return s;
}

}  // namespace

ValuesIndices max_pool2d_with_indices(const Tensor& input, Size2 kernel_size, Size2 stride, Size2 padding,
                                      Size2 dilation, bool ceil_mode) {
  check_pool_input("max_pool2d", input);
  stride = check_pool_args("max_pool2d", kernel_size, stride, padding);
  check_positive("max_pool2d", "dilation", dilation);
  const std::int64_t h = input.size(input.dim() - 2), w = input.size(input.dim() - 1);
  kernels::PoolGeom g{.planes = input.numel() / std::max<std::int64_t>(h * w, 1),
                      .h = h,
                      .w = w,
                      .oh = out_size(h, padding.h, dilation.h, kernel_size.h, stride.h, ceil_mode),
                      .ow = out_size(w, padding.w, dilation.w, kernel_size.w, stride.w, ceil_mode),
                      .kh = kernel_size.h,
                      .kw = kernel_size.w,
                      .sh = stride.h,
                      .sw = stride.w,
                      .ph = padding.h,
                      .pw = padding.w,
                      .dh = dilation.h,
                      .dw = dilation.w};
  BP_CHECK(g.oh > 0 && g.ow > 0, ShapeError, "max_pool2d: kernel (", kernel_size.h, ", ", kernel_size.w,
           ") with dilation (", dilation.h, ", ", dilation.w, ") is larger than the padded input ",
           input.shape(), " (padding (", padding.h, ", ", padding.w, "))");
  ValuesIndices out;
  kernels::max_pool2d(input, g, pooled_shape(input, g.oh, g.ow), out.values, out.indices);
  out.values = record("max_pool2d", out.values, {input},
                      [indices = out.indices, shape = input.shape()](const Tensor& dy) {
                        return Tensors{pool_scatter_op(dy, indices, shape)};
                      },
                      {.saves_inputs = false});
  return out;
}

Tensor max_pool2d(const Tensor& input, Size2 kernel_size, Size2 stride, Size2 padding, Size2 dilation,
                  bool ceil_mode) {
  return max_pool2d_with_indices(input, kernel_size, stride, padding, dilation, ceil_mode).values;
}

Tensor avg_pool2d(const Tensor& input, Size2 kernel_size, Size2 stride, Size2 padding, bool ceil_mode,
                  bool count_include_pad) {
  check_pool_input("avg_pool2d", input);
  stride = check_pool_args("avg_pool2d", kernel_size, stride, padding);
  auto g = std::make_shared<kernels::AvgGeom>();
  g->h = input.size(input.dim() - 2);
  g->w = input.size(input.dim() - 1);
  // Per dim: the window [o s - p, o s - p + k) cut at the padded end; the divisor counts it before (with
  // count_include_pad) or after cutting it to the input.
  auto windows = [&](std::int64_t size, std::int64_t k, std::int64_t s, std::int64_t p) {
    std::vector<kernels::Window> out;
    const std::int64_t n = out_size(size, p, 1, k, s, ceil_mode);
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int64_t begin = i * s - p, end = std::min(begin + k, size + p);
      const std::int64_t b = std::max<std::int64_t>(begin, 0), e = std::min(end, size);
      out.push_back({b, e, count_include_pad ? end - begin : e - b});
    }
    return out;
  };
  g->rows = windows(g->h, kernel_size.h, stride.h, padding.h);
  g->cols = windows(g->w, kernel_size.w, stride.w, padding.w);
  BP_CHECK(!g->rows.empty() && !g->cols.empty(), ShapeError, "avg_pool2d: kernel (", kernel_size.h, ", ",
           kernel_size.w, ") is larger than the padded input ", input.shape(), " (padding (", padding.h, ", ",
           padding.w, "))");
  return avg_op(input, g, "avg_pool2d");
}

Tensor adaptive_avg_pool2d(const Tensor& input, Size2 output_size) {
  check_pool_input("adaptive_avg_pool2d", input);
  check_positive("adaptive_avg_pool2d", "output_size", output_size);
  auto g = std::make_shared<kernels::AvgGeom>();
  g->h = input.size(input.dim() - 2);
  g->w = input.size(input.dim() - 1);
  BP_CHECK(g->h > 0 && g->w > 0, ShapeError, "adaptive_avg_pool2d: input ", input.shape(), " is empty");
  auto windows = [](std::int64_t size, std::int64_t n) {
    std::vector<kernels::Window> out;
    for (std::int64_t i = 0; i < n; ++i) {
      const std::int64_t b = i * size / n, e = ((i + 1) * size + n - 1) / n;
      out.push_back({b, e, e - b});
    }
    return out;
  };
  g->rows = windows(g->h, output_size.h);
  g->cols = windows(g->w, output_size.w);
  return avg_op(input, g, "adaptive_avg_pool2d");
}

}  // namespace backprop
