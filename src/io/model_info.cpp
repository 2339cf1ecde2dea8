// A model file or checkpoint described as `backprop info` shows it (model_info.hpp).
#include <backprop/error.hpp>
#include <backprop/io/checkpoint.hpp>
#include <backprop/io/model_info.hpp>
#include <backprop/io/module_tree.hpp>
#include <charconv>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "io/appendf.hpp"

namespace backprop::io {

namespace {

using json = nlohmann::json;
using detail::appendf;

// The shortest text of a number ("0.2", "1e-05").
std::string shortest(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

// The first `max` entries, comma-separated, and the count when there are more.
std::string list(const std::vector<std::string>& v, std::size_t max = 12) {
  std::string s;
  for (std::size_t i = 0; i < v.size() && i < max; ++i) s.append(i ? ", " : "").append(v[i]);
  if (v.size() > max) s.append(", ... (").append(std::to_string(v.size())).append(")");
  return s;
}

// The training record as JSON, or discarded when it is not valid JSON.
json training_of(const ModelFile& m) {
  return json::parse(m.training_json, nullptr, false);
}

// The training record's lines: status, epochs, optimiser, seed; the test accuracy. Throws json::exception for a
// field of another type.
std::string training_lines(const json& training) {
  std::string s;
  appendf(s, "training    %s", training.value("status", "unknown").c_str());
  if (training.contains("epochs_run")) appendf(s, ", %lld epochs", training["epochs_run"].get<long long>());
  if (training.contains("optimizer"))
    appendf(s, ", %s lr %s", training["optimizer"].get<std::string>().c_str(),
            shortest(training.value("lr", 0.0)).c_str());
  if (training.contains("seed")) appendf(s, ", seed %lld", training["seed"].get<long long>());
  s += "\n";
  if (training.contains("test") && training["test"].contains("accuracy") &&
      training["test"]["accuracy"].is_number())
    appendf(s, "test        accuracy %.2f%%, loss %.4f on %lld examples\n",
            100 * training["test"]["accuracy"].get<double>(), training["test"].value("loss", 0.0),
            training["test"].value("examples", 0LL));
  return s;
}

}  // namespace

ModelInfo describe_file(const std::string& path) {
  const NamedTensors file = load_safetensors(path);
  ModelInfo info{.path = path, .model = from_named(file, path, "optimizer.")};
  const ModelFile& m = info.model;
  const auto net = build_module(m, path);
  try {
    info.summary = summary(*net, m.input_shape);
  } catch (const OutOfMemoryError&) {
    throw;
  } catch (const Error& e) {
    throw FileError(path + ": one forward pass of a zero example of the input shape " +
                    to_string(m.input_shape) + " failed: " + e.what());
  }
  const auto format = file.metadata.find("format");
  if (format != file.metadata.end() && format->second == kCheckpointFormat) {
    const Checkpoint ck = load_checkpoint(path);
    info.checkpoint = CheckpointInfo{
        .epoch = ck.trainer.epoch, .step = ck.trainer.step, .optimizer_entries = ck.trainer.optimizer.size()};
  }
  info.parameters = net->num_parameters();
  for (const auto& [name, mod] : net->named_children()) info.layers.emplace_back(name, mod->repr());
  info.module_tree = m.module_tree.empty() ? module_tree(*net) : m.module_tree;
  for (const auto& [name, t] : file.tensors)
    info.tensors.push_back({name, t.shape(), t.dtype() == f64 ? "F64" : "F32"});
  return info;
}

std::string ModelInfo::json() const {
  const Architecture& arch = model.architecture;
  const Preprocessing& pre = model.preprocessing;
  const nlohmann::json training = training_of(model);
  nlohmann::json tensor_list = nlohmann::json::array();
  for (const TensorInfo& t : tensors)
    tensor_list.push_back({{"name", t.name}, {"shape", t.shape}, {"dtype", t.dtype}});
  nlohmann::json modules = nlohmann::json::array();
  for (const auto& [name, repr] : layers) modules.push_back(name + ": " + repr);
  nlohmann::json rows = nlohmann::json::array();
  for (const SummaryRow& r : summary.rows)
    rows.push_back(
        {{"name", r.name}, {"type", r.type}, {"output_shape", r.output_shape}, {"parameters", r.parameters}});
  nlohmann::json out = {{"file", path},
                        {"kind", checkpoint ? "checkpoint" : "model"},
                        {"network", from_code() ? summary.rows.front().type : describe(arch)},
                        {"parameters", parameters},
                        {"trainable_parameters", parameters},
                        {"buffer_elements", summary.buffer_elements},
                        {"input_shape", model.input_shape},
                        {"summary", rows},
                        {"module", nlohmann::json::parse(module_tree)},
                        {"modules", modules},
                        {"training", training.is_discarded() ? nlohmann::json::object() : training},
                        {"tensors", tensor_list}};
  if (!from_code())
    out["architecture"] = {{"inputs", arch.inputs},           {"hidden", arch.hidden},
                           {"outputs", arch.outputs},         {"activation", arch.activation},
                           {"batchnorm", arch.batchnorm},     {"dropout", arch.dropout},
                           {"dropconnect", arch.dropconnect}, {"init", arch.init}};
  if (model.has_preprocessing)
    out["preprocessing"] = {{"task", pre.task},
                            {"input", pre.input},
                            {"pixel_scale", pre.pixel_scale},
                            {"image_shape", pre.image_shape},
                            {"standardize", pre.mean.defined()},
                            {"class_names", pre.class_names},
                            {"feature_names", pre.feature_names},
                            {"target", pre.target}};
  if (checkpoint)
    out["checkpoint"] = {{"epoch", checkpoint->epoch},
                         {"step", checkpoint->step},
                         {"optimizer_entries", checkpoint->optimizer_entries}};
  return out.dump(2);
}

std::string ModelInfo::text() const {
  const Architecture& arch = model.architecture;
  const Preprocessing& pre = model.preprocessing;
  const nlohmann::json training = training_of(model);
  std::string s;
  appendf(s, "file        %s (%s)\n", path.c_str(), checkpoint ? "checkpoint" : "model");
  if (checkpoint)
    appendf(s, "checkpoint  after epoch %lld, step %lld; optimiser state: %zu tensors\n",
            static_cast<long long>(checkpoint->epoch), static_cast<long long>(checkpoint->step),
            checkpoint->optimizer_entries);
  std::string extras;
  if (arch.batchnorm) extras += ", batchnorm";
  if (arch.dropout > 0) extras += ", dropout " + shortest(arch.dropout);
  if (arch.dropconnect > 0) extras += ", dropconnect " + shortest(arch.dropconnect);
  if (from_code() && !training.is_discarded() && training.contains("network") &&
      training["network"].is_string())
    appendf(s, "network     %s\n", training["network"].get<std::string>().c_str());
  else if (from_code())
    appendf(s, "network     %s (saved from code)\n", summary.rows.front().type.c_str());
  else
    appendf(s, "network     %s, %s%s, init %s\n", describe(arch).c_str(), arch.activation.c_str(),
            extras.c_str(), arch.init.c_str());
  appendf(s, "parameters  %s\n", with_commas(parameters).c_str());
  appendf(s, "summary     output shapes for one example of zeros, input %s\n",
          model.input_shape.empty() ? "shape unknown (saved without input_shape)"
                                    : ("[1, " + to_string(model.input_shape).substr(1)).c_str());
  s += summary.table();
  s += "layers\n";
  for (const auto& [name, repr] : layers) appendf(s, "  (%s) %s\n", name.c_str(), repr.c_str());
  s += "tensors\n";
  for (const TensorInfo& t : tensors)
    appendf(s, "  %-28s %-12s %s\n", t.name.c_str(), to_string(t.shape).c_str(), t.dtype.c_str());
  if (!model.has_preprocessing)
    s += "input       no preprocessing saved (eval and predict need it)\n";
  else if (pre.input == "image")
    appendf(s, "input       images %s, pixel values x %.6g\n",
            pre.image_shape.size() == 2
                ? (std::to_string(pre.image_shape[0]) + "x" + std::to_string(pre.image_shape[1])).c_str()
                : "",
            pre.pixel_scale);
  else
    appendf(s, "input       table of %lld features%s%s%s\n",
            static_cast<long long>(model.input_shape.empty() ? arch.inputs : model.input_shape.front()),
            pre.mean.defined() ? ", standardised" : "", pre.feature_names.empty() ? "" : ": ",
            list(pre.feature_names).c_str());
  if (model.has_preprocessing && pre.task == "classification")
    appendf(s, "task        classification, %zu classes: %s\n", pre.class_names.size(),
            list(pre.class_names).c_str());
  else if (model.has_preprocessing)
    appendf(s, "task        regression%s%s\n", pre.target.empty() ? "" : " of ", pre.target.c_str());
  if (!training.is_discarded() && !training.empty()) {
    try {
      s += training_lines(training);
    } catch (const nlohmann::json::exception&) {  // a field of another type than the tool writes: left out
    }
  }
  return s;
}

}  // namespace backprop::io
