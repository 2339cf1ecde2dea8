// checkpoint() under create_graph: the gradients it hands on are differentiable again, with respect to its
// inputs, to the parameters used inside it and to the output gradient, and equal those of the same function
// called without a checkpoint. Without create_graph nothing of the backward is recorded.
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <cmath>
#include <cstdint>

namespace bp = backprop;

namespace {

/// Two layers tanh(W x + b) whose weights are captured by the checkpointed function (not passed as inputs).
struct Segment {
  bp::Tensor w1, b1, w2, b2;
  bp::Tensor operator()(const bp::Tensor& x) const {
    return bp::tanh(bp::linear(bp::tanh(bp::linear(x, w1, b1)), w2, b2));
  }
};

Segment make_segment(bp::Generator& gen, std::int64_t width) {
  auto p = [&](bp::Shape s) { return bp::randn(s, gen, bp::f64, 0.0, 0.6).requires_grad_(); };
  return {p({width, width}), p({width}), p({width, width}), p({width})};
}

bp::Tensor checkpointed(const Segment& s, const bp::Tensor& x) {
  return bp::checkpoint([s](const bp::Tensors& in) { return s(in[0]); }, {x});
}

/// The full Hessian of scalar_fn over the flattened `wrt`, row by row (one grad() of each gradient element).
std::vector<std::vector<double>> hessian(const std::function<bp::Tensor()>& scalar_fn,
                                         const bp::Tensors& wrt) {
  const bp::Tensor s = scalar_fn();
  const bp::Tensors g = bp::grad({s}, wrt, {.create_graph = true});
  std::vector<std::vector<double>> rows;
  for (const bp::Tensor& gi : g) {
    for (std::int64_t k = 0; k < gi.numel(); ++k) {
      bp::Tensor pick = bp::zeros(gi.shape(), bp::f64);
      pick.data<double>()[k] = 1.0;
      const bp::Tensors h = bp::grad({bp::sum(gi * pick)}, wrt, {.retain_graph = true, .allow_unused = true});
      std::vector<double> row;
      for (std::size_t j = 0; j < wrt.size(); ++j)
        for (std::int64_t e = 0; e < wrt[j].numel(); ++e) row.push_back(h[j].defined() ? h[j].flat(e) : 0.0);
      rows.push_back(std::move(row));
    }
  }
  return rows;
}

double max_diff(const std::vector<std::vector<double>>& a, const std::vector<std::vector<double>>& b) {
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i)
    for (std::size_t j = 0; j < a[i].size(); ++j) worst = std::max(worst, std::abs(a[i][j] - b[i][j]));
  return worst;
}

}  // namespace

TEST(CheckpointCreateGraph, GradcheckAndGradgradcheckWithInputsAndCapturedParameters) {
  bp::Generator gen(11);
  const Segment s = make_segment(gen, 3);
  const bp::Tensor x = bp::randn({2, 3}, gen, bp::f64).requires_grad_();
  // The parameters are gradcheck's inputs too, but reach the checkpointed function only by capture.
  auto fn = [](const bp::Tensors& in) {
    const Segment seg{in[1], in[2], in[3], in[4]};
    return checkpointed(seg, in[0] * 1.5);  // an input produced by a recorded op
  };
  const bp::Tensors inputs = {x, s.w1, s.b1, s.w2, s.b2};
  EXPECT_TRUE(bp::gradcheck(fn, inputs).ok);
  EXPECT_TRUE(bp::gradgradcheck(fn, inputs).ok);
}

TEST(CheckpointCreateGraph, GradgradcheckOfNestedCheckpointsAndAnOutputUsedTwice) {
  bp::Generator gen(12);
  const Segment s = make_segment(gen, 3);
  const bp::Tensor x = bp::randn({2, 3}, gen, bp::f64).requires_grad_();
  const bp::Tensor scale = bp::rand({3}, gen, bp::f64, 0.5, 1.5).requires_grad_();
  auto nested = [](const bp::Tensors& in) {
    const Segment seg{in[2], in[3], in[4], in[5]};
    const bp::Tensor y = bp::checkpoint(
        [seg](const bp::Tensors& a) {
          const bp::Tensor inner = checkpointed(seg, a[0]);  // a checkpoint inside a checkpoint
          return bp::sigmoid(inner * a[1]) + inner;
        },
        {in[0], in[1]});
    return y * y + bp::exp(y);  // the checkpoint's output used twice
  };
  const bp::Tensors inputs = {x, scale, s.w1, s.b1, s.w2, s.b2};
  EXPECT_TRUE(bp::gradcheck(nested, inputs).ok);
  EXPECT_TRUE(bp::gradgradcheck(nested, inputs).ok);
}

TEST(CheckpointCreateGraph, SecondDerivativesEqualThoseWithoutTheCheckpoint) {
  bp::Generator gen(13);
  const Segment s = make_segment(gen, 3);
  const bp::Tensor x = bp::randn({2, 3}, gen, bp::f64).requires_grad_();
  const bp::Tensors wrt = {x, s.w1, s.b1, s.w2, s.b2};
  auto loss = [&](bool ckpt) {
    const bp::Tensor y = ckpt ? checkpointed(s, x) : s(x);
    return bp::sum(bp::pow(y, 3.0)) + bp::sum(y);
  };
  const auto plain = hessian([&] { return loss(false); }, wrt);
  const auto through = hessian([&] { return loss(true); }, wrt);
  ASSERT_EQ(plain.size(), 6u + 9 + 3 + 9 + 3);
  EXPECT_LT(max_diff(plain, through), 1e-12);
  double norm = 0;
  for (const auto& row : plain)
    for (double v : row) norm = std::max(norm, std::abs(v));
  EXPECT_GT(norm, 0.1) << "the Hessian is not trivially zero";
}

TEST(CheckpointCreateGraph, HessianVectorProductThroughACheckpointedSegmentEqualsThePlainOne) {
  bp::Generator gen(14);
  const Segment first = make_segment(gen, 5), middle = make_segment(gen, 5);
  const bp::Tensor x = bp::randn({4, 5}, gen, bp::f64);
  const bp::Tensors params = {first.w1,  first.b1,  first.w2,  first.b2,
                              middle.w1, middle.b1, middle.w2, middle.b2};
  bp::Tensors direction;
  for (const bp::Tensor& p : params) direction.push_back(bp::randn(p.shape(), gen, bp::f64));
  auto hvp = [&](bool ckpt) {
    const bp::Tensor h = first(x);
    const bp::Tensor y = ckpt ? checkpointed(middle, h) : middle(h);  // checkpoint in the middle of a net
    const bp::Tensor loss = bp::mean(bp::pow(y - 0.3, 2.0));
    const bp::Tensors g = bp::grad({loss}, params, {.create_graph = true});
    bp::Tensor gv = bp::zeros({}, bp::f64);
    for (std::size_t i = 0; i < g.size(); ++i) gv = gv + bp::sum(g[i] * direction[i]);
    return bp::grad({gv}, params);
  };
  const bp::Tensors plain = hvp(false), through = hvp(true);
  for (std::size_t i = 0; i < params.size(); ++i) {
    EXPECT_LT(bp::max_abs_diff(plain[i], through[i]), 1e-12) << "parameter " << i;
    EXPECT_GT(bp::max_abs_diff(plain[i], bp::zeros_like(plain[i])), 1e-6) << "parameter " << i;
  }
}

TEST(CheckpointCreateGraph, BackwardWithCreateGraphLeavesDifferentiableParameterGradients) {
  bp::Generator gen(15);
  const Segment s = make_segment(gen, 3);
  const bp::Tensor x = bp::randn({2, 3}, gen, bp::f64).requires_grad_();
  const bp::Tensor u = bp::randn({3, 3}, gen, bp::f64);
  auto penalty_grads = [&](bool ckpt) {
    for (bp::Tensor p : {x, s.w1, s.b1, s.w2, s.b2}) p.zero_grad();
    const bp::Tensor y = ckpt ? checkpointed(s, x) : s(x);
    bp::backward({bp::sum(y * y)}, {}, {.create_graph = true});
    // A gradient penalty on the first weight's gradient, differentiated with respect to everything.
    const bp::Tensor penalty = bp::sum(s.w1.grad() * u) + bp::sum(x.grad() * x.grad());
    EXPECT_TRUE(s.w1.grad().requires_grad()) << "the delivered parameter gradient is recorded";
    return bp::grad({penalty}, {x, s.w1, s.b1, s.w2, s.b2});
  };
  const bp::Tensors plain = penalty_grads(false), through = penalty_grads(true);
  for (std::size_t i = 0; i < plain.size(); ++i)
    EXPECT_LT(bp::max_abs_diff(plain[i], through[i]), 1e-12) << "input " << i;
}

TEST(CheckpointCreateGraph, GradientIsDifferentiableWithRespectToTheOutputGradient) {
  bp::Generator gen(16);
  const Segment s = make_segment(gen, 3);
  const bp::Tensor x = bp::randn({2, 3}, gen, bp::f64).requires_grad_();
  const bp::Tensor dy = bp::randn({2, 3}, gen, bp::f64).requires_grad_();
  const bp::Tensor u = bp::randn({3, 3}, gen, bp::f64);
  auto second = [&](bool ckpt) {
    const bp::Tensor y = ckpt ? checkpointed(s, x) : s(x);
    const bp::Tensors g = bp::grad({y}, {x, s.w1}, {.grad_outputs = {dy}, .create_graph = true});
    // <u, dL/dW1> is linear in dy: its gradient with respect to dy is the vector-Jacobian product's transpose.
    return bp::grad({bp::sum(g[1] * u) + bp::sum(g[0] * g[0])}, {dy, x});
  };
  const bp::Tensors plain = second(false), through = second(true);
  EXPECT_LT(bp::max_abs_diff(plain[0], through[0]), 1e-12);
  EXPECT_LT(bp::max_abs_diff(plain[1], through[1]), 1e-12);
}

TEST(CheckpointCreateGraph, WithoutCreateGraphTheGradientsRecordNothingAndMatchBitForBit) {
  bp::Generator gen(17);
  const Segment s = make_segment(gen, 4);
  const bp::Tensor x = bp::randn({3, 4}, gen, bp::f64).requires_grad_();
  const bp::Tensors plain = bp::grad({bp::sum(s(x))}, {x, s.w1, s.b2});
  const bp::Tensors through = bp::grad({bp::sum(checkpointed(s, x))}, {x, s.w1, s.b2});
  for (std::size_t i = 0; i < plain.size(); ++i) {
    EXPECT_FALSE(through[i].requires_grad()) << i;
    EXPECT_EQ(bp::max_abs_diff(plain[i], through[i]), 0.0) << i;
  }
  // The same under backward(): the parameters' .grad() are plain values.
  bp::sum(checkpointed(s, x)).backward();
  EXPECT_FALSE(s.w1.grad().requires_grad());
  EXPECT_EQ(bp::max_abs_diff(s.w1.grad(), plain[1]), 0.0);
}

TEST(CheckpointCreateGraph, ThirdDerivativeWhereEachPassWalksTheCheckpointAgain) {
  // L = y^2 with y = exp(2 x) through a checkpoint, so L = exp(4 x) and d3L/dx3 = 64 exp(4 x). Every gradient
  // depends on y itself, so each of the three passes runs the checkpoint's backward (the first two recorded).
  const bp::Tensor x = bp::tensor({0.3}, bp::f64).requires_grad_();
  const bp::Tensor y = bp::checkpoint([](const bp::Tensors& in) { return bp::exp(in[0] * 2.0); }, {x});
  const bp::Tensor loss = y * y;
  const bp::Tensor d1 = bp::grad({loss}, {x}, {.create_graph = true})[0];
  const bp::Tensor d2 = bp::grad({d1}, {x}, {.create_graph = true})[0];
  const bp::Tensor d3 = bp::grad({d2}, {x})[0];
  EXPECT_NEAR(d1.item(), 4 * std::exp(1.2), 1e-13);
  EXPECT_NEAR(d2.item(), 16 * std::exp(1.2), 1e-12);
  EXPECT_NEAR(d3.item(), 64 * std::exp(1.2), 1e-11);
}
