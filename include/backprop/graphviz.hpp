// backprop/graphviz.hpp — draw a recorded autograd graph as Graphviz DOT.
//
// to_dot() walks the graph behind some tensors (each Node's next() edges, iteratively, never recursing) and
// writes one DOT digraph: a box per recorded op (its name and sequence number), an ellipse per leaf tensor
// that requires grad, and a note per root with its label. Arrows follow the data: from an op's inputs to the
// op. With create_graph, the gradients grad() returns are themselves recorded, so passing them as roots draws
// the symbol-to-symbol backward graph, joined to the forward nodes whose outputs it reads.
//
// Example:
//   bp::Tensor w = bp::tensor({0.5}, bp::f64).requires_grad_();
//   bp::Tensor z = bp::sigmoid(bp::sigmoid(w));
//   std::uint64_t first_backward = z.grad_fn()->sequence_nr() + 1;
//   bp::Tensors dz = bp::grad({z}, {w}, {.create_graph = true});
//   std::string dot = bp::to_dot({z, dz[0]}, {"z", "dz/dw"},
//                                {.leaves = {{"w", w}}, .backward_from = first_backward});
//   // render with: dot -Tsvg graph.dot -o graph.svg
//   if (bp::dot_installed()) {
//     std::string svg = bp::render_svg(dot);           // empty when `dot` failed
//     std::string where = bp::svg_path("graph.dot");   // "graph.svg", beside the DOT file
//   }
#pragma once

#include <backprop/tensor.hpp>
#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

namespace backprop {

struct DotOptions {
  /// Names for leaf tensors (parameters, inputs); an unnamed leaf is drawn as "leaf" and its shape.
  std::vector<std::pair<std::string, Tensor>> leaves;
  /// Ops with sequence_nr() >= backward_from are drawn as the backward graph (grouped, in another colour);
  /// the rest as the forward graph. The default draws everything as forward.
  std::uint64_t backward_from = std::numeric_limits<std::uint64_t>::max();
  /// A title written at the top of the drawing (empty: none).
  std::string title;
};

/// The graph that produced `roots`, as a DOT digraph. labels[i] names roots[i] (e.g. "C", "dC/dW1").
/// Every node reachable from the roots appears once, ordered by sequence number, so the same graph always
/// gives the same text. Inputs that need no gradient (constants) are not drawn.
/// Throws ValueError when labels.size() != roots.size() or a root is undefined (naming its index).
std::string to_dot(const Tensors& roots, const std::vector<std::string>& labels);
std::string to_dot(const Tensors& roots, const std::vector<std::string>& labels, const DotOptions& options);

/// Whether Graphviz's `dot` program is installed: an executable `dot` in a directory of PATH (/usr/bin:/bin
/// when PATH is unset).
bool dot_installed();

/// `dot` text rendered to an SVG image by Graphviz (`dot -Tsvg`, run without a shell, found on PATH, reading
/// and writing temporary files). Empty when `dot` cannot be run, fails or exits with a non-zero status.
std::string render_svg(const std::string& dot);

/// Where the SVG of the DOT file `dot_path` goes: its ".dot" replaced by ".svg" ("graph.dot" ->
/// "graph.svg"), or ".svg" appended to any other name.
std::string svg_path(const std::string& dot_path);

}  // namespace backprop
