// The autograd engine: dynamic programming over the graph, higher derivatives, the graph's lifetime rules and
// the errors of misuse.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <cmath>

namespace bp = backprop;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

namespace {

bp::Tensor leaf(std::initializer_list<double> values) {
  return bp::tensor(values, bp::f64).requires_grad_();
}
double sigmoid(double v) {
  return 1 / (1 + std::exp(-v));
}

}  // namespace

// ---- the chain rule as dynamic programming ----------------------------------------------------------------

TEST(DynamicProgramming, RepeatedCompositionRunsEachNodeOnce) {
  // z = f(f(f(w))) with f = exp: dz/dw = f'(f(f(w))) f'(f(w)) f'(w) = z * b * a, each factor computed once.
  bp::Tensor w = leaf({0.3});
  const bp::Tensor a = bp::exp(w), b = bp::exp(a), z = bp::exp(b);
  EXPECT_NEAR(z.item(), std::exp(std::exp(std::exp(0.3))), 1e-12);
  z.backward();
  const double expected = z.item() * b.item() * a.item();
  EXPECT_NEAR(w.grad().item(), expected, 1e-9 * expected);
  for (const bp::Tensor& t : {a, b, z}) EXPECT_EQ(t.grad_fn()->times_run(), 1u);
  EXPECT_EQ(bp::last_backward_stats().nodes_run, 3u);
  EXPECT_EQ(bp::last_backward_stats().nodes_in_graph, 3u);
}

TEST(DynamicProgramming, DiamondRunsTheSharedNodeOnceOnTheSumOfItsGradients) {
  // a = tanh(x) feeds two branches, b = sigmoid(a) and c = a * a, joined by d = b * c.
  bp::Tensor x = leaf({0.7, -0.4});
  const bp::Tensor a = bp::tanh(x);
  const bp::Tensor b = bp::sigmoid(a), c = bp::mul(a, a);
  const bp::Tensor d = bp::mul(b, c);
  const bp::Tensor loss = bp::sum(d);
  loss.backward();
  for (std::int64_t i = 0; i < 2; ++i) {
    const double xv = x.at({i}), av = std::tanh(xv), bv = sigmoid(av);
    // dd/da = b' c + b c' = b (1 - b) a^2 + b 2a; da/dx = 1 - a^2.
    const double expected = (bv * (1 - bv) * av * av + bv * 2 * av) * (1 - av * av);
    EXPECT_NEAR(x.grad().at({i}), expected, 1e-12);
  }
  for (const bp::Tensor& t : {a, b, c, d, loss})
    EXPECT_EQ(t.grad_fn()->times_run(), 1u) << t.grad_fn()->name();
  EXPECT_EQ(bp::last_backward_stats().nodes_run, 5u);
}

TEST(DynamicProgramming, ExponentiallyManyPathsCostLinearTime) {
  // y_{k+1} = sigmoid(y_k) + 0.5 y_k uses y_k twice: 2^60 paths from the output to x, 180 nodes.
  bp::Tensor x = leaf({0.2});
  bp::Tensor y = x;
  double value = 0.2, derivative = 1.0;
  for (int k = 0; k < 60; ++k) {
    y = bp::sigmoid(y) + y * 0.5;
    const double s = sigmoid(value);
    derivative *= s * (1 - s) + 0.5;
    value = s + 0.5 * value;
  }
  EXPECT_NEAR(y.item(), value, 1e-12);
  y.backward();
  EXPECT_NEAR(x.grad().item(), derivative, 1e-12 * derivative);
  EXPECT_EQ(bp::last_backward_stats().nodes_run, 180u);
}

TEST(DynamicProgramming, GradOnlyRunsNodesOnAPathToTheRequestedInputs) {
  bp::Tensor x = leaf({1.0, 2.0}), w = leaf({3.0, 4.0});
  const bp::Tensor wx = bp::exp(bp::exp(w));  // a branch that reaches only w
  const bp::Tensor loss = bp::sum(bp::mul(bp::sigmoid(x), wx));
  const bp::Tensors g = bp::grad({loss}, {x});
  EXPECT_EQ(bp::last_backward_stats().nodes_in_graph, 5u);
  EXPECT_EQ(bp::last_backward_stats().nodes_run, 3u) << "sum, mul, sigmoid; not the two exps";
  EXPECT_FALSE(w.grad().defined());
  EXPECT_FALSE(x.grad().defined()) << "grad() returns gradients without accumulating them";
  const double s = sigmoid(1.0);
  EXPECT_NEAR(g[0].at({0}), s * (1 - s) * std::exp(std::exp(3.0)), 1e-6);
}

TEST(DynamicProgramming, SeveralOutputsWhereOneFeedsTheOther) {
  bp::Tensor x = leaf({2.0});
  const bp::Tensor y1 = x * x;     // dy1/dx = 2x = 4
  const bp::Tensor y2 = y1 * 3.0;  // dy2/dx = 6x = 12
  bp::backward({y1, y2});
  EXPECT_DOUBLE_EQ(x.grad().item(), 16.0);
  EXPECT_EQ(y1.grad_fn()->times_run(), 1u);
}

// ---- gradients that share storage must not change each other ----------------------------------------------

TEST(Accumulation, AGradientHandedToTwoInputsIsNotChangedThroughEither) {
  // d(u + z1)/du and /dz1 are the same tensor; z1 later receives more gradient (from u = z1 + z2), which must
  // not leak into z2's share. Expected: dy/dx = 2 (via z1 twice) * 2 + 3 (via z2) = 7.
  bp::Tensor x = bp::ones({3}, bp::f64).requires_grad_();
  const bp::Tensor z1 = x * 2.0, z2 = x * 3.0;
  const bp::Tensor u = z1 + z2;
  bp::sum(u + z1).backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<double>{7, 7, 7}));
}

TEST(Accumulation, TheCallersOutputGradientIsNeverWrittenAndNeverAliased) {
  bp::Tensor x = bp::ones({3}, bp::f64).requires_grad_();
  const bp::Tensor g = bp::tensor({1.0, 2.0, 3.0}, bp::f64);
  (x + 0.0).backward(g);
  (x + 0.0).backward(g);
  EXPECT_EQ(g.to_vector(), (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(x.grad().to_vector(), (std::vector<double>{2, 4, 6}));
  EXPECT_NE(x.grad().storage(), g.storage());
  bp::Tensor y = bp::ones({3}, bp::f64).requires_grad_();
  y.backward(g);  // a leaf as its own output
  EXPECT_NE(y.grad().storage(), g.storage());
  y.backward(g);
  EXPECT_EQ(g.to_vector(), (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(y.grad().to_vector(), (std::vector<double>{2, 4, 6}));
}

TEST(Accumulation, AHeldGradientHandleIsNotChangedBehindTheCallersBack) {
  bp::Tensor x = bp::ones({2}, bp::f64).requires_grad_();
  bp::sum(x * 3.0).backward();
  const bp::Tensor first = x.grad();
  bp::sum(x * 3.0).backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<double>{6, 6}));
  EXPECT_EQ(first.to_vector(), (std::vector<double>{3, 3})) << "the earlier gradient stays what it was";
}

// ---- higher derivatives -----------------------------------------------------------------------------------

TEST(HigherOrder, SecondAndThirdDerivativesOfXCubed) {
  for (int variant = 0; variant < 2; ++variant) {
    bp::Tensor x = leaf({1.5, -2.0});
    auto f = [&](const bp::Tensor& v) { return variant == 0 ? bp::pow(v, 3.0) : v * v * v; };
    const bp::Tensor y = bp::sum(f(x));
    const bp::Tensor dy = bp::grad({y}, {x}, {.create_graph = true})[0];  // 3x^2
    EXPECT_TRUE(dy.requires_grad());
    const bp::Tensor d2y = bp::grad({bp::sum(dy)}, {x}, {.create_graph = true})[0];  // 6x
    const bp::Tensor d3y = bp::grad({bp::sum(d2y)}, {x})[0];                         // 6
    for (std::int64_t i = 0; i < 2; ++i) {
      const double v = x.at({i});
      EXPECT_NEAR(dy.at({i}), 3 * v * v, 1e-12);
      EXPECT_NEAR(d2y.at({i}), 6 * v, 1e-12) << "variant " << variant;
      EXPECT_NEAR(d3y.at({i}), 6.0, 1e-12);
    }
    EXPECT_FALSE(d3y.requires_grad()) << "without create_graph the gradient is a plain value";
  }
}

TEST(HigherOrder, BackwardWithCreateGraphLeavesADifferentiableGrad) {
  bp::Tensor x = leaf({0.5});
  bp::sum(bp::exp(x * 2.0)).backward({}, /*retain_graph=*/false, /*create_graph=*/true);
  const bp::Tensor g = x.grad();  // 2 exp(2x)
  EXPECT_TRUE(g.requires_grad());
  const bp::Tensor h = bp::grad({bp::sum(g)}, {x})[0];  // 4 exp(2x)
  EXPECT_NEAR(h.item(), 4 * std::exp(1.0), 1e-12);
}

TEST(HigherOrder, HessianVectorProductOfAnMlpLossMatchesFiniteDifferencesOfItsGradient) {
  bp::Generator gen(31);
  const bp::Tensor x = bp::randn({5, 3}, gen, bp::f64), target = bp::rand({5, 2}, gen, bp::f64);
  const bp::Shape shapes[] = {{4, 3}, {4}, {2, 4}, {2}};
  bp::Tensors params, direction;
  for (const bp::Shape& s : shapes) {
    params.push_back(bp::randn(s, gen, bp::f64).requires_grad_());
    direction.push_back(bp::randn(s, gen, bp::f64));
  }
  auto loss_of = [&](const bp::Tensors& p) {
    const bp::Tensor h = bp::sigmoid(bp::linear(x, p[0], p[1]));
    const bp::Tensor out = bp::sigmoid(bp::linear(h, p[2], p[3]));
    return bp::mean(bp::pow(out - target, 2.0)) * 0.5;
  };
  // Hv = d/dtheta <dL/dtheta, v>, by differentiating the recorded gradient.
  const bp::Tensors g = bp::grad({loss_of(params)}, params, {.create_graph = true});
  bp::Tensor gv = bp::scalar(0.0, bp::f64);
  for (std::size_t i = 0; i < g.size(); ++i) gv = gv + bp::sum(g[i] * direction[i]);
  const bp::Tensors hv = bp::grad({gv}, params);
  // The same by central differences of the gradient along v.
  const double eps = 1e-5;
  auto gradient_at = [&](double t) {
    bp::Tensors moved;
    for (std::size_t i = 0; i < params.size(); ++i)
      moved.push_back((params[i].detach() + direction[i] * t).detach().requires_grad_());
    return bp::grad({loss_of(moved)}, moved);
  };
  const bp::Tensors plus = gradient_at(eps), minus = gradient_at(-eps);
  double largest = 0;
  for (std::size_t i = 0; i < params.size(); ++i)
    for (std::int64_t k = 0; k < params[i].numel(); ++k) {
      const double numeric = (plus[i].flat(k) - minus[i].flat(k)) / (2 * eps);
      largest = std::max(largest, std::abs(numeric));
      EXPECT_NEAR(hv[i].flat(k), numeric, 1e-7 + 1e-5 * std::abs(numeric))
          << "parameter " << i << " element " << k;
    }
  EXPECT_GT(largest, 1e-3) << "a test of something non-trivial";
}

// ---- the graph's lifetime ---------------------------------------------------------------------------------

TEST(RetainGraph, WalkingAGraphTwiceNeedsRetainGraph) {
  bp::Tensor x = leaf({1.0, 2.0});
  const bp::Tensor y = bp::sum(bp::exp(x));
  y.backward({}, /*retain_graph=*/true);
  EXPECT_FALSE(y.grad_fn()->released());
  y.backward({}, /*retain_graph=*/true);
  y.backward();  // the last walk frees the saved tensors
  EXPECT_TRUE(y.grad_fn()->released());
  EXPECT_NEAR(x.grad().at({1}), 3 * std::exp(2.0), 1e-12);
  EXPECT_THAT([&] { y.backward(); },
              ThrowsMessage<bp::AutogradError>(
                  AllOf(HasSubstr("second time"), HasSubstr("'sum'"), HasSubstr("retain_graph"))));
  EXPECT_THAT([&] { bp::grad({y}, {x}); }, ThrowsMessage<bp::AutogradError>(HasSubstr("second time")));
}

TEST(RetainGraph, ReleasedNodesRunNoMoreAndFreeWhatTheyKept) {
  bp::Tensor x = bp::ones({1000}, bp::f64).requires_grad_();
  bp::Tensor y = bp::sum(bp::exp(bp::exp(x)));
  const auto before = bp::memory_stats().live_bytes;
  y.backward();
  const auto after = bp::memory_stats().live_bytes;
  // The inner exp's saved output (8000 bytes) is freed by the walk; x.grad (8000 bytes) is new.
  EXPECT_LE(after, before) << before << " -> " << after;
}

TEST(VersionCounter, ChangingASavedInputInPlaceIsReported) {
  bp::Tensor x = leaf({1.0, 2.0});
  bp::Tensor b = bp::tensor({3.0, 4.0}, bp::f64);
  const bp::Tensor y = bp::sum(x * b);  // mul keeps b for dL/dx = dy * b
  b.fill_(0.0);
  EXPECT_THAT([&] { y.backward(); },
              ThrowsMessage<bp::AutogradError>(AllOf(HasSubstr("'mul'"), HasSubstr("modified in place"),
                                                     HasSubstr("version 0 -> 1"), HasSubstr("Clone"))));
}

TEST(VersionCounter, ChangingASavedOutputInPlaceIsReported) {
  bp::Tensor x = leaf({1.0, 2.0});
  bp::Tensor e = bp::exp(x);  // exp keeps its output
  const bp::Tensor y = bp::sum(e);
  {
    bp::NoGradGuard guard;
    e.mul_(2.0);
  }
  EXPECT_THAT([&] { y.backward(); },
              ThrowsMessage<bp::AutogradError>(AllOf(HasSubstr("'exp'"), HasSubstr("in place"))));
}

TEST(VersionCounter, ChangingATensorNoBackwardReadsIsAllowed) {
  bp::Tensor x = leaf({1.0, 2.0});
  bp::Tensor b = bp::tensor({3.0, 4.0}, bp::f64);
  const bp::Tensor y = bp::sum(x + b);  // add's backward does not read its inputs
  b.fill_(0.0);
  y.backward();
  EXPECT_EQ(x.grad().to_vector(), (std::vector<double>{1, 1}));
}

// ---- leaves, modes, views ---------------------------------------------------------------------------------

TEST(Leaves, RequiresGradOnANonLeafIsAnError) {
  bp::Tensor x = leaf({1.0});
  bp::Tensor y = bp::exp(x);
  EXPECT_FALSE(y.is_leaf());
  EXPECT_THAT([&] { y.requires_grad_(); },
              ThrowsMessage<bp::AutogradError>(
                  AllOf(HasSubstr("only leaf tensors"), HasSubstr("'exp'"), HasSubstr("detach()"))));
  bp::Tensor d = y.detach();
  d.requires_grad_();  // the suggested way out works
  EXPECT_TRUE(d.requires_grad());
  bp::Tensor z = bp::zeros({2}).requires_grad_();
  z.requires_grad_(false);
  EXPECT_FALSE(z.requires_grad());
}

TEST(Modes, NoGradGuardRecordsNothingAndRestoresTheMode) {
  bp::Tensor x = leaf({1.0, 2.0});
  EXPECT_TRUE(bp::GradMode::is_enabled());
  {
    bp::NoGradGuard guard;
    EXPECT_FALSE(bp::GradMode::is_enabled());
    const bp::Tensor y = bp::sum(bp::exp(x) * x);
    EXPECT_FALSE(y.requires_grad());
    EXPECT_EQ(y.grad_fn(), nullptr);
    EXPECT_THAT([&] { y.backward(); }, ThrowsMessage<bp::AutogradError>(HasSubstr("NoGradGuard")));
    {
      bp::GradModeGuard on(true);  // recording can be switched back on inside
      EXPECT_NE(bp::exp(x).grad_fn(), nullptr);
      { bp::NoGradGuard nested; }
      EXPECT_TRUE(bp::GradMode::is_enabled()) << "a nested guard restores the mode it found";
    }
    EXPECT_FALSE(bp::GradMode::is_enabled());
  }
  EXPECT_TRUE(bp::GradMode::is_enabled());
}

TEST(Views, DetachSharesElementsButNotHistory) {
  bp::Tensor x = leaf({3.0});
  const bp::Tensor d = x.detach();
  EXPECT_EQ(d.storage(), x.storage());
  EXPECT_FALSE(d.requires_grad());
  EXPECT_EQ(d.grad_fn(), nullptr);
  bp::sum(x * x.detach()).backward();  // d(x c)/dx = c with c = x held constant: 3, not 2x = 6
  EXPECT_DOUBLE_EQ(x.grad().item(), 3.0);
}

TEST(Views, RetainGradKeepsANonLeafsGradient) {
  bp::Tensor x = leaf({1.0, -2.0});
  bp::Tensor h = x * 2.0;
  bp::Tensor other = x * 3.0;
  h.retain_grad();
  const bp::Tensor loss = bp::sum(h * h) + bp::sum(other);
  loss.backward();
  EXPECT_EQ(h.grad().to_vector(), (std::vector<double>{4, -8}));  // d(h^2)/dh = 2h
  EXPECT_FALSE(other.grad().defined()) << "only when asked";
  EXPECT_EQ(x.grad().to_vector(), (std::vector<double>{11, -13}));  // 2h * 2 + 3
}

TEST(GradFunction, AllowUnusedAndTheErrorsOfGrad) {
  bp::Tensor x = leaf({1.0}), unused = leaf({5.0});
  const bp::Tensor y = bp::sum(x * x);
  EXPECT_THAT(
      [&] {
        bp::grad({y}, {x, unused}, {.retain_graph = true});
      },
      ThrowsMessage<bp::AutogradError>(AllOf(HasSubstr("input 1"), HasSubstr("allow_unused"))));
  const bp::Tensors g = bp::grad({y}, {x, unused}, {.retain_graph = true, .allow_unused = true});
  EXPECT_DOUBLE_EQ(g[0].item(), 2.0);
  EXPECT_FALSE(g[1].defined());
  const bp::Tensor constant = bp::tensor({1.0}, bp::f64);
  EXPECT_THAT([&] { bp::grad({y}, {constant}); },
              ThrowsMessage<bp::AutogradError>(AllOf(HasSubstr("input 0"), HasSubstr("requires_grad_()"))));
}

TEST(GradFunction, GradWithRespectToAnIntermediate) {
  bp::Tensor x = leaf({0.5});
  const bp::Tensor h = bp::exp(x);
  const bp::Tensor y = bp::sum(h * h);
  const bp::Tensors g = bp::grad({y}, {h, x});
  EXPECT_NEAR(g[0].item(), 2 * std::exp(0.5), 1e-12);
  EXPECT_NEAR(g[1].item(), 2 * std::exp(1.0), 1e-12);
}

TEST(Errors, BackwardArgumentsAreChecked) {
  bp::Tensor x = bp::ones({2, 2}, bp::f64).requires_grad_();
  const bp::Tensor y = bp::exp(x);
  EXPECT_THAT([&] { y.backward(); },
              ThrowsMessage<bp::AutogradError>(AllOf(HasSubstr("[2, 2]"), HasSubstr("grad_outputs"))));
  EXPECT_THAT([&] { y.backward(bp::ones({4}, bp::f64)); },
              ThrowsMessage<bp::AutogradError>(AllOf(HasSubstr("[4]"), HasSubstr("[2, 2]"))));
  EXPECT_THAT([&] { y.backward(bp::ones({2, 2})); }, ThrowsMessage<bp::AutogradError>(HasSubstr("f32")));
  EXPECT_THAT(
      [&] {
        bp::backward({y}, {bp::ones({2, 2}, bp::f64), bp::ones({2, 2}, bp::f64)});
      },
      ThrowsMessage<bp::AutogradError>(HasSubstr("1 outputs but 2 output gradients")));
  EXPECT_THAT([] { bp::ones({1}).backward(); },
              ThrowsMessage<bp::AutogradError>(HasSubstr("does not require grad")));
}
