// backprop/explain.hpp — backpropagation worked out by hand, and checked against the autograd engine.
//
// This is the computational core of `backprop explain`. worked_example() runs one training step of a small
// sigmoid network with the quadratic cost C = 1/2 sum_j (y_j - a^L_j)^2 in plain loops over doubles, keeping
// every intermediate number of the delta rule; verify() rebuilds the same network from ops in float64, asks
// the engine for the same numbers and compares them one by one. count_chain() and count_layered() show why
// backpropagation is dynamic programming: they compute a derivative both by expanding the chain rule naively
// (every repeated subexpression recomputed, every path of the graph walked) and with the memoising engine,
// and count the work each takes.
//
// Example:
//   namespace ex = bp::explain;
//   ex::WorkedExample step = ex::worked_example({.sizes = {2, 3, 2}, .lr = 0.5, .seed = 1});
//   ex::Verification check = ex::verify(step);          // check.agree: every number matches to 1e-12
//   std::string dot = ex::worked_example_dot(step);      // forward + symbol-to-symbol backward graph
//   ex::ChainCount c = ex::count_chain(8);               // naive: 36 evaluations of f; engine: 8 + 8
//   ex::LayeredCount p = ex::count_layered(3, 4);        // 81 paths x 4 multiplications vs 3 + 3 x 9
//   std::cout << ex::to_text(step, check);               // the delta rule's steps, as `backprop explain`
//   ex::ConvExample conv = ex::conv_example({.size = 4, .filters = 2, .kernel = 3});
//   std::cout << ex::to_text(conv, ex::verify(conv));   // `backprop explain --conv`
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace backprop::explain {

/// A dense row-major matrix of doubles (rows x cols), for the hand computation.
struct Matrix {
  std::int64_t rows = 0;
  std::int64_t cols = 0;
  std::vector<double> values;  // rows * cols entries, row by row

  double& operator()(std::int64_t r, std::int64_t c) {
    return values[static_cast<std::size_t>(r * cols + c)];
  }
  double operator()(std::int64_t r, std::int64_t c) const {
    return values[static_cast<std::size_t>(r * cols + c)];
  }
};

struct WorkedExampleOptions {
  /// Units per layer, input first: {2, 3, 2} is 2 inputs, 3 hidden sigmoid units, 2 sigmoid outputs.
  std::vector<std::int64_t> sizes = {2, 3, 2};
  /// Learning rate eta of the update w <- w - eta dC/dw.
  double lr = 0.5;
  /// Seed of the Generator that draws the weights (and x, y when they are left empty).
  std::uint64_t seed = 1;
  /// The input x = a^0 (sizes.front() values); empty: drawn from the seed, in [0, 1), to two decimals.
  std::vector<double> x;
  /// The target y (sizes.back() values); empty: drawn from the seed, in [0, 1), to two decimals.
  std::vector<double> y;
};

/// Everything the delta rule computes for layer l (1-based; layer 0 is the input).
struct LayerTrace {
  Matrix weight;                    // W^l [n_l x n_(l-1)], before the update (drawn in [-1, 1), two decimals)
  std::vector<double> bias;         // b^l [n_l], before the update (drawn in [-0.5, 0.5), two decimals)
  std::vector<double> z;            // z^l = W^l a^(l-1) + b^l
  std::vector<double> a;            // a^l = sigma(z^l)
  std::vector<double> dC_da;        // dC/da^l: a^L - y for the output layer, (W^(l+1))^T delta^(l+1) below it
  std::vector<double> sigma_prime;  // sigma'(z^l) = a^l (1 - a^l)
  std::vector<double> delta;        // delta^l = dC/dz^l = dC/da^l (.) sigma'(z^l)
  Matrix grad_weight;               // dC/dW^l = delta^l (a^(l-1))^T
  std::vector<double> grad_bias;    // dC/db^l = delta^l
  Matrix new_weight;                // W^l - eta dC/dW^l
  std::vector<double> new_bias;     // b^l - eta dC/db^l
};

/// One step of gradient descent on one example, every number computed by hand in plain loops.
struct WorkedExample {
  std::vector<std::int64_t> sizes;
  double lr = 0.0;
  std::uint64_t seed = 0;
  std::vector<double> x;
  std::vector<double> y;
  std::vector<LayerTrace> layers;  // layers[0] is layer 1
  double cost = 0.0;               // C before the update
  double cost_after = 0.0;         // C on the same example with the updated weights
};

/// Runs the forward pass, the delta rule and the update for the options' network, by hand.
/// Throws ValueError when sizes has fewer than 2 entries or an entry outside [1, 64], when lr is not a finite
/// positive number, or when x or y is non-empty with the wrong length or a non-finite value.
WorkedExample worked_example(const WorkedExampleOptions& options = {});

/// The outcome of comparing the hand computation with the engine, number by number.
struct Verification {
  std::int64_t numbers = 0;        // how many numbers were compared
  double tolerance = 1e-12;        // the largest absolute difference allowed
  double max_abs_diff = 0.0;       // the largest absolute difference found
  std::string worst;               // which number it was, e.g. "dC/dW^1[2][0]"
  std::int64_t disagreements = 0;  // numbers farther apart than the tolerance
  bool agree() const { return disagreements == 0; }
};

/// Rebuilds the network of `example` from ops in float64 (z^l = matmul(W^l, a^(l-1)) + b^l, a^l =
/// sigmoid(z^l), C = 0.5 sum((y - a^L)^2)), gets dC/dz^l, dC/dW^l, dC/db^l from backprop::grad and compares
/// with the hand values: z^l, a^l, delta^l, the gradients, the updated weights and biases, C before and
/// after. A NaN counts as a disagreement. Throws ValueError when the example's arrays do not match its sizes.
Verification verify(const WorkedExample& example, double tolerance = 1e-12);

/// The worked example's network as Graphviz DOT: the forward graph of C and the graph that
/// grad(C, {W^l, b^l}, {.create_graph = true}) records (the symbol-to-symbol backward pass), with the
/// parameters and gradients labelled. See backprop/graphviz.hpp for the drawing conventions.
std::string worked_example_dot(const WorkedExample& example);

// ---- a convolution layer ----------------------------------------------------------------------------------

struct ConvExampleOptions {
  std::int64_t channels = 1;  // input channels, 1 to 4
  std::int64_t size = 4;      // the input image is size x size, kernel to 12
  std::int64_t filters = 2;   // output channels, 1 to 4
  std::int64_t kernel = 3;    // each filter is kernel x kernel
  std::int64_t stride = 1;
  std::int64_t padding = 0;  // zeros around the input, < kernel
  double lr = 0.5;
  std::uint64_t seed = 1;  // draws x and y in [0, 1), weights in [-1, 1), biases in [-0.5, 0.5), two decimals
};

/// One step of gradient descent through one convolution layer with sigmoid outputs and the quadratic cost, on
/// one image: every number by hand in plain loops. Arrays are row-major: x [channels, size, size], weight
/// [filters, channels, kernel, kernel], z, a, y, delta [filters, out, out].
struct ConvExample {
  ConvExampleOptions options;
  std::int64_t out = 0;  // output size: (size + 2 padding - kernel) / stride + 1
  std::vector<double> x, weight, bias, y;
  std::vector<double> z, a;
  std::vector<double> delta;        // dC/dz = (a - y) (.) sigma'(z), one per output position
  std::vector<double> grad_weight;  // dC/dW: the input correlated with the deltas
  std::vector<double> grad_bias;    // dC/db: the sum of each filter's deltas
  std::vector<double> grad_input;   // dC/dx: the transposed convolution of the deltas with the filters
  std::vector<double> new_weight, new_bias;
  double cost = 0.0, cost_after = 0.0;
};

/// Throws ValueError naming the option when one is out of its range (see ConvExampleOptions).
ConvExample conv_example(const ConvExampleOptions& options = {});
/// Rebuilds the step from ops in float64 (conv2d, sigmoid, the cost), asks the engine for dC/dz, dC/dW, dC/db
/// and dC/dx and compares every number with the hand values, and C after the update.
Verification verify(const ConvExample& example, double tolerance = 1e-12);
/// What `backprop explain --conv` prints: the planes of every step, then the engine check.
std::string to_text(const ConvExample& example, const Verification& verification);
std::string to_json(const ConvExample& example, const Verification& verification);

// ---- dynamic programming ----------------------------------------------------------------------------------

/// The derivative of z = f(f(...f(w))) (n applications of f = sigmoid) with respect to w, two ways.
struct ChainCount {
  int n = 0;
  double w = 0.0;
  // Naive chain rule: dz/dw = prod_(k=0..n-1) f'(f^k(w)), each f^k(w) recomputed from w, plus z itself.
  std::uint64_t naive_f = 0;       // evaluations of f: n (for z) + sum_k k = n (n + 1) / 2
  std::uint64_t naive_fprime = 0;  // evaluations of f': n
  std::uint64_t naive_mul = 0;     // multiplications: n - 1
  double naive_grad = 0.0;
  // The engine: the forward pass records n nodes; backward runs each once, on the stored value.
  std::uint64_t engine_forward_nodes =
      0;  // nodes recorded by the forward pass (last_backward_stats().nodes_in_graph)
  std::uint64_t engine_backward_runs = 0;  // backward functions run (last_backward_stats().nodes_run)
  bool each_node_ran_once = false;         // Node::times_run() == 1 for every node of the chain
  double engine_grad = 0.0;
};

/// Counts both ways for n applications of sigmoid starting at w. Throws ValueError unless 1 <= n <= 4096 (the
/// naive side grows as n^2 / 2) and w is finite.
ChainCount count_chain(int n, double w = 0.5);

/// The gradient of the output of a layered sigmoid network with respect to its inputs, two ways.
/// The network: h^0 = x (width inputs), h^l = sigma(W^l h^(l-1)) for l = 1..depth, every layer width units
/// wide except the last, which has one unit y. The local derivative of an edge k -> j of layer l is J^l_jk =
/// sigma'(z^l_j) W^l_jk; both methods start from these (width^2 (depth - 1) + width of them).
struct LayeredCount {
  int width = 0;
  int depth = 0;
  // Naive: dy/dx_i = sum over every path i -> j_1 -> ... -> y of the product of its edges' J.
  std::uint64_t paths = 0;      // width^depth input-output paths
  std::uint64_t naive_mul = 0;  // depth multiplications per path (from dy/dy = 1): depth x paths
  std::uint64_t naive_add = 0;  // additions of path products into the gradient
  // Memoised (the delta rule): g^(l-1)_k = sum_j g^l_j J^l_jk, one pass from the output down.
  std::uint64_t dp_mul = 0;                // width + (depth - 1) width^2
  std::uint64_t engine_backward_runs = 0;  // the engine's backward functions run for the same gradient
  std::vector<double> naive_grad;          // dy/dx by path enumeration
  std::vector<double> dp_grad;             // dy/dx by the delta rule in plain loops
  std::vector<double> engine_grad;         // dy/dx from backprop::grad
  double max_abs_diff = 0.0;               // largest |naive_grad - engine_grad| or |dp_grad - engine_grad|
};

/// The largest number of paths count_layered() enumerates.
inline constexpr std::uint64_t kMaxPaths = std::uint64_t{1} << 24;

/// Counts both ways for a network drawn from `seed` (weights normal with standard deviation 1/sqrt(width)).
/// Throws ValueError unless width >= 1, depth >= 1 and width^depth <= kMaxPaths (the message gives the
/// count).
LayeredCount count_layered(int width, int depth, std::uint64_t seed = 1);

/// The largest n of dynamic_programming() (`backprop explain --repeated N`).
inline constexpr int kMaxRepeated = 4096;

/// The tables of `backprop explain --repeated N`: count_chain() for n = 1, 2, ..., 8, then doubling, then N;
/// count_layered() for widths 2 and 3 and the same depths while the naive side enumerates at most 2^20 paths.
struct DynamicProgramming {
  std::vector<ChainCount> chain;
  std::vector<LayeredCount> layered;
  bool truncated = false;  // deeper layered rows were left out (too many paths)
  bool agree = true;       // naive and memoised derivatives agree in every row (to 1e-12, relative)
};
/// Throws ValueError unless 1 <= n <= kMaxRepeated.
DynamicProgramming dynamic_programming(int n, std::uint64_t seed = 1);

// ---- text and machine-readable output ------------------------------------------------------------------------------

/// JSON objects (one line each) with every field of the structs above, for `backprop explain --json`.
std::string to_json(const WorkedExample& example, const Verification& verification);
std::string to_json(const ChainCount& count);
std::string to_json(const LayeredCount& count);
std::string to_json(const DynamicProgramming& tables);
/// What `backprop explain` prints: the delta rule's steps with every number, then the engine check.
std::string to_text(const WorkedExample& example, const Verification& verification);
/// The two dynamic-programming tables and their check.
std::string to_text(const DynamicProgramming& tables);

}  // namespace backprop::explain
