// A synthetic run folder for the report tests: metrics.jsonl in the documented record format (docs/report.md)
// with curves shaped like a real run that overfits, a sigmoid network whose gradients vanish layer by layer,
// and a test record with a confusion matrix and misclassified images; plus a config.toml.
#pragma once

#include <backprop/generator.hpp>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace report_test {

struct SyntheticRun {
  int epochs = 12;
  bool validation = true;
  bool grad_flow = true;
  bool test = true;
  bool pixels = true;
  int misclassified = 20;
  std::string config = "# run config\n[train]\nepochs = 12\nlr = 0.1\nnote = \"a < b && c > d\"\n";
  std::uint64_t seed = 3;
};

inline const std::vector<std::string>& fashion_classes() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                 "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

/// Writes dir/metrics.jsonl (and dir/config.toml when config is non-empty); returns the metrics lines.
inline std::vector<std::string> write_synthetic_run(const std::filesystem::path& dir,
                                                    const SyntheticRun& run = {}) {
  using nlohmann::json;
  std::filesystem::create_directories(dir);
  backprop::Generator gen(run.seed);
  std::vector<std::string> lines;
  const std::vector<std::string> layers = {"0.weight", "2.weight", "4.weight", "6.weight"};
  for (int e = 1; e <= run.epochs; ++e) {
    // Training loss keeps falling; validation loss bottoms out around epoch 6 and rises again.
    const double train = 0.25 + 0.9 * std::exp(-0.35 * e) + 0.005 * gen.normal();
    const double val = 0.30 + 0.8 * std::exp(-0.5 * e) + 0.012 * std::max(0, e - 5) + 0.003 * gen.normal();
    if (run.grad_flow) {
      for (int s = 0; s < 2; ++s) {
        json ls = json::array();
        for (std::size_t l = 0; l < layers.size(); ++l) {
          // Sigmoid layers: each layer down gets a gradient about 4x smaller.
          const double norm = 0.8 * std::pow(0.25, static_cast<double>(layers.size() - 1 - l)) *
                              std::exp(-0.05 * e) * (1 + 0.1 * gen.normal());
          ls.push_back({{"name", layers[l]},
                        {"grad_norm", norm},
                        {"weight_norm", 4.0 + 0.1 * e},
                        {"activation", l + 1 == layers.size() ? "" : "sigmoid"},
                        {"saturated_fraction", 0.02 * e / run.epochs},
                        {"dead_fraction", 0.0}});
        }
        lines.push_back(json{
            {"type", "grad_flow"},
            {"epoch", e},
            {"step", (e - 1) * 100 + 50 * (s + 1)},
            {"layers", ls}}.dump());
      }
    }
    json rec = {{"type", "epoch"},     {"epoch", e},
                {"train_loss", train}, {"train_accuracy", 1.0 - train / 2.2},
                {"lr", 0.1},           {"seconds", 1.5 + 0.1 * gen.uniform()}};
    if (run.validation) {
      rec["val_loss"] = val;
      rec["val_accuracy"] = 1.0 - val / 2.4;
    } else {
      rec["val_loss"] = nullptr;
      rec["val_accuracy"] = nullptr;
    }
    lines.push_back(rec.dump());
  }
  if (run.test) {
    const auto& names = fashion_classes();
    const std::size_t k = names.size();
    json confusion = json::array();
    for (std::size_t r = 0; r < k; ++r) {
      json row = json::array();
      for (std::size_t c = 0; c < k; ++c)
        row.push_back(r == c ? 800 + static_cast<int>(gen.below(150))
                             : static_cast<int>(gen.below(r == 6 ? 60 : 12)));
      confusion.push_back(row);
    }
    json wrong = json::array();
    for (int i = 0; i < run.misclassified; ++i) {
      json m = {{"index", 17 * i + 3}, {"true", i % 10}, {"predicted", (i * 3 + 1) % 10}};
      if (run.pixels) {
        std::vector<double> px(784);
        for (int y = 0; y < 28; ++y)
          for (int x = 0; x < 28; ++x) {
            const double d = std::hypot(x - 13.5, y - 13.5);
            px[static_cast<std::size_t>(y * 28 + x)] =
                std::clamp(1.2 - d / (6.0 + i % 7) + 0.1 * gen.uniform(), 0.0, 1.0);
          }
        m["pixels"] = px;
      }
      wrong.push_back(m);
    }
    lines.push_back(json{
        {"type", "test"},
        {"loss", 0.41},
        {"accuracy", 0.853},
        {"confusion", confusion},
        {"class_names", names},
        {"misclassified",
         wrong}}.dump());
  }
  std::ofstream metrics(dir / "metrics.jsonl");
  for (const std::string& l : lines) metrics << l << "\n";
  if (!run.config.empty()) std::ofstream(dir / "config.toml") << run.config;
  return lines;
}

}  // namespace report_test
