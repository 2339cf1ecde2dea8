// The core of `backprop explain`: the hand computation against the engine and against finite differences, the
// dynamic-programming counts against their formulas, and the DOT drawing of the graphs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/explain.hpp>
#include <backprop/graphviz.hpp>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace bp = backprop;
namespace ex = backprop::explain;
using ::testing::HasSubstr;

namespace {

// Numbers verify() compares for a network with these sizes: per layer z, a, delta, dC/db and the new b
// (n each) and dC/dW and the new W (n m each); plus C before and after the update.
std::int64_t numbers_compared(const std::vector<std::int64_t>& sizes) {
  std::int64_t total = 2;
  for (std::size_t l = 1; l < sizes.size(); ++l) total += 5 * sizes[l] + 2 * sizes[l] * sizes[l - 1];
  return total;
}

// C = 1/2 sum (y - a^L)^2 for the example's weights, in the test's own loops.
double cost_of(const ex::WorkedExample& e, const std::vector<ex::Matrix>& ws,
               const std::vector<std::vector<double>>& bs) {
  std::vector<double> a = e.x;
  for (std::size_t l = 0; l < ws.size(); ++l) {
    std::vector<double> next(static_cast<std::size_t>(ws[l].rows));
    for (std::int64_t j = 0; j < ws[l].rows; ++j) {
      double z = bs[l][static_cast<std::size_t>(j)];
      for (std::int64_t k = 0; k < ws[l].cols; ++k) z += ws[l](j, k) * a[static_cast<std::size_t>(k)];
      next[static_cast<std::size_t>(j)] = 1.0 / (1.0 + std::exp(-z));
    }
    a = next;
  }
  double c = 0;
  for (std::size_t j = 0; j < a.size(); ++j) c += 0.5 * (e.y[j] - a[j]) * (e.y[j] - a[j]);
  return c;
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

}  // namespace

TEST(WorkedExample, EveryHandNumberAgreesWithTheEngine) {
  for (const std::vector<std::int64_t>& sizes : {std::vector<std::int64_t>{2, 3, 2}, {3, 4, 4, 2}, {1, 1}}) {
    for (std::uint64_t seed : {1u, 7u, 12345u}) {
      const ex::WorkedExample e = ex::worked_example({.sizes = sizes, .lr = 0.5, .seed = seed});
      const ex::Verification v = ex::verify(e);
      EXPECT_TRUE(v.agree()) << "seed " << seed << ": worst " << v.worst << " off by " << v.max_abs_diff;
      EXPECT_LE(v.max_abs_diff, 1e-12) << "seed " << seed;
      EXPECT_EQ(v.numbers, numbers_compared(sizes)) << "seed " << seed;
    }
  }
}

TEST(WorkedExample, GradientsMatchFiniteDifferencesOfTheCost) {
  const ex::WorkedExample e = ex::worked_example({.sizes = {2, 3, 2}, .seed = 3});
  std::vector<ex::Matrix> ws;
  std::vector<std::vector<double>> bs;
  for (const ex::LayerTrace& t : e.layers) {
    ws.push_back(t.weight);
    bs.push_back(t.bias);
  }
  EXPECT_NEAR(cost_of(e, ws, bs), e.cost, 1e-15);
  const double h = 1e-6;
  for (std::size_t l = 0; l < ws.size(); ++l) {
    for (std::size_t i = 0; i < ws[l].values.size(); ++i) {
      auto plus = ws, minus = ws;
      plus[l].values[i] += h;
      minus[l].values[i] -= h;
      const double numeric = (cost_of(e, plus, bs) - cost_of(e, minus, bs)) / (2 * h);
      EXPECT_NEAR(e.layers[l].grad_weight.values[i], numeric, 1e-9) << "layer " << l + 1 << " weight " << i;
    }
    for (std::size_t j = 0; j < bs[l].size(); ++j) {
      auto plus = bs, minus = bs;
      plus[l][j] += h;
      minus[l][j] -= h;
      const double numeric = (cost_of(e, ws, plus) - cost_of(e, ws, minus)) / (2 * h);
      EXPECT_NEAR(e.layers[l].grad_bias[j], numeric, 1e-9) << "layer " << l + 1 << " bias " << j;
    }
  }
}

TEST(WorkedExample, UpdateFollowsTheGradientAndLowersTheCost) {
  const ex::WorkedExample e = ex::worked_example({.lr = 0.25, .seed = 9});
  for (const ex::LayerTrace& t : e.layers)
    for (std::size_t i = 0; i < t.weight.values.size(); ++i)
      EXPECT_DOUBLE_EQ(t.new_weight.values[i], t.weight.values[i] - 0.25 * t.grad_weight.values[i]);
  EXPECT_LT(e.cost_after, e.cost);
  // Output error: delta^L = (a^L - y) (.) a^L (1 - a^L).
  const ex::LayerTrace& out = e.layers.back();
  for (std::size_t j = 0; j < out.a.size(); ++j)
    EXPECT_DOUBLE_EQ(out.delta[j], (out.a[j] - e.y[j]) * out.a[j] * (1 - out.a[j]));
}

TEST(WorkedExample, GivenInputAndTargetAreUsed) {
  const ex::WorkedExample e = ex::worked_example({.sizes = {2, 2}, .x = {0.05, 0.1}, .y = {0.01, 0.99}});
  EXPECT_EQ(e.x, (std::vector<double>{0.05, 0.1}));
  EXPECT_EQ(e.y, (std::vector<double>{0.01, 0.99}));
  EXPECT_TRUE(ex::verify(e).agree());
}

TEST(WorkedExample, VerifyCatchesAWrongNumber) {
  ex::WorkedExample e = ex::worked_example();
  e.layers[0].grad_weight(1, 0) += 1e-9;
  const ex::Verification v = ex::verify(e);
  EXPECT_FALSE(v.agree());
  EXPECT_EQ(v.disagreements, 1);
  EXPECT_EQ(v.worst, "dC/dW^1[1][0]");
  EXPECT_NEAR(v.max_abs_diff, 1e-9, 1e-12);

  ex::WorkedExample broken = ex::worked_example();
  broken.layers[1].delta.pop_back();
  try {
    ex::verify(broken);
    FAIL() << "expected ValueError";
  } catch (const bp::ValueError& err) {
    EXPECT_THAT(err.what(), HasSubstr("layer 2"));
  }
}

TEST(WorkedExample, RejectsBadOptions) {
  EXPECT_THAT([] { ex::worked_example({.sizes = {2}}); },
              ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("at least 2 entries")));
  EXPECT_THAT(
      [] {
        ex::worked_example({.sizes = {2, 0, 1}});
      },
      ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("sizes[1] = 0 is outside [1, 64]")));
  EXPECT_THAT([] { ex::worked_example({.lr = -1}); },
              ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("learning rate -1")));
  EXPECT_THAT(
      [] {
        ex::worked_example({.sizes = {2, 3, 2}, .x = {1, 2, 3}});
      },
      ::testing::ThrowsMessage<bp::ValueError>(
          HasSubstr("x has 3 values but the network's input layer has 2")));
  EXPECT_THAT(
      [] {
        ex::worked_example({.y = {0.5, NAN}});
      },
      ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("y[1] = nan is not a finite number")));
}

TEST(ChainCount, NaiveCountsFollowTheFormulaEngineRunsEachNodeOnce) {
  for (int n : {1, 2, 5, 17, 64}) {
    const ex::ChainCount c = ex::count_chain(n, 0.3);
    const auto un = static_cast<std::uint64_t>(n);
    EXPECT_EQ(c.naive_f, un * (un + 1) / 2) << "n = " << n;
    EXPECT_EQ(c.naive_fprime, un) << "n = " << n;
    EXPECT_EQ(c.naive_mul, un - 1) << "n = " << n;
    EXPECT_EQ(c.engine_forward_nodes, un) << "n = " << n;
    EXPECT_EQ(c.engine_backward_runs, un) << "n = " << n;
    EXPECT_TRUE(c.each_node_ran_once) << "n = " << n;
    EXPECT_NEAR(c.naive_grad, c.engine_grad, 1e-14 + 1e-12 * std::abs(c.engine_grad)) << "n = " << n;
    // And both are the derivative: central difference of z(w) = f^n(w).
    auto z = [n](double w) {
      for (int i = 0; i < n; ++i) w = 1.0 / (1.0 + std::exp(-w));
      return w;
    };
    EXPECT_NEAR(c.engine_grad, (z(0.3 + 1e-6) - z(0.3 - 1e-6)) / 2e-6, 1e-8) << "n = " << n;
  }
  EXPECT_THAT([] { ex::count_chain(0); },
              ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("chain length 0")));
}

TEST(LayeredCount, PathEnumerationAgreesWithTheEngine) {
  for (auto [width, depth] :
       std::vector<std::pair<int, int>>{{1, 1}, {2, 1}, {2, 3}, {3, 4}, {4, 3}, {2, 10}}) {
    const ex::LayeredCount c = ex::count_layered(width, depth, 5);
    std::uint64_t paths = 1;
    for (int i = 0; i < depth; ++i) paths *= static_cast<std::uint64_t>(width);
    const auto w = static_cast<std::uint64_t>(width), d = static_cast<std::uint64_t>(depth);
    EXPECT_EQ(c.paths, paths) << width << "x" << depth;
    EXPECT_EQ(c.naive_mul, d * paths) << width << "x" << depth;
    EXPECT_EQ(c.naive_add, paths) << width << "x" << depth;
    EXPECT_EQ(c.dp_mul, w + (d - 1) * w * w) << width << "x" << depth;
    EXPECT_EQ(c.engine_backward_runs, 2 * d)
        << width << "x" << depth;  // one matmul and one sigmoid per layer
    ASSERT_EQ(c.naive_grad.size(), w);
    ASSERT_EQ(c.engine_grad.size(), w);
    for (std::size_t i = 0; i < w; ++i) {
      EXPECT_NEAR(c.naive_grad[i], c.engine_grad[i], 1e-15 + 1e-12 * std::abs(c.engine_grad[i]));
      EXPECT_NEAR(c.dp_grad[i], c.engine_grad[i], 1e-15 + 1e-12 * std::abs(c.engine_grad[i]));
    }
    EXPECT_LE(c.max_abs_diff, 1e-14);
    double norm = 0;
    for (double g : c.engine_grad) norm += std::abs(g);
    EXPECT_GT(norm, 0.0) << "a zero gradient would make the comparison empty";
  }
  EXPECT_THAT([] { ex::count_layered(16, 7); },
              ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("16^7 paths")));
  EXPECT_THAT([] { ex::count_layered(0, 3); },
              ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("width 0")));
}

TEST(Graphviz, WorkedExampleShowsForwardAndBackwardOps) {
  const std::string dot = ex::worked_example_dot(ex::worked_example());
  EXPECT_EQ(dot.rfind("digraph backprop {", 0), 0u);
  EXPECT_EQ(count(dot, "{"), count(dot, "}"));
  for (const char* op :
       {"matmul", "add", "sigmoid", "sub", "pow", "sum", "mul_scalar", "rsub_scalar", "cluster_forward",
        "cluster_backward", "\"W^1 [3, 2]\"", "\"b^2 [2, 1]\"", "\"dC/dW^1\"", "\"dC/db^2\""})
    EXPECT_THAT(dot, HasSubstr(op));
  // Symbol-to-symbol: sigmoid's backward, dy * y (1 - y), is built from the forward sigmoid's output, so an
  // edge runs from a forward sigmoid box into the backward cluster.
  const std::string backward =
      dot.substr(dot.find("cluster_backward"), dot.find("leaf0 [") - dot.find("cluster_backward"));
  bool forward_feeds_backward = false;
  for (std::size_t at = dot.find("label=\"sigmoid"); at != std::string::npos;
       at = dot.find("label=\"sigmoid", at + 1)) {
    const std::size_t line = dot.rfind('\n', at) + 1;
    const std::string id = dot.substr(line + 4, dot.find(' ', line + 4) - line - 4);
    if (backward.find(id + " ") != std::string::npos) continue;  // a backward sigmoid, if any
    for (std::size_t e = dot.find(id + " -> "); e != std::string::npos; e = dot.find(id + " -> ", e + 1)) {
      const std::size_t to = e + id.size() + 4;
      const std::string target = dot.substr(to, dot.find(' ', to) - to);
      forward_feeds_backward =
          forward_feeds_backward || backward.find("    " + target + " [") != std::string::npos;
    }
  }
  EXPECT_TRUE(forward_feeds_backward) << dot;
}

TEST(Graphviz, DrawsEachNodeOnceWithEdgesAlongTheData) {
  bp::Tensor w = bp::tensor({0.5}, bp::f64).requires_grad_();
  bp::Tensor h = bp::sigmoid(w);
  bp::Tensor z = bp::mul(h, h);  // h is used twice: one node, two edges
  const std::string dot = bp::to_dot({z}, {"z"}, {.leaves = {{"w", w}}});
  EXPECT_EQ(count(dot, "[shape=box"), 2u);
  EXPECT_EQ(count(dot, " -> "), 4u);  // w -> sigmoid, sigmoid -> mul (twice), mul -> z
  EXPECT_EQ(count(dot, "op0 -> op1"), 2u);
  EXPECT_THAT(dot, HasSubstr("leaf0 -> op0"));
  EXPECT_THAT(dot, HasSubstr("op1 -> root0"));
  EXPECT_THAT(dot, HasSubstr("label=\"w [1]\""));
  EXPECT_THAT(dot, Not(HasSubstr("cluster_backward")));
}

TEST(Graphviz, DeepGraphIsWalkedWithoutRecursion) {
  bp::Tensor w = bp::tensor({0.1}, bp::f64).requires_grad_();
  bp::Tensor z = w;
  for (int i = 0; i < 5000; ++i) z = bp::add(z, 1e-4);
  const std::string dot = bp::to_dot({z}, {"z"});
  EXPECT_EQ(count(dot, "[shape=box"), 5000u);
}

TEST(Graphviz, RejectsMismatchedLabelsAndUndefinedRoots) {
  bp::Tensor w = bp::tensor({0.5}, bp::f64).requires_grad_();
  EXPECT_THAT(
      [&] {
        bp::to_dot({w, w}, {"a"});
      },
      ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("2 roots but 1 labels")));
  EXPECT_THAT([&] { bp::to_dot({bp::Tensor()}, {"g"}); },
              ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("root 0 (\"g\") is an undefined tensor")));
}

TEST(ExplainJson, CarriesTheNumbers) {
  const ex::WorkedExample e = ex::worked_example();
  const auto j = nlohmann::json::parse(ex::to_json(e, ex::verify(e)));
  EXPECT_EQ(j["layers"].size(), 2u);
  EXPECT_DOUBLE_EQ(j["layers"][1]["delta"][0].get<double>(), e.layers[1].delta[0]);
  EXPECT_TRUE(j["verification"]["agree"].get<bool>());
  const auto c = nlohmann::json::parse(ex::to_json(ex::count_chain(4)));
  EXPECT_EQ(c["naive_f"].get<int>(), 10);
  const auto p = nlohmann::json::parse(ex::to_json(ex::count_layered(2, 2)));
  EXPECT_EQ(p["paths"].get<int>(), 4);
}

// The tables of `explain --repeated N`: rows n = 1..8, then doubling, then N; layered rows stop at 2^20 paths.
TEST(DynamicProgramming, RowsGrowAndAgree) {
  const ex::DynamicProgramming d = ex::dynamic_programming(20);
  std::vector<int> ns;
  for (const ex::ChainCount& c : d.chain) ns.push_back(c.n);
  EXPECT_EQ(ns, (std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8, 16, 20}));
  EXPECT_TRUE(d.agree);
  EXPECT_TRUE(d.truncated);  // 3^16 paths are over 2^20: the width-3 rows stop at depth 8
  EXPECT_EQ(d.layered.back().width, 3);
  EXPECT_EQ(d.layered.back().depth, 8);
  const std::string text = ex::to_text(d);
  EXPECT_THAT(text, HasSubstr("Why backpropagation is dynamic programming"));
  EXPECT_THAT(text, HasSubstr("Check: the naive and memoised derivatives agree in every row"));
  EXPECT_THAT(text, HasSubstr("deeper rows left out"));
  const auto j = nlohmann::json::parse(ex::to_json(d));
  EXPECT_EQ(j["chain"].size(), d.chain.size());
  EXPECT_TRUE(j["agree"].get<bool>());
  EXPECT_THROW(ex::dynamic_programming(0), bp::ValueError);
  EXPECT_THROW(ex::dynamic_programming(ex::kMaxRepeated + 1), bp::ValueError);
}

TEST(WorkedExample, TextShowsEveryStepAndTheCheck) {
  const ex::WorkedExample e = ex::worked_example();
  const std::string text = ex::to_text(e, ex::verify(e));
  for (const char* part : {"I. Forward pass", "II. Output error", "III. Gradients", "IV. Update",
                           "Check: all 51 numbers agree with the autograd engine"})
    EXPECT_THAT(text, HasSubstr(part));
}

TEST(ExplainConv, HandComputationAgreesWithTheEngineForEveryShape) {
  for (const ex::ConvExampleOptions& o :
       {ex::ConvExampleOptions{}, ex::ConvExampleOptions{.channels = 2, .size = 5, .filters = 3, .stride = 2},
        ex::ConvExampleOptions{.size = 4, .kernel = 3, .padding = 1, .seed = 7}}) {
    const ex::ConvExample e = ex::conv_example(o);
    EXPECT_EQ(e.out, (o.size + 2 * o.padding - o.kernel) / o.stride + 1);
    const ex::Verification v = ex::verify(e);
    EXPECT_TRUE(v.agree()) << v.worst << " " << v.max_abs_diff;
    EXPECT_EQ(v.numbers, static_cast<std::int64_t>(1 + 3 * e.z.size() + e.weight.size() + e.bias.size() +
                                                   e.x.size() + 1));
    EXPECT_LT(e.cost_after, e.cost);  // one small step downhill
  }
}

TEST(ExplainConv, OnePositionByHand) {
  // z[0, 0, 0] is the first filter on the top-left window plus its bias; delta there is (a - y) a (1 - a).
  const ex::ConvExample e = ex::conv_example();
  double z = e.bias[0];
  for (int p = 0; p < 3; ++p)
    for (int q = 0; q < 3; ++q)
      z += e.weight[static_cast<std::size_t>(p * 3 + q)] * e.x[static_cast<std::size_t>(p * 4 + q)];
  EXPECT_NEAR(e.z[0], z, 1e-15);
  const double a = 1 / (1 + std::exp(-z));
  EXPECT_NEAR(e.delta[0], (a - e.y[0]) * a * (1 - a), 1e-15);
  // dC/db[0] is the sum of the first filter's deltas over its 2 x 2 output positions.
  EXPECT_NEAR(e.grad_bias[0], e.delta[0] + e.delta[1] + e.delta[2] + e.delta[3], 1e-15);
  // The top-left input pixel is seen only by the top-left weight of each filter at the first position.
  EXPECT_NEAR(e.grad_input[0], e.delta[0] * e.weight[0] + e.delta[4] * e.weight[9], 1e-15);
}

TEST(ExplainConv, OptionsOutOfRangeAreValueErrors) {
  EXPECT_THROW(ex::conv_example({.channels = 0}), bp::ValueError);
  EXPECT_THROW(ex::conv_example({.size = 2, .kernel = 3}), bp::ValueError);
  EXPECT_THROW(ex::conv_example({.kernel = 3, .padding = 3}), bp::ValueError);
  EXPECT_THROW(ex::conv_example({.lr = 0}), bp::ValueError);
}
