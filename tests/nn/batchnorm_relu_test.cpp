// A BatchNorm2d followed by a ReLU in a Sequential runs as one op (BatchNorm2d::forward_relu, the ReLU folded
// into the normalisation's passes). Checked here: in training the output, every gradient and the running
// statistics equal those of the two layers applied one after the other to rounding (a fused pass may contract
// a product and a sum differently), in f32 and f64, with and without affine parameters; the graph holds the
// fused op; gradcheck and gradgradcheck pass through it; eval mode, and a BatchNorm2d followed by another
// activation, are not fused. A 2x2 max pool after the ReLU joins the op too (BatchNorm2d::forward_relu_pool):
// the same checks, for odd and even planes, rows of 1 to 8, 9, 16 and more than 16 windows, ties inside
// windows, a negative gamma, and pools of other geometry, which are not fused.
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "util/close.hpp"

namespace bp = backprop;
namespace nn = backprop::nn;

namespace {

std::vector<double> flat(const bp::Tensors& ts) {
  std::vector<double> out;
  for (const bp::Tensor& t : ts) {
    const std::vector<double> v = t.to_vector();
    out.insert(out.end(), v.begin(), v.end());
  }
  return out;
}

bool same_bits(const std::vector<double>& a, const std::vector<double>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

// bn, a ReLU and, with `pool`, a MaxPool2d(2, options) in a Sequential.
nn::Sequential block(const std::shared_ptr<nn::BatchNorm2d>& bn, bool pool, nn::PoolOptions options = {}) {
  nn::Sequential seq;
  seq.push_back(bn);
  seq.push_back(std::make_shared<nn::ReLU>());
  if (pool) seq.push_back(std::make_shared<nn::MaxPool2d>(2, options));
  return seq;
}

struct StepResult {
  std::vector<double> values;  // output, gradients of x and parameters, running statistics
  std::string op;              // the op that produced the output
};

// One training step's forward and backward through BatchNorm2d then ReLU (then a 2x2 max pool with `pool`),
// fused (in a Sequential) or not. With `ties`, x holds multiples of 1/4, so windows hold equal values; the
// first channel's gamma is negative.
StepResult step(bool fused, bp::DType dtype, bool affine, bool pool = false, bp::Shape shape = {4, 3, 5, 7},
                bool ties = false) {
  bp::Generator gen(5);
  auto bn =
      std::make_shared<nn::BatchNorm2d>(shape[1], nn::BatchNormOptions{.affine = affine, .dtype = dtype});
  if (affine) {
    bp::NoGradGuard no_grad;
    std::vector<double> gamma = bp::rand({shape[1]}, gen, dtype, 0.5, 1.5).to_vector();
    gamma[0] = -0.7;
    bn->parameters()[0].copy_(bp::from_vector(gamma, {shape[1]}, dtype));
    bn->parameters()[1].copy_(bp::mul(bp::randn({shape[1]}, gen, dtype), 0.3));
  }
  bp::Tensor x = bp::add(bp::randn(shape, gen, dtype), 0.3);
  if (ties) {
    std::vector<double> v = x.to_vector();
    for (double& e : v) e = std::round(e * 4.0) / 4.0;
    x = bp::from_vector(v, shape, dtype);
  }
  x.requires_grad_();
  bp::Tensor y;
  if (fused) {
    y = block(bn, pool).forward(x);
  } else {
    y = bp::relu(bn->forward(x));
    if (pool) y = bp::max_pool2d(y, 2);
  }
  const bp::Tensor dy = bp::randn(y.shape(), gen, dtype);
  bp::Tensors inputs = {x};
  for (const bp::Tensor& p : bn->parameters()) inputs.push_back(p);
  bp::Tensors all = {y};
  const bp::Tensors grads = bp::grad({y}, inputs, {.grad_outputs = {dy}});
  all.insert(all.end(), grads.begin(), grads.end());
  for (const auto& [name, t] : bn->state_dict())
    if (name.find("running") != std::string::npos) all.push_back(t);
  return {flat(all), y.grad_fn() ? y.grad_fn()->name() : ""};
}

TEST(BatchNormRelu, FusedInSequentialEqualsTheTwoLayers) {
  for (bp::DType dtype : {bp::f32, bp::f64})
    for (bool affine : {true, false}) {
      const StepResult fused = step(true, dtype, affine), apart = step(false, dtype, affine);
      EXPECT_EQ(fused.op, "batch_norm_relu");
      EXPECT_EQ(apart.op, "relu");
      EXPECT_LT(testutil::worst_relative(fused.values, apart.values), dtype == bp::f32 ? 1e-6 : 1e-14)
          << dtype << (affine ? " affine" : "");
    }
}

TEST(BatchNormReluPool, FusedInSequentialEqualsTheThreeLayers) {
  // Rows of up to 8 windows go two row pairs to a vector (an odd count of pairs leaves one alone), longer
  // ones 16 windows at a time.
  for (const bp::Shape& shape :
       {bp::Shape{4, 3, 5, 7}, bp::Shape{2, 3, 6, 14}, bp::Shape{2, 2, 16, 16}, bp::Shape{2, 17, 2, 2},
        bp::Shape{2, 4, 15, 18}, bp::Shape{2, 3, 8, 40}, bp::Shape{3, 2, 6, 64}, bp::Shape{2, 2, 9, 35}})
    for (bp::DType dtype : {bp::f32, bp::f64})
      for (bool affine : {true, false})
        for (bool ties : {false, true}) {
          const StepResult fused = step(true, dtype, affine, true, shape, ties);
          const StepResult apart = step(false, dtype, affine, true, shape, ties);
          EXPECT_EQ(fused.op, "batch_norm_relu_max_pool");
          EXPECT_EQ(apart.op, "max_pool2d");
          EXPECT_LT(testutil::worst_relative(fused.values, apart.values), dtype == bp::f32 ? 1e-6 : 1e-14)
              << shape[1] << " channels " << shape[2] << "x" << shape[3] << " " << dtype
              << (affine ? " affine" : "") << (ties ? " ties" : "");
        }
}

TEST(BatchNormReluPool, OtherPoolsAndEvalModeAreNotFused) {
  bp::Generator gen(4);
  const bp::Tensor x = bp::randn({2, 2, 6, 6}, gen).requires_grad_();
  for (const nn::PoolOptions& options :
       {nn::PoolOptions{.stride = 1}, nn::PoolOptions{.padding = 1}, nn::PoolOptions{.dilation = 2},
        nn::PoolOptions{.ceil_mode = true}}) {
    const bp::Tensor y = block(std::make_shared<nn::BatchNorm2d>(2), true, options).forward(x);
    EXPECT_EQ(y.grad_fn()->name(), std::string("max_pool2d"));
    EXPECT_EQ(y.grad_fn()->next()[0].node->name(), std::string("batch_norm_relu"));
  }
  auto bn = std::make_shared<nn::BatchNorm2d>(2);
  nn::Sequential seq = block(bn, true);
  seq.eval();
  EXPECT_TRUE(same_bits(seq.forward(x).to_vector(), bp::max_pool2d(bp::relu(bn->forward(x)), 2).to_vector()));
}

TEST(BatchNormRelu, GradcheckAndGradgradcheckWithAndWithoutThePool) {
  for (bool pool : {false, true}) {
    bp::Generator gen(8);
    auto bn = std::make_shared<nn::BatchNorm2d>(2, nn::BatchNormOptions{.dtype = bp::f64});
    nn::Sequential seq = block(bn, pool);
    bp::Tensor x = bp::randn({3, 2, 5, 6}, gen, bp::f64).requires_grad_();
    bp::Tensors inputs = {x};
    for (const bp::Tensor& p : bn->parameters()) inputs.push_back(p);
    auto fn = [&](const bp::Tensors& in) { return seq.forward(in[0]); };
    EXPECT_EQ(seq.forward(x).grad_fn()->name(),
              std::string(pool ? "batch_norm_relu_max_pool" : "batch_norm_relu"));
    EXPECT_TRUE(bp::gradcheck(fn, inputs).ok) << pool;
    EXPECT_TRUE(bp::gradgradcheck(fn, inputs).ok) << pool;
  }
}

TEST(BatchNormRelu, EvalModeAndOtherActivationsAreNotFused) {
  bp::Generator gen(2);
  auto bn = std::make_shared<nn::BatchNorm2d>(2);
  nn::Sequential relu_after, leaky_after;
  relu_after.push_back(bn);
  relu_after.push_back(std::make_shared<nn::ReLU>());
  leaky_after.push_back(bn);
  leaky_after.push_back(std::make_shared<nn::LeakyReLU>(0.1));
  const bp::Tensor x = bp::randn({2, 2, 3, 3}, gen).requires_grad_();
  EXPECT_EQ(leaky_after.forward(x).grad_fn()->name(), std::string("leaky_relu"));
  relu_after.eval();
  const bp::Tensor y = relu_after.forward(x);
  EXPECT_EQ(y.grad_fn()->name(), std::string("relu"));
  EXPECT_TRUE(same_bits(y.to_vector(), bp::relu(bn->forward(x)).to_vector()));
}

}  // namespace
