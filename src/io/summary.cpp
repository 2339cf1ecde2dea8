// A Keras-style model summary: the module tree walked beside the built network, with one forward pass of
// zeros for the output shapes.
#include <algorithm>
#include <backprop/autograd.hpp>
#include <backprop/io/module_tree.hpp>
#include <backprop/io/summary.hpp>
#include <backprop/nn/sequential.hpp>
#include <backprop/ops.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace backprop::io {

namespace {

using json = nlohmann::json;

// Adds the rows of `module` (its tree node `node`) and its children. `input` is what the module receives, or
// null where it is not known: a Sequential feeds its children in turn; the children of other containers get
// no shape.
void walk(const json& node, nn::Module& module, const std::string& name, int depth, const Tensor* input,
          std::vector<SummaryRow>& rows) {
  if (node.contains("same_as")) {
    rows.push_back({name, "(same as " + node["same_as"].get<std::string>() + ")", "-", depth, 0});
    return;
  }
  SummaryRow row{name, node.value("type", ""), "-", depth, module.num_parameters()};
  if (input) row.output_shape = to_string(module.forward(*input).shape());
  rows.push_back(row);
  const auto children = module.named_children();
  const json& nodes = node["children"];
  const bool chain = input && dynamic_cast<nn::Sequential*>(&module) != nullptr;
  Tensor x = input ? *input : Tensor();
  for (std::size_t i = 0; i < children.size() && i < nodes.size(); ++i) {
    const std::string child = name.empty() ? children[i].first : name + "." + children[i].first;
    walk(nodes[i], *children[i].second, child, depth + 1, chain ? &x : nullptr, rows);
    if (chain) x = children[i].second->forward(x);
  }
}

// Restores a module's training mode when the summary's forward pass ends, however it ends.
struct EvalMode {
  nn::Module& module;
  bool was_training;
  explicit EvalMode(nn::Module& m) : module(m), was_training(m.is_training()) { module.eval(); }
  ~EvalMode() { module.train(was_training); }
  EvalMode(const EvalMode&) = delete;
  EvalMode& operator=(const EvalMode&) = delete;
};

}  // namespace

std::string with_commas(std::int64_t n) {
  std::string s = std::to_string(n);
  const int first = n < 0 ? 1 : 0;
  for (int i = static_cast<int>(s.size()) - 3; i > first; i -= 3) s.insert(static_cast<std::size_t>(i), ",");
  return s;
}

ModelSummary summary(nn::Module& model, const Shape& input_shape) {
  ModelSummary s;
  s.trainable_parameters = model.num_parameters();
  for (const auto& [_, t] : model.named_buffers()) s.buffer_elements += t.numel();
  const json tree = json::parse(module_tree(model));
  if (input_shape.empty()) {
    walk(tree, model, "", 0, nullptr, s.rows);
    return s;
  }
  Shape shape{1};
  shape.insert(shape.end(), input_shape.begin(), input_shape.end());
  const Tensors params = model.parameters();
  const Tensor x = zeros(shape, params.empty() ? f32 : params.front().dtype());
  NoGradGuard no_grad;
  EvalMode eval(model);
  walk(tree, model, "", 0, &x, s.rows);
  return s;
}

std::string ModelSummary::table() const {
  std::size_t width = 6;
  for (const SummaryRow& r : rows)
    width = std::max(width, 2 * static_cast<std::size_t>(r.depth) + (r.name.empty() ? 7 : r.name.size()));
  std::string out;
  const auto add = [&](const std::string& layer, const std::string& type, const std::string& shape,
                       const std::string& params) {
    const char* format = "  %-*s  %-14s %-16s %12s\n";
    const int w = static_cast<int>(width);
    std::string line(static_cast<std::size_t>(std::snprintf(nullptr, 0, format, w, layer.c_str(),
                                                            type.c_str(), shape.c_str(), params.c_str())),
                     '\0');
    std::snprintf(line.data(), line.size() + 1, format, w, layer.c_str(), type.c_str(), shape.c_str(),
                  params.c_str());
    out += line;
  };
  add("Layer", "Type", "Output shape", "Params");
  for (const SummaryRow& r : rows)
    add(std::string(2 * static_cast<std::size_t>(r.depth), ' ') + (r.name.empty() ? "(model)" : r.name),
        r.type, r.output_shape, with_commas(r.parameters));
  out += "  total params " + with_commas(trainable_parameters + buffer_elements) + ", trainable " +
         with_commas(trainable_parameters) + ", non-trainable " + with_commas(buffer_elements) +
         " (buffers: running statistics, counters)\n";
  return out;
}

}  // namespace backprop::io
