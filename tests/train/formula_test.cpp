// fit()'s l1 / l2 penalties, gradient clipping and gradient-flow records against values computed here by
// hand: one full-batch update of plain gradient descent on a 3-4-2 tanh network in float64, whose forward
// pass and delta rule (docs/train.md) are written out below with loops, independently of the library's ops.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <backprop/backprop.hpp>
#include <backprop/train.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "util/require.hpp"

namespace bp = backprop;

namespace {

using Matrix = std::vector<std::vector<double>>;

Matrix to_matrix(const bp::Tensor& t) {
  Matrix m(static_cast<std::size_t>(t.size(0)), std::vector<double>(static_cast<std::size_t>(t.size(1))));
  for (std::int64_t r = 0; r < t.size(0); ++r)
    for (std::int64_t c = 0; c < t.size(1); ++c) m[r][c] = t.at({r, c});
  return m;
}

std::vector<double> to_vector(const bp::Tensor& t) {
  return t.to_vector();
}

// The network's parameters in the order of named_parameters(): W1 [4, 3], b1 [4], W2 [2, 4], b2 [2].
struct Params {
  Matrix w1;
  std::vector<double> b1;
  Matrix w2;
  std::vector<double> b2;
};

Params read(bp::nn::Sequential& net) {
  const auto p = net.parameters();
  return {to_matrix(p[0]), to_vector(p[1]), to_matrix(p[2]), to_vector(p[3])};
}

const double kX[6][3] = {{0.5, -1.0, 0.25}, {-0.3, 0.8, 1.1}, {1.2, 0.1, -0.7},
                         {-0.9, -0.4, 0.6}, {0.2, 0.9, -0.2}, {0.7, -0.6, 0.9}};
const int kY[6] = {0, 1, 1, 0, 1, 0};

bp::data::TensorDataset data() {
  std::vector<double> x, y;
  for (int i = 0; i < 6; ++i) {
    for (double v : kX[i]) x.push_back(v);
    y.push_back(kY[i]);
  }
  bp::data::TensorDataset d;
  d.features = bp::from_vector(x, {6, 3}, bp::f64);
  d.targets = bp::from_vector(y, {6}, bp::f64);
  d.num_classes = 2;
  return d;
}

// Gradients of the mean cross-entropy over the 6 examples (no penalty), by the delta rule:
//   h = tanh(W1 x + b1), z = W2 h + b2, delta2 = (softmax(z) - one_hot(y)) / N,
//   delta1 = (W2^T delta2) (.) (1 - h^2), dW2 = sum delta2 h^T, dW1 = sum delta1 x^T.
Params cross_entropy_gradients(const Params& p) {
  Params g{Matrix(4, std::vector<double>(3)), std::vector<double>(4), Matrix(2, std::vector<double>(4)),
           std::vector<double>(2)};
  const double n = 6;
  for (int i = 0; i < 6; ++i) {
    double h[4], z[2];
    for (int j = 0; j < 4; ++j) {
      double s = p.b1[j];
      for (int k = 0; k < 3; ++k) s += p.w1[j][k] * kX[i][k];
      h[j] = std::tanh(s);
    }
    for (int c = 0; c < 2; ++c) {
      z[c] = p.b2[c];
      for (int j = 0; j < 4; ++j) z[c] += p.w2[c][j] * h[j];
    }
    const double top = std::max(z[0], z[1]);
    const double e0 = std::exp(z[0] - top), e1 = std::exp(z[1] - top);
    const double delta2[2] = {(e0 / (e0 + e1) - (kY[i] == 0)) / n, (e1 / (e0 + e1) - (kY[i] == 1)) / n};
    for (int c = 0; c < 2; ++c) {
      g.b2[c] += delta2[c];
      for (int j = 0; j < 4; ++j) g.w2[c][j] += delta2[c] * h[j];
    }
    for (int j = 0; j < 4; ++j) {
      const double delta1 = (p.w2[0][j] * delta2[0] + p.w2[1][j] * delta2[1]) * (1 - h[j] * h[j]);
      g.b1[j] += delta1;
      for (int k = 0; k < 3; ++k) g.w1[j][k] += delta1 * kX[i][k];
    }
  }
  return g;
}

double sign(double v) {
  return v > 0 ? 1.0 : (v < 0 ? -1.0 : 0.0);
}

double norm(const Matrix& m) {
  double s = 0;
  for (const auto& row : m)
    for (double v : row) s += v * v;
  return std::sqrt(s);
}

struct Case {
  double l1 = 0, l2 = 0, clip = 0;
};

// The hand-computed update: the penalties' gradients added to the weights' (l1 sign(W), l2 W; biases are not
// penalised), then every gradient scaled by max_norm / (||g|| + 1e-6) when the norm of all of them exceeds
// max_norm (torch.nn.utils.clip_grad_norm_'s rule).
Params expected_step(const Params& p, const Case& c, double lr, Params* final_grad) {
  Params g = cross_entropy_gradients(p);
  for (int j = 0; j < 4; ++j)
    for (int k = 0; k < 3; ++k) g.w1[j][k] += c.l1 * sign(p.w1[j][k]) + c.l2 * p.w1[j][k];
  for (int cl = 0; cl < 2; ++cl)
    for (int j = 0; j < 4; ++j) g.w2[cl][j] += c.l1 * sign(p.w2[cl][j]) + c.l2 * p.w2[cl][j];
  double total = norm(g.w1) * norm(g.w1) + norm(g.w2) * norm(g.w2);
  for (double v : g.b1) total += v * v;
  for (double v : g.b2) total += v * v;
  total = std::sqrt(total);
  const double scale = c.clip > 0 && total > c.clip ? c.clip / (total + 1e-6) : 1.0;  // as PyTorch's
  if (scale != 1.0) std::printf("[ clip ] gradient norm %.6f clipped to %.3f\n", total, c.clip);
  Params q = p;
  auto update = [&](double& w, double& grad) {
    grad *= scale;
    w -= lr * grad;
  };
  for (int j = 0; j < 4; ++j) {
    update(q.b1[j], g.b1[j]);
    for (int k = 0; k < 3; ++k) update(q.w1[j][k], g.w1[j][k]);
  }
  for (int cl = 0; cl < 2; ++cl) {
    update(q.b2[cl], g.b2[cl]);
    for (int j = 0; j < 4; ++j) update(q.w2[cl][j], g.w2[cl][j]);
  }
  if (final_grad) *final_grad = g;
  return q;
}

void expect_near(const Params& a, const Params& b, double tol) {
  for (int j = 0; j < 4; ++j) {
    EXPECT_NEAR(a.b1[j], b.b1[j], tol) << "b1[" << j << "]";
    for (int k = 0; k < 3; ++k) EXPECT_NEAR(a.w1[j][k], b.w1[j][k], tol) << "W1[" << j << "][" << k << "]";
  }
  for (int c = 0; c < 2; ++c) {
    EXPECT_NEAR(a.b2[c], b.b2[c], tol) << "b2[" << c << "]";
    for (int j = 0; j < 4; ++j) EXPECT_NEAR(a.w2[c][j], b.w2[c][j], tol) << "W2[" << c << "][" << j << "]";
  }
}

bp::nn::Sequential network() {
  bp::Generator gen(7);
  const bp::nn::LinearOptions o{.nonlinearity = bp::nn::Nonlinearity::tanh, .dtype = bp::f64};
  bp::nn::Sequential net{bp::nn::Linear(3, 4, gen, o), bp::nn::Tanh(), bp::nn::Linear(4, 2, gen, o)};
  // Non-zero biases, so that a penalty wrongly applied to them would show.
  bp::NoGradGuard guard;
  auto p = net.parameters();
  p[1].copy_(bp::from_vector(std::vector<double>{0.1, -0.2, 0.05, 0.3}, {4}, bp::f64));
  p[3].copy_(bp::from_vector(std::vector<double>{-0.15, 0.25}, {2}, bp::f64));
  return net;
}

constexpr double kLr = 0.3;

// One full-batch update by fit() with the case's options: the parameters after it and its gradient-flow
// record.
struct Outcome {
  Params before, after;
  bp::train::History history;
};

Outcome fit_once(const Case& c) {
  bp::nn::Sequential net = network();
  Outcome o;
  o.before = read(net);
  bp::optim::SGD opt(net.parameters(), {.lr = kLr});
  const auto d = data();
  o.history = bp::train::fit(net, bp::loss::CrossEntropy{}, opt, d,
                             {.epochs = 1,
                              .full_batch = true,
                              .l1 = c.l1,
                              .l2 = c.l2,
                              .clip_grad_norm = c.clip,
                              .grad_flow_every = 1});
  o.after = read(net);
  return o;
}

// fit()'s update against the hand-computed one.
void check_one_update(const Case& c) {
  const Outcome o = fit_once(c);
  Params grad;
  const Params expected = expected_step(o.before, c, kLr, &grad);
  expect_near(o.after, expected, 1e-12);
  // The gradient-flow record of that update: ||dC/dW|| of the final (penalised, clipped) gradient and ||W||
  // before the step, layer by layer.
  ASSERT_EQ(o.history.grad_flow.size(), 1u);
  const auto& layers = o.history.grad_flow[0].layers;
  ASSERT_EQ(layers.size(), 2u);
  EXPECT_EQ(layers[0].name, "0.weight");
  EXPECT_EQ(layers[1].name, "2.weight");
  EXPECT_NEAR(layers[0].grad_norm, norm(grad.w1), 1e-12);
  EXPECT_NEAR(layers[1].grad_norm, norm(grad.w2), 1e-12);
  EXPECT_NEAR(layers[0].weight_norm, norm(o.before.w1), 1e-12);
  EXPECT_NEAR(layers[1].weight_norm, norm(o.before.w2), 1e-12);
  EXPECT_EQ(layers[0].activation, "tanh");
}

const std::vector<Case> kCases = {
    {}, {.l2 = 0.05}, {.l1 = 0.02}, {.clip = 0.05}, {.l1 = 0.01, .l2 = 0.1, .clip = 0.05}};

bool python_with_torch() {
  return std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0;
}

Params from_json(const nlohmann::json& j) {
  return {j.at("w1").get<Matrix>(), j.at("b1").get<std::vector<double>>(), j.at("w2").get<Matrix>(),
          j.at("b2").get<std::vector<double>>()};
}

}  // namespace

TEST(Formulas, PlainUpdateMatchesTheDeltaRule) {
  check_one_update({});
}

TEST(Formulas, L2AddsL2TimesTheWeightsToTheirGradient) {
  check_one_update({.l2 = 0.05});
}

TEST(Formulas, L1AddsL1TimesTheSignOfTheWeights) {
  check_one_update({.l1 = 0.02});
}

TEST(Formulas, ClippingScalesEveryGradientToTheMaxNorm) {
  // The gradient here has a norm of about 0.7 (printed): 0.05 clips it, 10 leaves it alone.
  check_one_update({.clip = 0.05});
  check_one_update({.clip = 10});
}

TEST(Formulas, PenaltiesThenClipping) {
  check_one_update({.l1 = 0.01, .l2 = 0.1, .clip = 0.05});
}

TEST(Formulas, TheSameUpdatesInPyTorch) {
  // formula_torch.py makes each update with torch.optim.SGD, F.cross_entropy and clip_grad_norm_ from the
  // same starting point: fit() must agree with PyTorch as it agrees with the hand-written rule above.
  REQUIRE_INSTALLED(python_with_torch(), "python3-torch", "/usr/bin/python3 with torch");
  bp::nn::Sequential net = network();
  const Params start = read(net);
  nlohmann::json spec = {{"w1", start.w1}, {"b1", start.b1}, {"w2", start.w2}, {"b2", start.b2}, {"lr", kLr}};
  for (int i = 0; i < 6; ++i) {
    spec["x"].push_back(std::vector<double>(std::begin(kX[i]), std::end(kX[i])));
    spec["y"].push_back(kY[i]);
  }
  for (const Case& c : kCases) spec["cases"].push_back({{"l1", c.l1}, {"l2", c.l2}, {"clip", c.clip}});
  const std::string in = ::testing::TempDir() + "formula_torch." + std::to_string(::getpid()) + ".json";
  std::ofstream(in) << spec.dump();
  const std::string cmd =
      "/usr/bin/python3 '" + std::string(BACKPROP_SOURCE_DIR) + "/tests/train/formula_torch.py' '" + in + "'";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string text;
  char buffer[4096];
  while (const std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) text.append(buffer, n);
  ASSERT_EQ(::pclose(pipe), 0) << cmd;
  std::remove(in.c_str());
  const auto torch = nlohmann::json::parse(text);
  ASSERT_EQ(torch["cases"].size(), kCases.size());
  for (std::size_t k = 0; k < kCases.size(); ++k) {
    SCOPED_TRACE("case " + std::to_string(k) + ": l1 " + std::to_string(kCases[k].l1) + ", l2 " +
                 std::to_string(kCases[k].l2) + ", clip " + std::to_string(kCases[k].clip));
    const Outcome o = fit_once(kCases[k]);
    expect_near(o.after, from_json(torch["cases"][k]), 1e-12);
    const auto& layers = o.history.grad_flow.at(0).layers;
    EXPECT_NEAR(layers.at(0).grad_norm, torch["cases"][k]["grad_norms"][0].get<double>(), 1e-12);
    EXPECT_NEAR(layers.at(1).grad_norm, torch["cases"][k]["grad_norms"][1].get<double>(), 1e-12);
  }
}
