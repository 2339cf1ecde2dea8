#include <backprop/backprop.hpp>
#include <gtest/gtest.h>
namespace bp = backprop;
TEST(Smoke, MatmulBackward) {
  bp::Generator gen(1);
  bp::Tensor x = bp::randn({4, 3}, gen, bp::f64).requires_grad_();
  bp::Tensor w = bp::randn({3, 2}, gen, bp::f64).requires_grad_();
  bp::Tensor y = bp::sigmoid(bp::matmul(x, w)).sum();
  y.backward();
  EXPECT_TRUE(w.grad().defined());
  bp::gradcheck([](const bp::Tensors& in) { return bp::sigmoid(bp::matmul(in[0], in[1])); }, {x, w});
  bp::gradgradcheck([](const bp::Tensors& in) { return bp::sigmoid(bp::matmul(in[0], in[1])); }, {x, w});
}
