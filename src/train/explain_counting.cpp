// Why backpropagation is dynamic programming, counted. Each function computes one derivative twice: by the
// naive chain rule, which expands every repeated subexpression and every path of the graph, with a counter on
// each evaluation and multiplication; and with the memoising engine, whose own counters (Node::times_run(),
// last_backward_stats()) say how much work it did. Both results must agree.
#include <algorithm>
#include <backprop/autograd.hpp>
#include <backprop/explain.hpp>
#include <backprop/generator.hpp>
#include <backprop/ops.hpp>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

namespace backprop::explain {

namespace {

double sigma(double z) {
  return 1.0 / (1.0 + std::exp(-z));
}

// f = sigma and f' = sigma (1 - sigma), each call counted.
struct CountingSigmoid {
  std::uint64_t f_calls = 0;
  std::uint64_t fprime_calls = 0;
  double f(double x) {
    ++f_calls;
    return sigma(x);
  }
  double fprime(double x) {
    ++fprime_calls;
    const double s = sigma(x);
    return s * (1.0 - s);
  }
};

constexpr int kMaxChain = 4096;

}  // namespace

ChainCount count_chain(int n, double w) {
  BP_CHECK(n >= 1 && n <= kMaxChain, ValueError, "explain: chain length ", n, " is outside [1, ", kMaxChain,
           "] (the naive count grows as n^2 / 2)");
  BP_CHECK(std::isfinite(w), ValueError, "explain: chain start w = ", w, " is not a finite number");
  ChainCount c;
  c.n = n;
  c.w = w;

  // Naive: z = f^n(w), and dz/dw = f'(f^(n-1)(w)) ... f'(f(w)) f'(w), where each f^k(w) in the product is
  // evaluated again from w, as the expanded formula reads: the repeated subexpressions are not shared.
  CountingSigmoid naive;
  double z = w;
  for (int i = 0; i < n; ++i) z = naive.f(z);
  double product = 0.0;
  for (int k = 0; k < n; ++k) {
    double u = w;
    for (int i = 0; i < k; ++i) u = naive.f(u);
    const double factor = naive.fprime(u);
    if (k == 0) {
      product = factor;
    } else {
      product *= factor;
      ++c.naive_mul;
    }
  }
  c.naive_f = naive.f_calls;
  c.naive_fprime = naive.fprime_calls;
  c.naive_grad = product;

  // The engine: the forward pass evaluates f once per application and records it; the backward pass runs each
  // recorded node once, reusing the stored output (sigmoid's backward is dy * y (1 - y)).
  Tensor wt = tensor({w}, f64).requires_grad_();
  Tensor zt = wt;
  for (int i = 0; i < n; ++i) zt = sigmoid(zt);
  c.engine_grad = grad({zt}, {wt})[0].item();
  const BackwardStats stats = last_backward_stats();
  c.engine_forward_nodes = stats.nodes_in_graph;
  c.engine_backward_runs = stats.nodes_run;
  c.each_node_ran_once = true;
  std::uint64_t seen = 0;
  for (const Node* node = zt.grad_fn().get(); node != nullptr;) {
    ++seen;
    c.each_node_ran_once = c.each_node_ran_once && node->times_run() == 1;
    node = node->next().empty() ? nullptr : node->next()[0].node.get();
  }
  c.each_node_ran_once = c.each_node_ran_once && seen == static_cast<std::uint64_t>(n);
  return c;
}

LayeredCount count_layered(int width, int depth, std::uint64_t seed) {
  BP_CHECK(width >= 1 && depth >= 1, ValueError,
           "explain: a layered network needs width >= 1 and depth >= 1, got ", "width ", width, ", depth ",
           depth);
  std::uint64_t paths = 1;
  for (int l = 0; l < depth; ++l) {
    BP_CHECK(paths <= kMaxPaths / static_cast<std::uint64_t>(width), ValueError, "explain: width ", width,
             ", depth ", depth, " has ", width, "^", depth, " paths, more than the ", kMaxPaths,
             " this enumerates");
    paths *= static_cast<std::uint64_t>(width);
  }
  LayeredCount c;
  c.width = width;
  c.depth = depth;
  c.paths = paths;
  const auto W = static_cast<std::size_t>(width);
  const auto L = static_cast<std::size_t>(depth);

  // Draw the network: layer l maps W units to W units, the last one to 1.
  Generator gen(seed);
  std::vector<double> x(W);
  for (double& v : x) v = gen.uniform(-1.0, 1.0);
  std::vector<Matrix> weights;
  for (std::size_t l = 0; l < L; ++l) {
    const std::int64_t rows = l + 1 == L ? 1 : width;
    Matrix m{rows, width, std::vector<double>(static_cast<std::size_t>(rows) * W)};
    for (double& v : m.values) v = gen.normal() / std::sqrt(static_cast<double>(width));
    weights.push_back(std::move(m));
  }

  // Forward pass, and the local derivative of each edge: h^l_j = sigma(sum_k W^l_jk h^(l-1)_k), so
  // dh^l_j/dh^(l-1)_k = sigma'(z^l_j) W^l_jk. Both methods below start from these.
  std::vector<Matrix> jac;
  std::vector<double> h = x;
  for (const Matrix& w : weights) {
    Matrix j{w.rows, w.cols, std::vector<double>(w.values.size())};
    std::vector<double> next(static_cast<std::size_t>(w.rows));
    for (std::int64_t r = 0; r < w.rows; ++r) {
      double z = 0.0;
      for (std::int64_t k = 0; k < w.cols; ++k) z += w(r, k) * h[static_cast<std::size_t>(k)];
      const double s = sigma(z);
      for (std::int64_t k = 0; k < w.cols; ++k) j(r, k) = s * (1.0 - s) * w(r, k);
      next[static_cast<std::size_t>(r)] = s;
    }
    h = std::move(next);
    jac.push_back(std::move(j));
  }

  // Naive: every path x_i -> j_1 -> ... -> j_(L-1) -> y, its edges multiplied from dy/dy = 1.
  c.naive_grad.assign(W, 0.0);
  std::vector<std::int64_t> hidden(L - 1, 0);  // j_1 .. j_(L-1), counted like an odometer
  for (std::size_t i = 0; i < W; ++i) {
    std::fill(hidden.begin(), hidden.end(), 0);
    for (std::uint64_t p = 0; p < paths / W; ++p) {
      double product = 1.0;
      std::int64_t from = static_cast<std::int64_t>(i);
      for (std::size_t l = 0; l < L; ++l) {
        const std::int64_t to = l + 1 == L ? 0 : hidden[l];
        product *= jac[l](to, from);
        ++c.naive_mul;
        from = to;
      }
      c.naive_grad[i] += product;
      ++c.naive_add;
      for (std::size_t d = hidden.size(); d-- > 0;) {  // next path
        if (++hidden[d] < width) break;
        hidden[d] = 0;
      }
    }
  }

  // Memoised: g^l = dy/dh^l is computed once per layer and shared by every path through layer l.
  std::vector<double> g = {1.0};
  for (std::size_t l = L; l-- > 0;) {
    const Matrix& j = jac[l];
    std::vector<double> below(static_cast<std::size_t>(j.cols), 0.0);
    for (std::int64_t r = 0; r < j.rows; ++r)
      for (std::int64_t k = 0; k < j.cols; ++k) {
        below[static_cast<std::size_t>(k)] += g[static_cast<std::size_t>(r)] * j(r, k);
        ++c.dp_mul;
      }
    g = std::move(below);
  }
  c.dp_grad = g;

  // The engine on the same network.
  Tensor xt = from_vector(x, {width, 1}, f64).requires_grad_();
  Tensor ht = xt;
  for (const Matrix& w : weights) ht = sigmoid(matmul(from_vector(w.values, {w.rows, w.cols}, f64), ht));
  c.engine_grad = grad({ht}, {xt})[0].to_vector();
  c.engine_backward_runs = last_backward_stats().nodes_run;
  for (std::size_t i = 0; i < W; ++i) {
    c.max_abs_diff = std::max({c.max_abs_diff, std::abs(c.naive_grad[i] - c.engine_grad[i]),
                               std::abs(c.dp_grad[i] - c.engine_grad[i])});
    if (std::isnan(c.naive_grad[i] - c.engine_grad[i]))
      c.max_abs_diff = std::numeric_limits<double>::infinity();
  }
  return c;
}

std::string to_json(const ChainCount& c) {
  nlohmann::json out = {{"n", c.n},
                        {"w", c.w},
                        {"naive_f", c.naive_f},
                        {"naive_fprime", c.naive_fprime},
                        {"naive_mul", c.naive_mul},
                        {"naive_grad", c.naive_grad},
                        {"engine_forward_nodes", c.engine_forward_nodes},
                        {"engine_backward_runs", c.engine_backward_runs},
                        {"each_node_ran_once", c.each_node_ran_once},
                        {"engine_grad", c.engine_grad}};
  return out.dump();
}

std::string to_json(const LayeredCount& c) {
  nlohmann::json out = {{"width", c.width},
                        {"depth", c.depth},
                        {"paths", c.paths},
                        {"naive_mul", c.naive_mul},
                        {"naive_add", c.naive_add},
                        {"dp_mul", c.dp_mul},
                        {"engine_backward_runs", c.engine_backward_runs},
                        {"naive_grad", c.naive_grad},
                        {"dp_grad", c.dp_grad},
                        {"engine_grad", c.engine_grad},
                        {"max_abs_diff", c.max_abs_diff}};
  return out.dump();
}

}  // namespace backprop::explain
