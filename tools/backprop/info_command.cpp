// `backprop info FILE` and `backprop report RUN_DIR`.
#include <backprop/backprop.hpp>
#include <backprop/io/checkpoint.hpp>
#include <backprop/io/model_file.hpp>
#include <backprop/io/module_tree.hpp>
#include <backprop/io/report.hpp>
#include <backprop/io/summary.hpp>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli.hpp"
#include "text.hpp"

namespace cli {

namespace bp = backprop;
using json = nlohmann::json;

namespace {

std::string list(const std::vector<std::string>& v, std::size_t max = 12) {
  std::string s;
  for (std::size_t i = 0; i < v.size() && i < max; ++i) s.append(i ? ", " : "").append(v[i]);
  if (v.size() > max) s.append(", ... (").append(std::to_string(v.size())).append(")");
  return s;
}

// The summary of a network: one forward pass of a zero example of the model's input shape (when known).
bp::io::ModelSummary summary_of(const bp::io::ModelFile& m, bp::nn::Module& net, const std::string& path) {
  try {
    return bp::io::summary(net, m.input_shape);
  } catch (const bp::OutOfMemoryError&) {
    throw;
  } catch (const bp::Error& e) {
    throw bp::FileError(path + ": one forward pass of a zero example of the input shape " +
                        bp::to_string(m.input_shape) + " failed: " + e.what());
  }
}

}  // namespace

int run_info(const InfoArgs& a) {
  const bp::io::NamedTensors file = bp::io::load_safetensors(a.file);
  const bp::io::ModelFile m = bp::io::from_named(file, a.file, "optimizer.");
  const bool is_checkpoint =
      file.metadata.count("format") && file.metadata.at("format") == bp::io::kCheckpointFormat;
  const auto net = bp::io::build_module(m, a.file);
  const bp::io::Architecture& arch = m.architecture;
  const bool from_code = arch.inputs == 0;  // a network saved by io::save_model(path, module)
  const bp::io::ModelSummary sum = summary_of(m, *net, a.file);
  const std::vector<bp::io::SummaryRow>& rows = sum.rows;
  const std::int64_t buffers = sum.buffer_elements;
  const bp::io::Preprocessing& pre = m.preprocessing;
  const json training = json::parse(m.training_json, nullptr, false);

  json tensors = json::array();
  for (const auto& [name, t] : file.tensors)
    tensors.push_back(
        {{"name", name}, {"shape", t.shape()}, {"dtype", t.dtype() == bp::f64 ? "F64" : "F32"}});
  json modules = json::array();
  for (const auto& [name, mod] : net->named_children()) modules.push_back(name + ": " + mod->repr());
  json summary = json::array();
  for (const bp::io::SummaryRow& r : rows)
    summary.push_back(
        {{"name", r.name}, {"type", r.type}, {"output_shape", r.output_shape}, {"parameters", r.parameters}});
  json out = {{"file", a.file},
              {"kind", is_checkpoint ? "checkpoint" : "model"},
              {"network", from_code ? rows.front().type : bp::io::describe(arch)},
              {"parameters", net->num_parameters()},
              {"trainable_parameters", net->num_parameters()},
              {"buffer_elements", buffers},
              {"input_shape", m.input_shape},
              {"summary", summary},
              {"module", json::parse(m.module_tree.empty() ? bp::io::module_tree(*net) : m.module_tree)},
              {"modules", modules},
              {"training", training.is_discarded() ? json::object() : training},
              {"tensors", tensors}};
  if (!from_code)
    out["architecture"] = {{"inputs", arch.inputs},           {"hidden", arch.hidden},
                           {"outputs", arch.outputs},         {"activation", arch.activation},
                           {"batchnorm", arch.batchnorm},     {"dropout", arch.dropout},
                           {"dropconnect", arch.dropconnect}, {"init", arch.init}};
  if (m.has_preprocessing)
    out["preprocessing"] = {{"task", pre.task},
                            {"input", pre.input},
                            {"pixel_scale", pre.pixel_scale},
                            {"image_shape", pre.image_shape},
                            {"standardize", pre.mean.defined()},
                            {"class_names", pre.class_names},
                            {"feature_names", pre.feature_names},
                            {"target", pre.target}};
  bp::io::Checkpoint ck;
  if (is_checkpoint) {
    ck = bp::io::load_checkpoint(a.file);
    out["checkpoint"] = {{"epoch", ck.trainer.epoch},
                         {"step", ck.trainer.step},
                         {"optimizer_entries", ck.trainer.optimizer.size()}};
  }
  if (a.json) {
    std::cout << out.dump(2) << "\n";
    return kOk;
  }

  std::printf("file        %s (%s)\n", a.file.c_str(), is_checkpoint ? "checkpoint" : "model");
  if (is_checkpoint)
    std::printf("checkpoint  after epoch %lld, step %lld; optimiser state: %zu tensors\n",
                static_cast<long long>(ck.trainer.epoch), static_cast<long long>(ck.trainer.step),
                ck.trainer.optimizer.size());
  std::string extras;
  if (arch.batchnorm) extras += ", batchnorm";
  if (arch.dropout > 0) extras += ", dropout " + number_text(arch.dropout);
  if (arch.dropconnect > 0) extras += ", dropconnect " + number_text(arch.dropconnect);
  if (from_code && !training.is_discarded() && training.contains("network") &&
      training["network"].is_string())
    std::printf("network     %s\n", training["network"].get<std::string>().c_str());
  else if (from_code)
    std::printf("network     %s (saved from code)\n", rows.front().type.c_str());
  else
    std::printf("network     %s, %s%s, init %s\n", bp::io::describe(arch).c_str(), arch.activation.c_str(),
                extras.c_str(), arch.init.c_str());
  std::printf("parameters  %s\n", bp::io::with_commas(net->num_parameters()).c_str());
  std::printf("summary     output shapes for one example of zeros, input %s\n",
              m.input_shape.empty() ? "shape unknown (saved without input_shape)"
                                    : ("[1, " + bp::to_string(m.input_shape).substr(1)).c_str());
  std::fputs(sum.table().c_str(), stdout);
  std::printf("layers\n");
  for (const auto& [name, mod] : net->named_children())
    std::printf("  (%s) %s\n", name.c_str(), mod->repr().c_str());
  std::printf("tensors\n");
  for (const auto& [name, t] : file.tensors)
    std::printf("  %-28s %-12s %s\n", name.c_str(), bp::to_string(t.shape()).c_str(),
                t.dtype() == bp::f64 ? "F64" : "F32");
  if (!m.has_preprocessing)
    std::printf("input       no preprocessing saved (eval and predict need it)\n");
  else if (pre.input == "image")
    std::printf("input       images %s, pixel values x %.6g\n",
                pre.image_shape.size() == 2
                    ? (std::to_string(pre.image_shape[0]) + "x" + std::to_string(pre.image_shape[1])).c_str()
                    : "",
                pre.pixel_scale);
  else
    std::printf("input       table of %lld features%s%s%s\n",
                static_cast<long long>(m.input_shape.empty() ? arch.inputs : m.input_shape.front()),
                pre.mean.defined() ? ", standardised" : "", pre.feature_names.empty() ? "" : ": ",
                list(pre.feature_names).c_str());
  if (m.has_preprocessing && pre.task == "classification")
    std::printf("task        classification, %zu classes: %s\n", pre.class_names.size(),
                list(pre.class_names).c_str());
  else if (m.has_preprocessing)
    std::printf("task        regression%s%s\n", pre.target.empty() ? "" : " of ", pre.target.c_str());
  if (!training.is_discarded() && !training.empty()) {
    std::printf("training    %s", training.value("status", "unknown").c_str());
    if (training.contains("epochs_run"))
      std::printf(", %lld epochs", training["epochs_run"].get<long long>());
    if (training.contains("optimizer"))
      std::printf(", %s lr %s", training["optimizer"].get<std::string>().c_str(),
                  number_text(training.value("lr", 0.0)).c_str());
    if (training.contains("seed")) std::printf(", seed %lld", training["seed"].get<long long>());
    std::printf("\n");
    if (training.contains("test") && training["test"].contains("accuracy") &&
        training["test"]["accuracy"].is_number())
      std::printf("test        accuracy %.2f%%, loss %.4f on %lld examples\n",
                  100 * training["test"]["accuracy"].get<double>(), training["test"].value("loss", 0.0),
                  training["test"].value("examples", 0LL));
  }
  return kOk;
}

int run_report(const std::string& run_dir, bool quiet) {
  std::error_code ec;
  BP_CHECK(std::filesystem::is_directory(run_dir, ec), FileError, run_dir,
           ": not a run folder (no such directory)");
  bp::io::write_report(run_dir);
  if (!quiet) std::printf("wrote %s\n", (std::filesystem::path(run_dir) / "report.html").c_str());
  return kOk;
}

}  // namespace cli
