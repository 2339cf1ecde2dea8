// A BatchNorm2d followed by a ReLU in a Sequential runs as one op (BatchNorm2d::forward_relu, the ReLU folded
// into the normalisation's passes). Checked here: in training the output, every gradient and the running
// statistics equal those of the two layers applied one after the other to rounding (a fused pass may contract
// a product and a sum differently), in f32 and f64, with and without affine parameters; the graph holds the
// fused op; gradcheck and gradgradcheck pass through it; eval mode, and a BatchNorm2d followed by another
// activation, are not fused.
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

struct StepResult {
  std::vector<double> values;  // output, gradients of x and parameters, running statistics
  std::string op;              // the op that produced the output
};

// One training step's forward and backward through BatchNorm2d then ReLU, fused (in a Sequential) or not.
StepResult step(bool fused, bp::DType dtype, bool affine) {
  bp::Generator gen(5);
  auto bn = std::make_shared<nn::BatchNorm2d>(3, nn::BatchNormOptions{.affine = affine, .dtype = dtype});
  bp::Tensor x = bp::add(bp::randn({4, 3, 5, 7}, gen, dtype), 0.3).requires_grad_();
  bp::Tensor y;
  if (fused) {
    nn::Sequential seq;
    seq.push_back(bn);
    seq.push_back(std::make_shared<nn::ReLU>());
    y = seq.forward(x);
  } else {
    y = bp::relu(bn->forward(x));
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

TEST(BatchNormRelu, GradcheckAndGradgradcheck) {
  bp::Generator gen(8);
  auto bn = std::make_shared<nn::BatchNorm2d>(2, nn::BatchNormOptions{.dtype = bp::f64});
  nn::Sequential seq;
  seq.push_back(bn);
  seq.push_back(std::make_shared<nn::ReLU>());
  bp::Tensor x = bp::randn({3, 2, 3, 4}, gen, bp::f64).requires_grad_();
  auto fn = [&](const bp::Tensors& in) { return seq.forward(in[0]); };
  EXPECT_EQ(seq.forward(x).grad_fn()->name(), std::string("batch_norm_relu"));
  EXPECT_TRUE(bp::gradcheck(fn, {x}).ok);
  EXPECT_TRUE(bp::gradgradcheck(fn, {x}).ok);
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
