// The instruction-set variants of convolution's unrolling, BatchNorm2d's channel loops and the 2x2 max pool
// (src/kernels/conv_loops.inl) give the baseline variant's results up to rounding: every variant this CPU
// runs, forced through set_kernel_config, computes the same conv2d outputs and gradients (for paddings that
// take the "same" block path and the row path, strides, dilations, groups, the direct and the broadcast
// loops), the same BatchNorm2d forward and backward (alone, and with a ReLU and a 2x2 max pool fused after
// it), and exactly the same max-pool values and indices, NaNs included; ReLU likewise.
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "util/close.hpp"

namespace bp = backprop;

namespace {

struct ConfigGuard {
  bp::KernelConfig saved = bp::kernel_config();
  ~ConfigGuard() { bp::set_kernel_config(saved); }
};

std::vector<bp::Isa> wider_variants() {
  std::vector<bp::Isa> v;
  for (bp::Isa isa : {bp::Isa::avx2, bp::Isa::avx512})
    if (bp::cpu_supports(isa)) v.push_back(isa);
  return v;
}

struct ConvCase {
  std::string name;
  bp::Shape input, weight;
  bp::Size2 stride = 1;
  bp::ConvPadding padding = 0;
  bp::Size2 dilation = 1;
  std::int64_t groups = 1;
};

std::vector<ConvCase> conv_cases() {
  return {
      {"same3x3", {3, 4, 9, 11}, {5, 4, 3, 3}, 1, 1},
      {"same5x5_one_channel", {2, 1, 12, 12}, {6, 1, 5, 5}, 1, 2},
      {"valid5x5", {2, 6, 14, 13}, {16, 6, 5, 5}},
      {"stride2_pad1", {2, 3, 11, 10}, {4, 3, 3, 3}, 2, 1},
      {"dilation2_same", {2, 2, 10, 9}, {3, 2, 3, 3}, 1, bp::ConvPadding("same"), 2},
      {"groups2_pad_rows_only", {2, 4, 8, 7}, {6, 2, 3, 2}, 1, bp::Size2(1, 0), 1, 2},
      {"pointwise", {2, 5, 6, 6}, {3, 5, 1, 1}},
      {"direct_one_channel", {2, 1, 11, 28}, {7, 1, 5, 5}, 1, 2},
      {"direct_many_filters", {2, 1, 9, 35}, {17, 1, 3, 4}, 1, bp::Size2(1, 2)},
      {"direct_depthwise", {2, 4, 8, 21}, {8, 1, 3, 3}, 1, 1, 1, 4},
      {"broadcast_part_vectors_long_rows", {2, 3, 5, 33}, {40, 3, 3, 3}, 1, 1},
      {"broadcast_groups_wide_kernel", {2, 4, 6, 12}, {32, 2, 2, 9}, 1, bp::Size2(0, 4), 1, 2},
  };
}

// conv2d's output and its input, weight and bias gradients for a fixed upstream gradient, flattened.
std::vector<double> conv_results(const ConvCase& c, bp::DType dtype) {
  bp::Generator gen(7);
  bp::Tensor x = bp::randn(c.input, gen, dtype).requires_grad_();
  bp::Tensor w = bp::randn(c.weight, gen, dtype).requires_grad_();
  bp::Tensor b = bp::randn({c.weight[0]}, gen, dtype).requires_grad_();
  bp::Tensor y = bp::conv2d(x, w, b, c.stride, c.padding, c.dilation, c.groups);
  bp::Tensor dy = bp::randn(y.shape(), gen, dtype);
  bp::Tensors g = bp::grad({y}, {x, w, b}, {.grad_outputs = {dy}});
  std::vector<double> out = y.to_vector();
  for (const bp::Tensor& t : g) {
    const std::vector<double> v = t.to_vector();
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

// BatchNorm2d in training mode, alone or (fused_pool) followed by a ReLU and a 2x2 max pool in a Sequential
// (the fused op, on odd planes with rows of more than 16 windows and ties inside windows): the output and the
// input, weight and bias gradients.
std::vector<double> batchnorm_results(bp::DType dtype, bool fused_pool) {
  bp::Generator gen(3);
  auto bn = std::make_shared<bp::nn::BatchNorm2d>(5, bp::nn::BatchNormOptions{.dtype = dtype});
  bp::nn::Sequential seq;
  seq.push_back(bn);
  if (fused_pool) {
    seq.push_back(std::make_shared<bp::nn::ReLU>());
    seq.push_back(std::make_shared<bp::nn::MaxPool2d>(2));
  }
  const bp::Shape shape = fused_pool ? bp::Shape{3, 5, 11, 37} : bp::Shape{4, 5, 7, 9};
  std::vector<double> v = bp::add(bp::mul(bp::randn(shape, gen, dtype), 3.0), 100.0).to_vector();
  if (fused_pool)
    for (std::size_t i = 0; i < v.size(); i += 5) v[i] = std::round(v[i]);  // ties inside windows
  bp::Tensor x = bp::from_vector(v, shape, dtype).requires_grad_();
  bp::Tensor y = seq.forward(x);
  bp::Tensor dy = bp::randn(y.shape(), gen, dtype);
  bp::Tensors inputs = {x};
  for (const bp::Tensor& p : bn->parameters()) inputs.push_back(p);
  bp::Tensors g = bp::grad({y}, inputs, {.grad_outputs = {dy}});
  std::vector<double> out = y.to_vector();
  for (const bp::Tensor& t : g) {
    const std::vector<double> r = t.to_vector();
    out.insert(out.end(), r.begin(), r.end());
  }
  return out;
}

// 2x2 max pooling of planes with ties and NaNs, rows longer and shorter than a vector: values then indices.
std::vector<double> max_pool_results(bp::DType dtype, const bp::Shape& shape) {
  bp::Generator gen(5);
  bp::Tensor x = bp::randn(shape, gen, dtype);
  std::vector<double> v = x.to_vector();
  for (std::size_t i = 0; i < v.size(); i += 7) v[i] = std::round(v[i]);  // ties inside windows
  for (std::size_t i = 3; i < v.size(); i += 29) v[i] = std::numeric_limits<double>::quiet_NaN();
  x = bp::from_vector(v, x.shape(), dtype);
  bp::ValuesIndices r = bp::max_pool2d_with_indices(x, 2);
  std::vector<double> out = r.values.to_vector();
  const std::vector<double> idx = r.indices.to_vector();
  out.insert(out.end(), idx.begin(), idx.end());
  return out;
}

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!(a[i] == b[i] || (std::isnan(a[i]) && std::isnan(b[i])))) return false;
  return true;
}

}  // namespace

TEST(ConvIsaVariants, Conv2dForwardAndGradientsEqualTheBaseline) {
  ConfigGuard guard;
  for (const ConvCase& c : conv_cases())
    for (bp::DType dtype : {bp::f32, bp::f64}) {
      bp::set_kernel_config({.isa = bp::Isa::baseline});
      const std::vector<double> base = conv_results(c, dtype);
      for (bp::Isa isa : wider_variants()) {
        bp::set_kernel_config({.isa = isa});
        EXPECT_LE(testutil::worst_relative(conv_results(c, dtype), base), dtype == bp::f32 ? 2e-6 : 1e-14)
            << c.name << " " << bp::isa_name(isa) << " " << dtype;
      }
    }
}

TEST(ConvIsaVariants, BatchNorm2dForwardAndBackwardEqualTheBaseline) {
  ConfigGuard guard;
  for (bool fused_pool : {false, true})
    for (bp::DType dtype : {bp::f32, bp::f64}) {
      bp::set_kernel_config({.isa = bp::Isa::baseline});
      const std::vector<double> base = batchnorm_results(dtype, fused_pool);
      for (bp::Isa isa : wider_variants()) {
        bp::set_kernel_config({.isa = isa});
        EXPECT_LE(testutil::worst_relative(batchnorm_results(dtype, fused_pool), base),
                  dtype == bp::f32 ? 2e-6 : 1e-13)
            << bp::isa_name(isa) << " " << dtype << (fused_pool ? " with ReLU and max pool" : "");
      }
    }
}

TEST(ConvIsaVariants, MaxPool2x2ValuesAndIndicesAreIdentical) {
  ConfigGuard guard;
  for (bp::DType dtype : {bp::f32, bp::f64}) {
    for (const bp::Shape& shape : {bp::Shape{3, 2, 10, 37}, bp::Shape{2, 3, 8, 28}, bp::Shape{1, 2, 6, 14}}) {
      bp::set_kernel_config({.isa = bp::Isa::baseline});
      const std::vector<double> base = max_pool_results(dtype, shape);
      for (bp::Isa isa : wider_variants()) {
        bp::set_kernel_config({.isa = isa});
        EXPECT_TRUE(same_bits(max_pool_results(dtype, shape), base)) << bp::isa_name(isa) << " " << dtype;
      }
    }
  }
}

// ReLU's loops (src/kernels/conv_loops.inl): the forward and the backward give the baseline's bits in
// every variant, for lengths around the vector widths and NaN, infinite and signed-zero inputs and gradients.
TEST(ReluIsaVariants, ForwardAndBackwardAreIdentical) {
  ConfigGuard guard;
  const double inf = std::numeric_limits<double>::infinity(), nan = std::numeric_limits<double>::quiet_NaN();
  for (bp::DType dtype : {bp::f32, bp::f64})
    for (std::int64_t n : {1, 7, 16, 33, 1000}) {
      bp::Generator gen(9);
      std::vector<double> xv = bp::randn({n}, gen, dtype).to_vector(),
                          gv = bp::randn({n}, gen, dtype).to_vector();
      const double specials[] = {nan, inf, -inf, 0.0, -0.0, 1e-310};
      for (std::size_t i = 0; i < xv.size(); i += 5) xv[i] = specials[(i / 5) % 6];
      for (std::size_t i = 2; i < gv.size(); i += 7) gv[i] = specials[(i / 7) % 6];
      const bp::Tensor x = bp::from_vector(xv, {n}, dtype).requires_grad_(),
                       dy = bp::from_vector(gv, {n}, dtype);
      auto run = [&] {
        const bp::Tensor y = bp::relu(x);
        std::vector<double> out = y.to_vector();
        const std::vector<double> dx = bp::grad({y}, {x}, {.grad_outputs = {dy}})[0].to_vector();
        out.insert(out.end(), dx.begin(), dx.end());
        return out;
      };
      bp::set_kernel_config({.isa = bp::Isa::baseline});
      const std::vector<double> base = run();
      for (bp::Isa isa : wider_variants()) {
        bp::set_kernel_config({.isa = isa});
        EXPECT_TRUE(same_bits(run(), base)) << bp::isa_name(isa) << " " << dtype << " n=" << n;
      }
    }
}
