// Gradient-flow diagnostics: how large each layer's weight gradient is, and how many of the units after it
// are saturated (sigmoid/tanh near their bounds, where sigma'(z) ~ 0) or dead (ReLU outputs 0 for the whole
// batch). Together these make the vanishing-gradient problem visible, layer by layer.
#include <backprop/ops.hpp>
#include <backprop/train.hpp>
#include <cmath>
#include <map>

namespace backprop::train {

namespace {

double l2_norm(const Tensor& t) {
  if (!t.defined()) return 0.0;
  double s = 0;
  for (double v : t.to_vector()) s += v * v;
  return std::sqrt(s);
}

const char* activation_name(const nn::Module& m) {
  if (dynamic_cast<const nn::Sigmoid*>(&m)) return "sigmoid";
  if (dynamic_cast<const nn::Tanh*>(&m)) return "tanh";
  if (dynamic_cast<const nn::ReLU*>(&m)) return "relu";
  if (dynamic_cast<const nn::LeakyReLU*>(&m)) return "leaky_relu";
  return nullptr;
}

bool has_weight(const nn::Module& m) {
  return dynamic_cast<const nn::Linear*>(&m) != nullptr ||
         dynamic_cast<const nn::DropConnect*>(&m) != nullptr;
}

/// Share of saturated entries of a sigmoid/tanh output.
double saturated(const Tensor& a, const std::string& kind) {
  std::int64_t count = 0;
  const std::vector<double> v = a.to_vector();
  for (double x : v) {
    if (kind == "sigmoid")
      count += x < 0.01 || x > 0.99;
    else
      count += std::abs(x) > 0.99;
  }
  return v.empty() ? 0.0 : static_cast<double>(count) / static_cast<double>(v.size());
}

/// Share of ReLU units (columns) that output 0 for every row of the batch.
double dead(const Tensor& a) {
  if (a.dim() != 2 || a.size(0) == 0) return 0.0;
  const std::int64_t rows = a.size(0), cols = a.size(1);
  std::int64_t dead_units = 0;
  const std::vector<double> v = a.to_vector();
  for (std::int64_t j = 0; j < cols; ++j) {
    bool alive = false;
    for (std::int64_t i = 0; i < rows && !alive; ++i) alive = v[static_cast<std::size_t>(i * cols + j)] > 0;
    dead_units += !alive;
  }
  return static_cast<double>(dead_units) / static_cast<double>(cols);
}

}  // namespace

GradFlowRecord measure_grad_flow(nn::Module& model, const Tensor& batch) {
  GradFlowRecord record;
  std::map<std::string, std::size_t> index_of;
  for (const auto& [name, p] : model.named_parameters()) {
    if (p.dim() < 2) continue;
    index_of[name] = record.layers.size();
    record.layers.push_back({.name = name, .grad_norm = l2_norm(p.grad()), .weight_norm = l2_norm(p)});
  }
  auto* seq = dynamic_cast<nn::Sequential*>(&model);
  if (!seq) return record;
  const bool was_training = model.is_training();
  model.eval();
  Tensors outputs;
  {
    NoGradGuard guard;
    outputs = seq->forward_all(batch);
  }
  model.train(was_training);
  for (std::size_t i = 0; i < seq->size(); ++i) {
    if (!has_weight(*(*seq)[i])) continue;
    auto it = index_of.find(std::to_string(i) + ".weight");
    if (it == index_of.end()) continue;
    for (std::size_t j = i + 1; j < seq->size(); ++j) {  // the first activation after the layer
      if (has_weight(*(*seq)[j])) break;
      const char* kind = activation_name(*(*seq)[j]);
      if (!kind) continue;
      LayerFlow& flow = record.layers[it->second];
      flow.activation = kind;
      if (flow.activation == "sigmoid" || flow.activation == "tanh")
        flow.saturated_fraction = saturated(outputs[j], kind);
      if (flow.activation == "relu") flow.dead_fraction = dead(outputs[j]);
      break;
    }
  }
  return record;
}

}  // namespace backprop::train
