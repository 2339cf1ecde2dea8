// Graphviz DOT output of a recorded graph. The walk is an explicit stack over Node::next(), like the
// engine's, so a graph thousands of ops deep draws without recursion.
#include <algorithm>
#include <backprop/autograd.hpp>
#include <backprop/graphviz.hpp>
#include <sstream>
#include <unordered_map>
#include <unordered_set>

namespace backprop {

namespace {

std::string quoted(const std::string& text) {
  std::string out = "\"";
  for (char c : text) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

// Leaves are told apart by their TensorImpl; an expired leaf (its tensor destroyed) still gets one box.
struct LeafTable {
  std::unordered_map<const TensorImpl*, std::size_t> index;
  std::vector<std::string> labels;

  std::string id_of(const TensorImpl* impl, const Shape& shape, const DotOptions& options) {
    auto [it, inserted] = index.emplace(impl, labels.size());
    if (inserted) {
      std::string label = "leaf " + to_string(shape);
      for (const auto& [name, t] : options.leaves)
        if (t.defined() && t.impl() == impl) label = name + " " + to_string(shape);
      labels.push_back(label);
    }
    return "leaf" + std::to_string(it->second);
  }
};

}  // namespace

std::string to_dot(const Tensors& roots, const std::vector<std::string>& labels) {
  return to_dot(roots, labels, DotOptions{});
}

std::string to_dot(const Tensors& roots, const std::vector<std::string>& labels, const DotOptions& options) {
  BP_CHECK(labels.size() == roots.size(), ValueError, "to_dot: ", roots.size(), " roots but ", labels.size(),
           " labels; give one label per root");
  for (std::size_t i = 0; i < roots.size(); ++i)
    BP_CHECK(roots[i].defined(), ValueError, "to_dot: root ", i, " (\"", labels[i],
             "\") is an undefined tensor");

  // Discover every node reachable from the roots.
  std::vector<const Node*> nodes;
  {
    std::unordered_set<const Node*> seen;
    std::vector<const Node*> stack;
    for (const Tensor& r : roots)
      if (r.grad_fn() && seen.insert(r.grad_fn().get()).second) stack.push_back(r.grad_fn().get());
    while (!stack.empty()) {
      const Node* n = stack.back();
      stack.pop_back();
      nodes.push_back(n);
      for (const Node::Edge& e : n->next())
        if (e.node && seen.insert(e.node.get()).second) stack.push_back(e.node.get());
    }
  }
  std::sort(nodes.begin(), nodes.end(),
            [](const Node* a, const Node* b) { return a->sequence_nr() < b->sequence_nr(); });
  std::unordered_map<const Node*, std::string> id;
  for (std::size_t i = 0; i < nodes.size(); ++i) id[nodes[i]] = "op" + std::to_string(i);

  LeafTable leaves;
  std::ostringstream edges;
  for (const Node* n : nodes) {
    for (const Node::Edge& e : n->next()) {
      if (!e.active()) continue;  // a constant input: nothing flows back to it
      std::string from = e.node ? id[e.node.get()] : leaves.id_of(e.leaf.lock().get(), e.shape, options);
      edges << "  " << from << " -> " << id[n] << " [label=" << quoted(to_string(e.shape)) << "];\n";
    }
  }
  for (std::size_t i = 0; i < roots.size(); ++i) {
    const Tensor& r = roots[i];
    std::string from = r.grad_fn() ? id[r.grad_fn().get()] : leaves.id_of(r.impl(), r.shape(), options);
    edges << "  " << from << " -> root" << i << " [label=" << quoted(to_string(r.shape())) << "];\n";
  }

  std::ostringstream out;
  out << "digraph backprop {\n";
  out << "  graph [fontname=\"Helvetica\", rankdir=TB, nodesep=0.3, ranksep=0.35";
  if (!options.title.empty()) out << ", labelloc=t, label=" << quoted(options.title);
  out << "];\n";
  out << "  node [fontname=\"Helvetica\", fontsize=11];\n  edge [fontname=\"Helvetica\", fontsize=9, "
         "color=gray40];\n";
  auto write_ops = [&](bool backward) {
    for (const Node* n : nodes) {
      if ((n->sequence_nr() >= options.backward_from) != backward) continue;
      out << "    " << id[n]
          << " [shape=box, style=\"rounded,filled\", fillcolor=" << (backward ? "\"#fde2c8\"" : "\"#d6e6f5\"")
          << ", label=" << quoted(std::string(n->name()) + "\n#" + std::to_string(n->sequence_nr()))
          << "];\n";
    }
  };
  const bool split = options.backward_from != std::numeric_limits<std::uint64_t>::max();
  if (split) {
    out << "  subgraph cluster_forward {\n    label=\"forward pass\"; style=dashed; color=\"#4a78a8\";\n";
    write_ops(false);
    out << "  }\n  subgraph cluster_backward {\n    label=\"backward pass (recorded by create_graph)\"; "
           "style=dashed; color=\"#c8752a\";\n";
    write_ops(true);
    out << "  }\n";
  } else {
    write_ops(false);
  }
  for (std::size_t i = 0; i < leaves.labels.size(); ++i)
    out << "  leaf" << i
        << " [shape=ellipse, style=filled, fillcolor=\"#e3f1dc\", label=" << quoted(leaves.labels[i])
        << "];\n";
  for (std::size_t i = 0; i < roots.size(); ++i)
    out << "  root" << i << " [shape=note, style=filled, fillcolor=\"#fff6bf\", label=" << quoted(labels[i])
        << "];\n";
  out << edges.str() << "}\n";
  return out.str();
}

}  // namespace backprop
