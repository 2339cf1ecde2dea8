// summary.json of a run folder, built as the run goes.
#include <algorithm>
#include <backprop/io/run_summary.hpp>
#include <backprop/ops.hpp>
#include <backprop/train/callbacks.hpp>
#include <cmath>
#include <cstdio>
#include <nlohmann/json.hpp>

namespace backprop::io {

struct RunSummary::Json {
  nlohmann::json value;
};

namespace {

using json = nlohmann::json;

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

RunSummary::RunSummary(const std::string& run_dir, const RunDescription& r)
    : j_(std::make_unique<Json>()), run_dir_(run_dir) {
  j_->value = {{"status", "running"},
               {"run_dir", run_dir},
               {"data",
                {{"source", r.data_source},
                 {"task", r.task},
                 {"train_examples", r.train_examples},
                 {"validation_examples", r.validation_examples},
                 {"test_examples", r.test_examples}}},
               {"network", r.network},
               {"activation", r.activation},
               {"parameters", r.parameters},
               {"optimizer", r.optimizer},
               {"lr", r.lr},
               {"batch_size", r.batch_size == 0 ? json("full") : json(r.batch_size)},
               {"seed", r.seed},
               {"epochs_planned", r.epochs_planned}};
}

RunSummary::~RunSummary() = default;

RunSummary::RunSummary(const RunSummary& other)
    : j_(std::make_unique<Json>(*other.j_)), run_dir_(other.run_dir_) {}

RunSummary& RunSummary::operator=(const RunSummary& other) {
  if (this != &other) {
    *j_ = *other.j_;
    run_dir_ = other.run_dir_;
  }
  return *this;
}

void RunSummary::diverged(const std::string& message, double seconds) {
  json& j = j_->value;
  j["status"] = "diverged";
  j["message"] = message;
  j["seconds"] = seconds;
}

void RunSummary::history(const train::History& h) {
  json& j = j_->value;
  j["status"] = h.interrupted ? "interrupted" : h.stopped_early ? "stopped_early" : "completed";
  j["epochs_run"] = h.epochs_done;
  j["best_epoch"] = h.best_epoch;
  j["updates"] = h.total_updates;
  if (!h.epochs.empty()) {
    const train::EpochMetrics& m = h.epochs.back();
    j["final"] = {{"train_loss", number(m.train_loss)},
                  {"train_accuracy", number(m.train_accuracy)},
                  {"val_loss", number(m.val_loss)},
                  {"val_accuracy", number(m.val_accuracy)},
                  {"lr", number(m.lr)},
                  {"samples_per_second", number(m.samples_per_second)}};
  }
}

void RunSummary::test(const TestRecord& t, const std::optional<train::RegressionMetrics>& errors) {
  json test = {{"loss", number(t.loss)}, {"examples", t.examples}};
  if (errors) {
    test["rmse"] = number(errors->rmse);
    test["mae"] = number(errors->mae);
    test["r2"] = number(errors->r2);
  } else {
    test["accuracy"] = number(t.accuracy);
    const auto name = [&](std::size_t c) {
      return c < t.class_names.size() ? t.class_names[c] : std::to_string(c);
    };
    json per_class = json::object();
    for (std::size_t c = 0; c < t.per_class_accuracy.size(); ++c)
      per_class[name(c)] = number(t.per_class_accuracy[c]);
    test["per_class_accuracy"] = per_class;
    test["class_names"] = t.class_names;
    if (t.confusion.size() <= kFullConfusionClasses) {
      test["confusion"] = t.confusion;
    } else {  // the whole matrix would grow with the square of the class count
      json top = json::array();
      for (const Confusion& c : top_confusions(t.confusion))
        top.push_back({{"true", name(static_cast<std::size_t>(c.true_class))},
                       {"predicted", name(static_cast<std::size_t>(c.predicted))},
                       {"count", c.count}});
      test["top_confusions"] = top;
    }
  }
  j_->value["test"] = test;
}

void RunSummary::interrupted(const std::string& signal, std::int64_t epoch, std::int64_t step,
                             const std::string& checkpoint, double seconds) {
  json& j = j_->value;
  j["status"] = "interrupted";
  j["interrupted"] = {{"signal", signal}, {"epoch", epoch}, {"step", step}, {"checkpoint", checkpoint}};
  j["seconds"] = seconds;
}

void RunSummary::finish(double seconds) {
  j_->value["seconds"] = seconds;
}

void RunSummary::set_run_dir(const std::string& dir) {
  run_dir_ = dir;
  j_->value["run_dir"] = dir;
}

std::string RunSummary::json_text() const {
  return j_->value.dump(2);
}

std::string RunSummary::training_json() const {
  json t = j_->value;
  if (t.contains("test")) {
    t["test"].erase("confusion");
    t["test"].erase("top_confusions");
  }
  t.erase("run_dir");
  return t.dump();
}

std::string RunSummary::text() const {
  const json& j = j_->value;
  std::string s;
  const json& f = j.value("final", json::object());
  s += "trained " + std::to_string(j.value("epochs_run", 0)) + " epochs in " +
       train::clock_text(j.value("seconds", 0.0)) +
       (j["status"] == "stopped_early" ? " (stopped early)" : "") + "\n";
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
  if (j.contains("test")) {
    const json& t = j["test"];
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

TestRecord test_record(nn::Module& model, const train::Evaluation& e, const data::TensorDataset& test,
                       const std::vector<std::string>& class_names,
                       const std::vector<std::int64_t>& image_shape, std::size_t max_misclassified) {
  TestRecord r{.loss = e.loss,
               .accuracy = e.accuracy,
               .examples = e.examples,
               .class_names = class_names,
               .per_class_accuracy = e.per_class_accuracy,
               .confusion = e.confusion};
  if (test.task != data::Task::classification || max_misclassified == 0 || test.size() == 0) return r;
  const Tensor predicted = argmax(train::predict(model, test.features), 1);
  const bool image = image_shape.size() == 2;
  const std::int64_t d = test.num_features();
  for (std::int64_t i = 0; i < test.size() && r.misclassified.size() < max_misclassified; ++i) {
    const auto truth = static_cast<std::int64_t>(test.targets.flat(i));
    const auto guess = static_cast<std::int64_t>(predicted.flat(i));
    if (truth == guess) continue;
    Misclassified m{.index = i, .true_class = truth, .predicted = guess};
    if (image) {
      const Tensor row = narrow(test.features, i, 1);
      m.pixels.reserve(static_cast<std::size_t>(d));
      for (std::int64_t k = 0; k < d; ++k)
        m.pixels.push_back(std::round(std::clamp(row.flat(k), 0.0, 1.0) * 1000) / 1000);  // 3 digits suffice
      m.shape = image_shape;
    }
    r.misclassified.push_back(std::move(m));
  }
  return r;
}

}  // namespace backprop::io
