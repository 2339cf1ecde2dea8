// Reading metrics.jsonl for the report: one JSON object per line, checked field by field, so that a bad line
// is an error naming its line number rather than a broken chart. The record format is in docs/report.md.
#include <algorithm>
#include <backprop/error.hpp>
#include <backprop/io.hpp>
#include <backprop/io/report.hpp>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

namespace backprop::io {

namespace {

using nlohmann::json;

const char* type_name(const json& v) {
  return v.type_name();
}

// Where we are, for error messages: "metrics.jsonl line 7".
struct Line {
  const std::string& source;
  std::size_t number;

  template <class... Args>
  [[noreturn]] void fail(const Args&... args) const {
    throw FileError(detail::cat(source, " line ", number, ": ", args...));
  }

  // A number, or NaN when the key is absent or null.
  double number_or_nan(const json& obj, const char* key) const {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return std::numeric_limits<double>::quiet_NaN();
    if (!it->is_number()) fail("\"", key, "\" should be a number, got ", type_name(*it), " ", it->dump());
    return it->get<double>();
  }

  std::int64_t integer(const json& obj, const char* key, const char* what) const {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) fail(what, " has no \"", key, "\"");
    if (!it->is_number_integer())
      fail("\"", key, "\" should be an integer, got ", type_name(*it), " ", it->dump());
    return it->get<std::int64_t>();
  }

  std::string text_or_empty(const json& obj, const char* key) const {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return {};
    if (!it->is_string()) fail("\"", key, "\" should be a string, got ", type_name(*it), " ", it->dump());
    return it->get<std::string>();
  }

  const json* array_or_null(const json& obj, const char* key) const {
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return nullptr;
    if (!it->is_array()) fail("\"", key, "\" should be an array, got ", type_name(*it));
    return &*it;
  }
};

ReportEpoch parse_epoch(const json& obj, const Line& line) {
  ReportEpoch e;
  e.epoch = line.integer(obj, "epoch", "an epoch record");
  e.train_loss = line.number_or_nan(obj, "train_loss");
  e.train_accuracy = line.number_or_nan(obj, "train_accuracy");
  e.val_loss = line.number_or_nan(obj, "val_loss");
  e.val_accuracy = line.number_or_nan(obj, "val_accuracy");
  e.lr = line.number_or_nan(obj, "lr");
  e.seconds = line.number_or_nan(obj, "seconds");
  return e;
}

ReportGradFlow parse_grad_flow(const json& obj, const Line& line) {
  ReportGradFlow g;
  g.epoch = line.integer(obj, "epoch", "a grad_flow record");
  g.step = line.integer(obj, "step", "a grad_flow record");
  const json* layers = line.array_or_null(obj, "layers");
  if (!layers) line.fail("a grad_flow record has no \"layers\" array");
  for (std::size_t i = 0; i < layers->size(); ++i) {
    const json& l = (*layers)[i];
    if (!l.is_object()) line.fail("layers[", i, "] should be an object, got ", type_name(l));
    ReportLayer layer;
    layer.name = line.text_or_empty(l, "name");
    if (layer.name.empty()) layer.name = "layer " + std::to_string(i);
    layer.grad_norm = line.number_or_nan(l, "grad_norm");
    layer.weight_norm = line.number_or_nan(l, "weight_norm");
    layer.activation = line.text_or_empty(l, "activation");
    layer.saturated_fraction = line.number_or_nan(l, "saturated_fraction");
    layer.dead_fraction = line.number_or_nan(l, "dead_fraction");
    g.layers.push_back(std::move(layer));
  }
  return g;
}

ReportMisclassified parse_misclassified(const json& m, std::size_t i, std::int64_t classes,
                                        const Line& line) {
  if (!m.is_object()) line.fail("misclassified[", i, "] should be an object, got ", type_name(m));
  ReportMisclassified r;
  r.index = line.integer(m, "index", "a misclassified example");
  r.true_class = line.integer(m, "true", "a misclassified example");
  r.predicted = line.integer(m, "predicted", "a misclassified example");
  for (std::int64_t c : {r.true_class, r.predicted})
    if (classes > 0 && (c < 0 || c >= classes))
      line.fail("misclassified[", i, "] names class ", c, " but the confusion matrix has ", classes,
                " classes");
  const json* pixels = line.array_or_null(m, "pixels");
  if (!pixels) return r;
  r.pixels.reserve(pixels->size());
  for (std::size_t p = 0; p < pixels->size(); ++p) {
    const json& v = (*pixels)[p];
    if (!v.is_number())
      line.fail("misclassified[", i, "].pixels[", p, "] should be a number, got ", type_name(v));
    const double x = v.get<double>();
    if (!(x >= 0.0 && x <= 1.0))
      line.fail("misclassified[", i, "].pixels[", p, "] = ", x, " is outside [0, 1]");
    r.pixels.push_back(x);
  }
  if (const json* shape = line.array_or_null(m, "shape")) {
    if (shape->size() != 2 || !(*shape)[0].is_number_integer() || !(*shape)[1].is_number_integer())
      line.fail("misclassified[", i, "].shape should be [height, width], got ", shape->dump());
    r.height = (*shape)[0].get<std::int64_t>();
    r.width = (*shape)[1].get<std::int64_t>();
    if (r.height <= 0 || r.width <= 0 || r.height > 65536 || r.width > 65536 ||
        static_cast<std::size_t>(r.height * r.width) != r.pixels.size())
      line.fail("misclassified[", i, "] has ", r.pixels.size(), " pixels but its shape is ", r.height, " x ",
                r.width);
  } else {
    r.height = r.width =
        static_cast<std::int64_t>(std::llround(std::sqrt(static_cast<double>(r.pixels.size()))));
    if (r.height == 0 || static_cast<std::size_t>(r.height * r.width) != r.pixels.size())
      line.fail("misclassified[", i, "] has ", r.pixels.size(),
                " pixels, which is not a square image; give \"shape\": [height, width]");
  }
  return r;
}

ReportTest parse_test(const json& obj, const Line& line) {
  ReportTest t;
  t.loss = line.number_or_nan(obj, "loss");
  t.accuracy = line.number_or_nan(obj, "accuracy");
  if (const json* confusion = line.array_or_null(obj, "confusion")) {
    const std::size_t k = confusion->size();
    for (std::size_t r = 0; r < k; ++r) {
      const json& row = (*confusion)[r];
      if (!row.is_array() || row.size() != k)
        line.fail("the confusion matrix should be square (", k, " x ", k, "); row ", r, " is ",
                  row.is_array() ? std::to_string(row.size()) + " long" : std::string("not an array"));
      std::vector<std::int64_t> counts;
      for (std::size_t c = 0; c < k; ++c) {
        if (!row[c].is_number_integer() || row[c].get<std::int64_t>() < 0)
          line.fail("confusion[", r, "][", c, "] should be a count (an integer >= 0), got ", row[c].dump());
        counts.push_back(row[c].get<std::int64_t>());
      }
      t.confusion.push_back(std::move(counts));
    }
  }
  if (const json* names = line.array_or_null(obj, "class_names")) {
    for (std::size_t i = 0; i < names->size(); ++i) {
      const json& n = (*names)[i];
      if (!n.is_string() && !n.is_number())
        line.fail("class_names[", i, "] should be a string, got ", type_name(n));
      t.class_names.push_back(n.is_string() ? n.get<std::string>() : n.dump());
    }
    if (!t.confusion.empty() && t.class_names.size() != t.confusion.size())
      line.fail(t.class_names.size(), " class_names for a ", t.confusion.size(), " x ", t.confusion.size(),
                " confusion matrix");
  }
  const std::size_t named = std::max(t.confusion.size(), t.class_names.size());
  if (const json* accuracy = line.array_or_null(obj, "per_class_accuracy")) {
    if (named > 0 && accuracy->size() != named)
      line.fail("per_class_accuracy has ", accuracy->size(), " entries for ", named, " classes");
    for (std::size_t i = 0; i < accuracy->size(); ++i) {
      const json& a = (*accuracy)[i];
      if (!a.is_null() && !a.is_number())
        line.fail("per_class_accuracy[", i, "] should be a number or null, got ", type_name(a));
      t.per_class_accuracy.push_back(a.is_null() ? std::numeric_limits<double>::quiet_NaN()
                                                 : a.get<double>());
    }
  }
  const auto classes = static_cast<std::int64_t>(std::max(named, t.per_class_accuracy.size()));
  for (std::size_t i = t.class_names.size(); i < static_cast<std::size_t>(classes); ++i)
    t.class_names.push_back(std::to_string(i));
  if (const json* top = line.array_or_null(obj, "top_confusions"))
    for (std::size_t i = 0; i < top->size(); ++i) {
      const json& cell = (*top)[i];
      if (!cell.is_object()) line.fail("top_confusions[", i, "] should be an object, got ", type_name(cell));
      Confusion c{.true_class = line.integer(cell, "true", "a top confusion"),
                  .predicted = line.integer(cell, "predicted", "a top confusion"),
                  .count = line.integer(cell, "count", "a top confusion")};
      if (c.true_class < 0 || c.true_class >= classes || c.predicted < 0 || c.predicted >= classes)
        line.fail("top_confusions[", i, "] names class ",
                  c.true_class < 0 || c.true_class >= classes ? c.true_class : c.predicted, " but there are ",
                  classes, " classes");
      if (c.count < 0)
        line.fail("top_confusions[", i, "].count should be a count (an integer >= 0), got ", c.count);
      t.top_confusions.push_back(c);
    }
  if (const json* wrong = line.array_or_null(obj, "misclassified"))
    for (std::size_t i = 0; i < wrong->size(); ++i)
      t.misclassified.push_back(parse_misclassified((*wrong)[i], i, classes, line));
  return t;
}

}  // namespace

ReportData parse_report_data(const std::string& text, const std::string& source) {
  ReportData data;
  std::istringstream in(text);
  std::string raw;
  for (std::size_t number = 1; std::getline(in, raw); ++number) {
    if (raw.find_first_not_of(" \t\r") == std::string::npos) continue;
    const Line line{source, number};
    json obj;
    try {
      obj = json::parse(raw);
    } catch (const json::parse_error& e) {
      // A last line without its newline is a record being written (or cut off by a crash): not yet there.
      if (in.eof() && !text.empty() && text.back() != '\n') break;
      line.fail("not valid JSON (", e.what(), ")");
    }
    if (!obj.is_object()) line.fail("expected a JSON object, got ", type_name(obj));
    const std::string type = line.text_or_empty(obj, "type");
    if (type.empty() || type == "epoch") {
      data.epochs.push_back(parse_epoch(obj, line));
    } else if (type == "grad_flow") {
      data.grad_flow.push_back(parse_grad_flow(obj, line));
    } else if (type == "test") {
      data.test = parse_test(obj, line);
    }  // other types belong to other readers
  }
  return data;
}

ReportData read_report_data(const std::string& path) {
  return parse_report_data(read_file(path), path);
}

}  // namespace backprop::io
