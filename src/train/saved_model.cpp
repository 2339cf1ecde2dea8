// A saved model applied to new data: evaluate_model and predict_model (train/saved_model.hpp).
#include <algorithm>
#include <backprop/config/make.hpp>
#include <backprop/error.hpp>
#include <backprop/ops.hpp>
#include <backprop/train/saved_model.hpp>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

#include "io/appendf.hpp"

namespace backprop::train {

namespace {

using json = nlohmann::json;
using io::detail::appendf;

json number(double v) {
  return std::isfinite(v) ? json(v) : json(nullptr);
}

// Class `c` by its name, or its index when the model has no name for it.
std::string label(const std::vector<std::string>& names, std::int64_t c) {
  return c >= 0 && static_cast<std::size_t>(c) < names.size() ? names[static_cast<std::size_t>(c)]
                                                              : std::to_string(c);
}

// The cost the model was trained with (from its stored configuration), for a comparable loss.
std::string loss_name(const io::ModelFile& m) {
  if (m.config_toml.empty()) return "auto";
  try {
    return config::parse_toml(m.config_toml, "model config").train.loss;
  } catch (const Error&) {
    return "auto";
  }
}

}  // namespace

ModelEvaluation evaluate_model(const io::LoadedModel& model, const data::TensorDataset& data,
                               const ModelEvaluationNames& names) {
  BP_CHECK(data.size() > 0, FileError, names.data, ": no examples to evaluate");
  const io::ModelFile& m = model.model;
  ModelEvaluation out{.names = names,
                      .network = io::describe(m.architecture),
                      .regression = m.preprocessing.task == "regression",
                      .class_names = m.preprocessing.class_names};
  const auto loss = config::make_loss(loss_name(m), data.task);
  out.evaluation = evaluate(*model.network, *loss, data);
  if (out.regression) out.errors = regression_metrics(predict(*model.network, data.features), data.targets);
  return out;
}

std::string ModelEvaluation::json() const {
  const Evaluation& e = evaluation;
  nlohmann::json out = {
      {"model", names.model}, {"data", names.data}, {"examples", e.examples}, {"loss", number(e.loss)}};
  if (regression) {
    out["rmse"] = number(errors.rmse);
    out["mae"] = number(errors.mae);
  } else {
    out["accuracy"] = number(e.accuracy);
    out["class_names"] = class_names;
    nlohmann::json per_class = nlohmann::json::object();
    for (std::size_t c = 0; c < e.per_class_accuracy.size(); ++c)
      per_class[label(class_names, static_cast<std::int64_t>(c))] = number(e.per_class_accuracy[c]);
    out["per_class_accuracy"] = per_class;
    out["confusion"] = e.confusion;
  }
  return out.dump(2);
}

std::string ModelEvaluation::text() const {
  const Evaluation& e = evaluation;
  std::string s;
  appendf(s, "model     %s (%s)\n", names.model.c_str(), network.c_str());
  appendf(s, "data      %s: %lld examples\n", names.data.c_str(), static_cast<long long>(e.examples));
  appendf(s, "loss      %.4f\n", e.loss);
  if (regression) {
    appendf(s, "rmse      %.6g\nmae       %.6g\n", errors.rmse, errors.mae);
    return s;
  }
  appendf(s, "accuracy  %.2f%%\n\nper-class accuracy\n", 100 * e.accuracy);
  std::size_t width = 5;
  for (std::size_t c = 0; c < e.confusion.size(); ++c)
    width = std::max(width, label(class_names, static_cast<std::int64_t>(c)).size());
  const int w = static_cast<int>(width);
  for (std::size_t c = 0; c < e.per_class_accuracy.size(); ++c) {
    const std::string name = label(class_names, static_cast<std::int64_t>(c));
    if (std::isnan(e.per_class_accuracy[c]))
      appendf(s, "  %-*s  (no examples)\n", w, name.c_str());
    else
      appendf(s, "  %-*s  %6.2f%%\n", w, name.c_str(), 100 * e.per_class_accuracy[c]);
  }
  appendf(s, "\nconfusion matrix (rows: true class, columns: predicted class)\n  %*s", w, "");
  for (std::size_t c = 0; c < e.confusion.size(); ++c) appendf(s, " %6zu", c);
  s += "\n";
  for (std::size_t r = 0; r < e.confusion.size(); ++r) {
    appendf(s, "  %-*s", w, label(class_names, static_cast<std::int64_t>(r)).c_str());
    for (std::int64_t v : e.confusion[r]) appendf(s, " %6lld", static_cast<long long>(v));
    s += "\n";
  }
  return s;
}

Predictions predict_model(const io::LoadedModel& model, const Tensor& features) {
  Predictions out{.regression = model.model.preprocessing.task == "regression",
                  .class_names = model.model.preprocessing.class_names,
                  .outputs = predict(*model.network, features)};
  if (out.regression) return out;
  const Tensor p = softmax(out.outputs, 1);
  const Tensor best = argmax(p, 1);
  for (std::int64_t i = 0; i < p.size(0); ++i) {
    const auto c = static_cast<std::int64_t>(best.flat(i));
    out.classes.push_back(c);
    out.probabilities.push_back(p.at({i, c}));
  }
  return out;
}

std::string Predictions::label(std::int64_t row) const {
  return train::label(class_names, classes.at(static_cast<std::size_t>(row)));
}

std::string Predictions::text() const {
  std::ostringstream out;
  out.precision(6);
  for (std::int64_t i = 0; i < rows(); ++i) {
    if (regression) {
      for (std::int64_t k = 0; k < outputs.size(1); ++k) out << (k ? "\t" : "") << outputs.at({i, k});
      out << "\n";
    } else {
      char buf[32];
      std::snprintf(buf, sizeof buf, "%.4f", probabilities[static_cast<std::size_t>(i)]);
      out << label(i) << "\t" << buf << "\n";
    }
  }
  return out.str();
}

std::string Predictions::json_lines() const {
  std::string out;
  for (std::int64_t i = 0; i < rows(); ++i) {
    nlohmann::json line;
    if (regression) {
      nlohmann::json values = nlohmann::json::array();
      for (std::int64_t k = 0; k < outputs.size(1); ++k) values.push_back(number(outputs.at({i, k})));
      line = {{"row", i}, {"value", outputs.size(1) == 1 ? values[0] : values}};
    } else {
      const auto c = classes[static_cast<std::size_t>(i)];
      line = {{"row", i},
              {"class", label(i)},
              {"index", c},
              {"probability", probabilities[static_cast<std::size_t>(i)]}};
    }
    out += line.dump() + "\n";
  }
  return out;
}

}  // namespace backprop::train
