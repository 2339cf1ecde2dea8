// summary.json of a run, and the test record with its misclassified examples.
#include "run_files.hpp"

#include <algorithm>
#include <backprop/error.hpp>
#include <backprop/io.hpp>
#include <backprop/ops.hpp>
#include <backprop/train/callbacks.hpp>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "cli.hpp"

namespace cli {

namespace bp = backprop;
using json = nlohmann::json;

namespace {

json number(double v) {
  return std::isfinite(v) ? json(v) : json(nullptr);
}

std::string percent(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", 100 * v);
  return buf;
}

std::string fixed(double v, int digits = 4) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

}  // namespace

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string number_text(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

std::string layers_text(const bp::io::Architecture& a) {
  std::string s = std::to_string(a.inputs);
  for (std::int64_t h : a.hidden) s.append("-").append(std::to_string(h));
  return s.append("-").append(std::to_string(a.outputs));
}

// ---- Summary ----------------------------------------------------------------------------------------------

Summary::Summary(const std::string& run_dir, const bp::config::Config& c, const TrainingData& data,
                 const std::string& network, const std::string& activation, std::int64_t parameters)
    : run_dir_(run_dir) {
  j_ = {{"status", "running"},
        {"run_dir", run_dir},
        {"data",
         {{"source", data.name},
          {"task", data.preprocessing.task},
          {"train_examples", data.train.size()},
          {"validation_examples", data.validation.size()},
          {"test_examples", data.test.size()}}},
        {"network", network},
        {"activation", activation},
        {"parameters", parameters},
        {"optimizer", c.optimizer.name},
        {"lr", c.optimizer.lr},
        {"batch_size", c.train.batch_size == 0 ? json("full") : json(c.train.batch_size)},
        {"seed", c.run.seed},
        {"epochs_planned", c.train.epochs}};
}

void Summary::diverged(const std::string& message, double seconds) {
  j_["status"] = "diverged";
  j_["message"] = message;
  j_["seconds"] = seconds;
}

void Summary::history(const bp::train::History& h) {
  j_["status"] = h.interrupted ? "interrupted" : h.stopped_early ? "stopped_early" : "completed";
  j_["epochs_run"] = h.epochs_done;
  j_["best_epoch"] = h.best_epoch;
  j_["updates"] = h.total_updates;
  if (!h.epochs.empty()) {
    const bp::train::EpochMetrics& m = h.epochs.back();
    j_["final"] = {{"train_loss", number(m.train_loss)},
                   {"train_accuracy", number(m.train_accuracy)},
                   {"val_loss", number(m.val_loss)},
                   {"val_accuracy", number(m.val_accuracy)},
                   {"lr", number(m.lr)},
                   {"samples_per_second", number(m.samples_per_second)}};
  }
}

void Summary::test(const bp::io::TestRecord& t, bp::nn::Module& net, const bp::data::TensorDataset& data) {
  json test = {{"loss", number(t.loss)}, {"examples", t.examples}};
  if (data.task == bp::data::Task::classification) {
    test["accuracy"] = number(t.accuracy);
    const auto name = [&](std::size_t c) {
      return c < t.class_names.size() ? t.class_names[c] : std::to_string(c);
    };
    json per_class = json::object();
    for (std::size_t c = 0; c < t.per_class_accuracy.size(); ++c)
      per_class[name(c)] = number(t.per_class_accuracy[c]);
    test["per_class_accuracy"] = per_class;
    test["class_names"] = t.class_names;
    if (t.confusion.size() <= bp::io::kFullConfusionClasses) {
      test["confusion"] = t.confusion;
    } else {  // the whole matrix would grow with the square of the class count
      json top = json::array();
      for (const bp::io::Confusion& c : bp::io::top_confusions(t.confusion))
        top.push_back({{"true", name(static_cast<std::size_t>(c.true_class))},
                       {"predicted", name(static_cast<std::size_t>(c.predicted))},
                       {"count", c.count}});
      test["top_confusions"] = top;
    }
  } else {
    const std::vector<double> y = data.targets.to_vector();
    const std::vector<double> p = bp::train::predict(net, data.features).to_vector();
    double se = 0, ae = 0, mean = 0, ss = 0;
    for (double v : y) mean += v / static_cast<double>(y.size());
    for (std::size_t i = 0; i < y.size(); ++i) {
      se += (p[i] - y[i]) * (p[i] - y[i]);
      ae += std::abs(p[i] - y[i]);
      ss += (y[i] - mean) * (y[i] - mean);
    }
    const auto n = static_cast<double>(y.size());
    test["rmse"] = number(std::sqrt(se / n));
    test["mae"] = number(ae / n);
    test["r2"] = ss > 0 ? number(1 - se / ss) : json(nullptr);
  }
  j_["test"] = test;
}

void Summary::interrupted(const std::string& signal, std::int64_t epoch, std::int64_t step,
                          const std::string& checkpoint, double seconds) {
  j_["status"] = "interrupted";
  j_["interrupted"] = {{"signal", signal}, {"epoch", epoch}, {"step", step}, {"checkpoint", checkpoint}};
  j_["seconds"] = seconds;
}

void Summary::finish(double seconds) {
  j_["seconds"] = seconds;
}

void Summary::set_run_dir(const std::string& dir) {
  run_dir_ = dir;
  j_["run_dir"] = dir;
}

std::string Summary::json_text() const {
  return j_.dump(2);
}

std::string Summary::training_json() const {
  json t = j_;
  if (t.contains("test")) {
    t["test"].erase("confusion");
    t["test"].erase("top_confusions");
  }
  t.erase("run_dir");
  return t.dump();
}

std::string Summary::text() const {
  std::string s;
  const json& f = j_.value("final", json::object());
  s += "trained " + std::to_string(j_.value("epochs_run", 0)) + " epochs in " +
       bp::train::clock_text(j_.value("seconds", 0.0)) +
       (j_["status"] == "stopped_early" ? " (stopped early)" : "") + "\n";
  if (!f.empty()) {
    s += "  train       loss " + fixed(f.value("train_loss", NAN));
    if (f["train_accuracy"].is_number()) s += "  accuracy " + percent(f["train_accuracy"].get<double>());
    s += "\n";
    if (f["val_loss"].is_number()) {
      s += "  validation  loss " + fixed(f["val_loss"].get<double>());
      if (f["val_accuracy"].is_number()) s += "  accuracy " + percent(f["val_accuracy"].get<double>());
      s += "\n";
    }
  }
  if (j_.contains("test")) {
    const json& t = j_["test"];
    s += "  test        loss " + (t["loss"].is_number() ? fixed(t["loss"].get<double>()) : "n/a");
    if (t.contains("accuracy") && t["accuracy"].is_number())
      s += "  accuracy " + percent(t["accuracy"].get<double>());
    if (t.contains("rmse") && t["rmse"].is_number()) s += "  rmse " + fixed(t["rmse"].get<double>());
    s += "  (" + std::to_string(t.value("examples", 0)) + " examples)\n";
  }
  s += "run folder " + run_dir_ +
       ": model.safetensors, metrics.jsonl, config.toml, summary.json, report.html\n";
  return s;
}

// ---- test evaluation --------------------------------------------------------------------------------------

bp::io::TestRecord evaluate_test(bp::nn::Module& net, const bp::train::Evaluation& e,
                                 const bp::data::TensorDataset& test, const bp::io::Preprocessing& pre) {
  bp::io::TestRecord r{.loss = e.loss,
                       .accuracy = e.accuracy,
                       .examples = e.examples,
                       .class_names = pre.class_names,
                       .per_class_accuracy = e.per_class_accuracy,
                       .confusion = e.confusion};
  if (test.task != bp::data::Task::classification) return r;
  constexpr std::size_t kShown = 32;
  const bp::Tensor predicted = bp::argmax(bp::train::predict(net, test.features), 1);
  const bool image = pre.input == "image" && pre.image_shape.size() == 2;
  const std::int64_t d = test.num_features();
  for (std::int64_t i = 0; i < test.size() && r.misclassified.size() < kShown; ++i) {
    const auto truth = static_cast<std::int64_t>(test.targets.flat(i));
    const auto guess = static_cast<std::int64_t>(predicted.flat(i));
    if (truth == guess) continue;
    bp::io::Misclassified m{.index = i, .true_class = truth, .predicted = guess};
    if (image) {
      const bp::Tensor row = bp::narrow(test.features, i, 1);
      m.pixels.reserve(static_cast<std::size_t>(d));
      for (std::int64_t k = 0; k < d; ++k)
        m.pixels.push_back(std::round(std::clamp(row.flat(k), 0.0, 1.0) * 1000) / 1000);  // 3 digits suffice
      m.shape = pre.image_shape;
    }
    r.misclassified.push_back(std::move(m));
  }
  return r;
}

}  // namespace cli
