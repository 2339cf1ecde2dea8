// `backprop eval` and `backprop predict`: a model file applied to data, with its stored preprocessing.
#include <backprop/backprop.hpp>
#include <backprop/config/make.hpp>
#include <backprop/data/source.hpp>
#include <backprop/io/model_file.hpp>
#include <backprop/io/run_folder.hpp>
#include <backprop/train/metrics.hpp>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli.hpp"
#include "outputs.hpp"
#include "text.hpp"

namespace cli {

namespace bp = backprop;
using json = nlohmann::json;

namespace {

json number(double v) {
  return std::isfinite(v) ? json(v) : json(nullptr);
}

// The cost the model was trained with (from its stored configuration), for a comparable loss.
std::string loss_name(const bp::io::ModelFile& m) {
  if (m.config_toml.empty()) return "auto";
  try {
    return bp::config::parse_toml(m.config_toml, "model config").train.loss;
  } catch (const bp::Error&) {
    return "auto";
  }
}

std::string label(const bp::io::Preprocessing& p, std::int64_t c) {
  return c >= 0 && static_cast<std::size_t>(c) < p.class_names.size()
             ? p.class_names[static_cast<std::size_t>(c)]
             : std::to_string(c);
}

// Prints the header columns a command does not read (the target for predict, ids, notes, ...) as a note.
void note_ignored(const char* command, const std::string& path, const std::vector<std::string>& ignored,
                  const std::string& target) {
  if (ignored.empty()) return;
  std::string list;
  for (std::size_t i = 0; i < ignored.size() && i < 10; ++i)
    list += (list.empty() ? "'" : ", '") + ignored[i] + "'" + (ignored[i] == target ? " (the target)" : "");
  if (ignored.size() > 10) list += " and " + std::to_string(ignored.size() - 10) + " more";
  std::fprintf(stderr, "backprop %s: note: %s: ignoring %s %s (not features of the model)\n", command,
               path.c_str(), ignored.size() == 1 ? "column" : "columns", list.c_str());
}

}  // namespace

int run_eval(const EvalArgs& a) {
  const auto [model, net] = bp::io::load_for_prediction(a.model, "`backprop eval`");
  const bp::data::ModelData read =
      bp::data::load_eval_data(model, a.data,
                               {.target = a.target,
                                .split = a.split == "train" ? bp::data::Split::train : bp::data::Split::test,
                                .limit = a.limit});
  note_ignored("eval", a.data, read.ignored_columns, "");
  const bp::data::TensorDataset& data = read.data;
  BP_CHECK(data.size() > 0, FileError, a.data, ": no examples to evaluate");
  const bool regression = model.preprocessing.task == "regression";
  const auto loss = bp::config::make_loss(loss_name(model), data.task);
  const bp::train::Evaluation e = bp::train::evaluate(*net, *loss, data);

  json out = {{"model", a.model}, {"data", a.data}, {"examples", e.examples}, {"loss", number(e.loss)}};
  bp::train::RegressionMetrics errors;
  if (regression) {
    errors = bp::train::regression_metrics(bp::train::predict(*net, data.features), data.targets);
    out["rmse"] = number(errors.rmse);
    out["mae"] = number(errors.mae);
  } else {
    out["accuracy"] = number(e.accuracy);
    out["class_names"] = model.preprocessing.class_names;
    json per_class = json::object();
    for (std::size_t c = 0; c < e.per_class_accuracy.size(); ++c)
      per_class[label(model.preprocessing, static_cast<std::int64_t>(c))] = number(e.per_class_accuracy[c]);
    out["per_class_accuracy"] = per_class;
    out["confusion"] = e.confusion;
  }
  if (a.json) {
    std::cout << out.dump(2) << "\n";
    return kOk;
  }

  std::printf("model     %s (%s)\n", a.model.c_str(), bp::io::describe(model.architecture).c_str());
  std::printf("data      %s: %lld examples\n", a.data.c_str(), static_cast<long long>(e.examples));
  std::printf("loss      %.4f\n", e.loss);
  if (regression) {
    std::printf("rmse      %.6g\nmae       %.6g\n", errors.rmse, errors.mae);
    return kOk;
  }
  std::printf("accuracy  %.2f%%\n\nper-class accuracy\n", 100 * e.accuracy);
  std::size_t width = 5;
  for (std::size_t c = 0; c < e.confusion.size(); ++c)
    width = std::max(width, label(model.preprocessing, static_cast<std::int64_t>(c)).size());
  for (std::size_t c = 0; c < e.per_class_accuracy.size(); ++c) {
    const std::string name = label(model.preprocessing, static_cast<std::int64_t>(c));
    if (std::isnan(e.per_class_accuracy[c]))
      std::printf("  %-*s  (no examples)\n", static_cast<int>(width), name.c_str());
    else
      std::printf("  %-*s  %6.2f%%\n", static_cast<int>(width), name.c_str(), 100 * e.per_class_accuracy[c]);
  }
  std::printf("\nconfusion matrix (rows: true class, columns: predicted class)\n  %*s",
              static_cast<int>(width), "");
  for (std::size_t c = 0; c < e.confusion.size(); ++c) std::printf(" %6zu", c);
  std::printf("\n");
  for (std::size_t r = 0; r < e.confusion.size(); ++r) {
    std::printf("  %-*s", static_cast<int>(width),
                label(model.preprocessing, static_cast<std::int64_t>(r)).c_str());
    for (std::int64_t v : e.confusion[r]) std::printf(" %6lld", static_cast<long long>(v));
    std::printf("\n");
  }
  return kOk;
}

int run_predict(const PredictArgs& a) {
  // Refused before anything is read: predictions written over the model or the input would destroy them.
  for (const auto& [flag, path] : {std::pair{"--model", a.model}, std::pair{"--input", a.input}})
    BP_CHECK(!bp::io::same_path(a.output, path), ConfigError, "--output ", a.output, ": is also the input ",
             flag, "; choose another --output");
  if (!a.output.empty())
    check_output("--output", a.output, bp::io::FileKind::text, "predictions (text)", a.force);
  const auto [model, net] = bp::io::load_for_prediction(a.model, "`backprop predict`");
  const bp::data::ModelInputs inputs = bp::data::load_predict_inputs(model, a.input, a.limit);
  note_ignored("predict", a.input, inputs.ignored_columns, model.preprocessing.target);
  const bp::Tensor& x = inputs.features;
  const bp::Tensor y = bp::train::predict(*net, x);
  const bool regression = model.preprocessing.task == "regression";
  std::ostringstream out;
  out.precision(6);
  if (regression) {
    for (std::int64_t i = 0; i < y.size(0); ++i) {
      if (a.json) {
        json values = json::array();
        for (std::int64_t k = 0; k < y.size(1); ++k) values.push_back(number(y.at({i, k})));
        out << json{{"row", i}, {"value", y.size(1) == 1 ? values[0] : values}}.dump() << "\n";
      } else {
        for (std::int64_t k = 0; k < y.size(1); ++k) out << (k ? "\t" : "") << y.at({i, k});
        out << "\n";
      }
    }
  } else {
    const bp::Tensor p = bp::softmax(y, 1);
    const bp::Tensor best = bp::argmax(p, 1);
    for (std::int64_t i = 0; i < y.size(0); ++i) {
      const auto c = static_cast<std::int64_t>(best.flat(i));
      const double prob = p.at({i, c});
      if (a.json) {
        out << json{{"row", i}, {"class", label(model.preprocessing, c)}, {"index", c}, {"probability", prob}}
                   .dump()
            << "\n";
      } else {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.4f", prob);
        out << label(model.preprocessing, c) << "\t" << buf << "\n";
      }
    }
  }
  if (a.output.empty()) {
    std::cout << out.str();
  } else {
    bp::io::write_file_atomic(a.output, out.str(), {.force = a.force});
  }
  return kOk;
}

}  // namespace cli
