// `backprop explain` — one step of backpropagation, by hand, checked against the autograd engine.
//
// Prints, for a 2-3-2 sigmoid network with the quadratic cost C = 1/2 sum (y - a)^2 on one example, the
// forward values z^l and a^l, the output error delta^L = (a^L - y) (.) sigma'(z^L), each backpropagated
// delta^l = (W^(l+1))^T delta^(l+1) (.) sigma'(z^l), the gradients dC/dW^l = delta^l (a^(l-1))^T and
// dC/db^l = delta^l, and the weights after w <- w - eta dC/dw; then says whether every number agrees with the
// engine. --graph FILE writes the forward and symbol-to-symbol backward graphs as Graphviz DOT (and FILE's
// .svg when the `dot` program is installed). --conv does the same for one convolution layer (2 filters of 3x3
// over a 4x4 image: the deltas at every position, dC/dW as the input correlated with them, dC/dx as their
// transposed convolution). --repeated N instead prints the naive chain rule's work against
// the memoising engine's, as N grows. The computation lives in the library (backprop/explain.hpp); this is
// the printing layer.
//
//   ExplainArgs args{.graph = "step.dot", .lr = 0.5, .seed = 1};
//   int code = run_explain(args, std::cout);   // 0 when every number agreed
#pragma once

#include <cstdint>
#include <ostream>
#include <string>

struct ExplainArgs {
  std::string graph;  // DOT output path, or empty for none
  int repeated = 0;   // > 0: show the dynamic-programming counts up to this N instead of the worked example
  double lr = 0.5;    // eta of the update
  std::uint64_t seed = 1;
  bool conv = false;   // --conv: one convolution layer's step instead of the dense network's
  bool json = false;   // one JSON object on `out` instead of text
  bool force = false;  // --force: --graph (and its .svg) may replace a file of another kind
};

/// Runs `backprop explain` and returns its exit code: 0 success; 1 the hand computation and the engine
/// disagreed (a bug); 2 a bad argument (repeated, lr or seed outside the ranges of config::command_flags());
/// 2 also when --graph would replace a file of another kind without --force (or is a directory);
/// 3 the graph file could not be written. Errors are printed to std::cerr, naming the flag and what was
/// expected.
int run_explain(const ExplainArgs& args, std::ostream& out);
