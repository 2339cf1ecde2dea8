// metrics.jsonl: writing records as JSON lines, reading them back tolerantly of a crash mid-line.
#include <algorithm>
#include <backprop/error.hpp>
#include <backprop/io.hpp>
#include <backprop/io/metrics.hpp>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

namespace backprop::io {

namespace {

using json = nlohmann::json;

json number(double v) {
  return std::isfinite(v) ? json(v) : json(nullptr);
}

double number_of(const json& obj, const char* key) {
  if (!obj.contains(key) || obj.at(key).is_null()) return kMissing;
  if (!obj.at(key).is_number())
    throw std::runtime_error(std::string("field \"") + key + "\" is not a number");
  return obj.at(key).get<double>();
}

std::int64_t integer_of(const json& obj, const char* key) {
  if (!obj.contains(key) || !obj.at(key).is_number_integer())
    throw std::runtime_error(std::string("field \"") + key + "\" must be an integer");
  return obj.at(key).get<std::int64_t>();
}

// Splits a file into lines; `complete` says whether the last one ended with a newline.
std::vector<std::string> lines_of(const std::string& text, bool& complete) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  while (start < text.size()) {
    const std::size_t nl = text.find('\n', start);
    if (nl == std::string::npos) {
      lines.push_back(text.substr(start));
      complete = false;
      return lines;
    }
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  complete = true;
  return lines;
}

}  // namespace

std::string to_json(const EpochRecord& r) {
  json j = {{"type", "epoch"},
            {"epoch", r.epoch},
            {"train_loss", number(r.train_loss)},
            {"train_accuracy", number(r.train_accuracy)},
            {"val_loss", number(r.val_loss)},
            {"val_accuracy", number(r.val_accuracy)},
            {"lr", number(r.lr)},
            {"updates", r.updates},
            {"seconds", number(r.seconds)},
            {"samples_per_second", number(r.samples_per_second)}};
  return j.dump();
}

std::string to_json(const GradFlowEntry& r) {
  json layers = json::array();
  for (const LayerGradient& l : r.layers)
    layers.push_back({{"name", l.name},
                      {"grad_norm", number(l.grad_norm)},
                      {"weight_norm", number(l.weight_norm)},
                      {"activation", l.activation},
                      {"saturated_fraction", number(l.saturated_fraction)},
                      {"dead_fraction", number(l.dead_fraction)}});
  json j = {{"type", "grad_flow"}, {"epoch", r.epoch}, {"step", r.step}, {"layers", layers}};
  return j.dump();
}

std::string to_json(const TestRecord& r) {
  json per_class = json::array();
  for (double v : r.per_class_accuracy) per_class.push_back(number(v));
  json wrong = json::array();
  for (const Misclassified& m : r.misclassified) {
    json e = {{"index", m.index}, {"true", m.true_class}, {"predicted", m.predicted}};
    if (!m.pixels.empty()) {
      e["pixels"] = m.pixels;
      e["shape"] = m.shape;
    }
    wrong.push_back(e);
  }
  json j = {{"type", "test"},         {"loss", number(r.loss)},       {"accuracy", number(r.accuracy)},
            {"examples", r.examples}, {"class_names", r.class_names}, {"per_class_accuracy", per_class}};
  if (r.confusion.size() > kFullConfusionClasses || (r.confusion.empty() && !r.top_confusions.empty())) {
    json top = json::array();
    for (const Confusion& c : r.confusion.empty() ? r.top_confusions : top_confusions(r.confusion))
      top.push_back({{"true", c.true_class}, {"predicted", c.predicted}, {"count", c.count}});
    j["top_confusions"] = top;
  } else {
    j["confusion"] = r.confusion;
  }
  j["misclassified"] = wrong;
  return j.dump();
}

std::vector<Confusion> top_confusions(const std::vector<std::vector<std::int64_t>>& confusion,
                                      std::size_t n) {
  // The non-zero mistakes are at most the number of test examples: collect them, then sort the first n.
  std::vector<Confusion> cells;
  for (std::size_t t = 0; t < confusion.size(); ++t)
    for (std::size_t p = 0; p < confusion[t].size(); ++p)
      if (p != t && confusion[t][p] > 0)
        cells.push_back({.true_class = static_cast<std::int64_t>(t),
                         .predicted = static_cast<std::int64_t>(p),
                         .count = confusion[t][p]});
  const auto larger = [](const Confusion& a, const Confusion& b) {
    return a.count != b.count             ? a.count > b.count
           : a.true_class != b.true_class ? a.true_class < b.true_class
                                          : a.predicted < b.predicted;
  };
  const std::size_t kept = std::min(n, cells.size());
  std::partial_sort(cells.begin(), cells.begin() + static_cast<std::ptrdiff_t>(kept), cells.end(), larger);
  cells.resize(kept);
  return cells;
}

MetricsWriter::MetricsWriter(const std::string& path, bool truncate) : path_(path) {
  // The same checks as every other write (write_file_atomic): links are followed; other non-regular files
  // and a file holding something other than text are refused. A FIFO or device is refused too: the report
  // reads the log back.
  if (const std::optional<FileKind> held = replaced_kind(path, FileKind::text))
    BP_CHECK(false, FileError, path, ": holds ", describe(*held),
             "; refusing to use it as the metrics log (JSON lines text)");
  input_exists(path, "the metrics log");
  file_ = std::fopen(path.c_str(), truncate ? "wb" : "ab");
  BP_CHECK(file_ != nullptr, FileError, path,
           ": cannot open the metrics log for writing: ", std::strerror(errno));
}

MetricsWriter::~MetricsWriter() {
  if (file_) std::fclose(file_);
}

void MetricsWriter::line(const std::string& json_object) {
  const std::string text = json_object + "\n";
  const bool ok = std::fwrite(text.data(), 1, text.size(), file_) == text.size() && std::fflush(file_) == 0;
  BP_CHECK(ok, FileError, path_, ": cannot append to the metrics log: ", std::strerror(errno));
}

void MetricsWriter::epoch(const EpochRecord& record) {
  line(to_json(record));
}
void MetricsWriter::grad_flow(const GradFlowEntry& record) {
  line(to_json(record));
}
void MetricsWriter::test(const TestRecord& record) {
  line(to_json(record));
}

Metrics read_metrics(const std::string& path) {
  bool complete = true;
  const std::vector<std::string> lines = lines_of(read_file(path), complete);
  Metrics m;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].find_first_not_of(" \t\r") == std::string::npos) continue;
    const bool last_partial = !complete && i + 1 == lines.size();
    const json j = json::parse(lines[i], nullptr, false);
    if (j.is_discarded() && last_partial) break;
    const std::string where = path + ":" + std::to_string(i + 1) + ": ";
    BP_CHECK(!j.is_discarded() && j.is_object() && j.contains("type") && j.at("type").is_string(), FileError,
             where, "expected a JSON object with a \"type\" field");
    const std::string type = j.at("type").get<std::string>();
    try {
      if (type == "epoch") {
        EpochRecord r;
        r.epoch = integer_of(j, "epoch");
        r.train_loss = number_of(j, "train_loss");
        r.train_accuracy = number_of(j, "train_accuracy");
        r.val_loss = number_of(j, "val_loss");
        r.val_accuracy = number_of(j, "val_accuracy");
        r.lr = number_of(j, "lr");
        r.updates = j.contains("updates") ? integer_of(j, "updates") : 0;
        r.seconds = number_of(j, "seconds");
        r.samples_per_second = number_of(j, "samples_per_second");
        m.epochs.push_back(r);
      } else if (type == "grad_flow") {
        GradFlowEntry r;
        r.epoch = integer_of(j, "epoch");
        r.step = integer_of(j, "step");
        if (!j.contains("layers") || !j.at("layers").is_array())
          throw std::runtime_error("\"layers\" must be an array");
        for (const json& l : j.at("layers")) {
          if (!l.is_object() || !l.contains("name") || !l.at("name").is_string())
            throw std::runtime_error("each layer needs a \"name\"");
          LayerGradient g;
          g.name = l.at("name").get<std::string>();
          g.grad_norm = number_of(l, "grad_norm");
          g.weight_norm = number_of(l, "weight_norm");
          if (l.contains("activation") && l.at("activation").is_string()) g.activation = l.at("activation");
          g.saturated_fraction = number_of(l, "saturated_fraction");
          g.dead_fraction = number_of(l, "dead_fraction");
          r.layers.push_back(g);
        }
        m.grad_flow.push_back(r);
      } else if (type == "test") {
        TestRecord r;
        r.loss = number_of(j, "loss");
        r.accuracy = number_of(j, "accuracy");
        r.examples = j.contains("examples") ? integer_of(j, "examples") : 0;
        if (j.contains("class_names")) r.class_names = j.at("class_names").get<std::vector<std::string>>();
        if (j.contains("per_class_accuracy"))
          for (const json& v : j.at("per_class_accuracy"))
            r.per_class_accuracy.push_back(v.is_null() ? kMissing : v.get<double>());
        if (j.contains("confusion"))
          r.confusion = j.at("confusion").get<std::vector<std::vector<std::int64_t>>>();
        if (j.contains("top_confusions"))
          for (const json& e : j.at("top_confusions"))
            r.top_confusions.push_back({.true_class = integer_of(e, "true"),
                                        .predicted = integer_of(e, "predicted"),
                                        .count = integer_of(e, "count")});
        if (j.contains("misclassified"))
          for (const json& e : j.at("misclassified")) {
            Misclassified w;
            w.index = integer_of(e, "index");
            w.true_class = integer_of(e, "true");
            w.predicted = integer_of(e, "predicted");
            if (e.contains("pixels")) w.pixels = e.at("pixels").get<std::vector<double>>();
            if (e.contains("shape")) w.shape = e.at("shape").get<std::vector<std::int64_t>>();
            r.misclassified.push_back(std::move(w));
          }
        m.test = r;
      }
    } catch (const std::exception& e) {
      throw FileError(where + "a \"" + type + "\" record: " + e.what());
    }
  }
  return m;
}

void truncate_metrics(const std::string& path, std::int64_t epoch) {
  truncate_metrics(path, epoch, -1);
}

void truncate_metrics(const std::string& path, std::int64_t epoch, std::int64_t step) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return;
  bool complete = true;
  const std::vector<std::string> lines = lines_of(read_file(path), complete);
  std::string kept;
  for (std::size_t i = 0; i < lines.size(); ++i) {
    if (!complete && i + 1 == lines.size()) break;
    const json j = json::parse(lines[i], nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("type")) continue;
    const json type = j.at("type");
    if (type == "test") continue;
    const auto integer = [&](const char* key) {
      return j.contains(key) && j.at(key).is_number_integer() ? j.at(key).get<std::int64_t>() : -1;
    };
    const bool partial_epoch_flow =
        step >= 0 && type == "grad_flow" && integer("epoch") == epoch + 1 && integer("step") <= step;
    if (integer("epoch") > epoch && !partial_epoch_flow) continue;
    kept += lines[i] + "\n";
  }
  write_file_atomic(path, kept);
}

}  // namespace backprop::io
