// Trains a 2-2-1 sigmoid network on XOR for a few hundred steps of gradient descent through an installed
// backprop, and checks that the cost went down and that backprop's exceptions cross the library boundary.
// Exit status 0 on success.
#include <backprop/backprop.hpp>
#include <cstdio>

namespace bp = backprop;

int main() {
  bp::Generator gen(1);
  const bp::Tensor x = bp::tensor({{0, 0}, {0, 1}, {1, 0}, {1, 1}});
  const bp::Tensor y = bp::tensor({0.0, 1.0, 1.0, 0.0}).reshape({4, 1});
  bp::Tensor w1 = bp::randn({2, 2}, gen).requires_grad_(), b1 = bp::zeros({2}).requires_grad_();
  bp::Tensor w2 = bp::randn({1, 2}, gen).requires_grad_(), b2 = bp::zeros({1}).requires_grad_();
  bp::Tensor* params[] = {&w1, &b1, &w2, &b2};

  double first = 0, last = 0;
  for (int step = 0; step < 300; ++step) {
    const bp::Tensor h = bp::sigmoid(bp::linear(x, w1, b1));
    const bp::Tensor out = bp::sigmoid(bp::linear(h, w2, b2));
    const bp::Tensor cost = bp::mean(bp::pow(out - y, 2.0)) * 0.5;  // C = 1/2 mean (y - a)^2
    cost.backward();
    bp::NoGradGuard no_grad;
    for (bp::Tensor* p : params) {
      p->add_(p->grad(), -2.0);  // w <- w - eta dC/dw
      p->zero_grad();
    }
    if (step == 0) first = cost.item();
    last = cost.item();
  }
  std::printf("cost %.6f -> %.6f after 300 steps\n", first, last);

  bool caught = false;
  try {
    bp::matmul(bp::ones({2, 3}), bp::ones({2, 3}));
  } catch (const bp::ShapeError& e) {
    caught = true;
    std::printf("caught as expected: %s\n", e.what());
  }
  if (!caught || !(last < first)) {
    std::fprintf(stderr, "install test failed: %s\n", caught ? "the cost did not go down" : "no ShapeError");
    return 1;
  }
  return 0;
}
