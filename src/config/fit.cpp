// fit_to_data: the defaults, adapted to the size of the training data for the keys the user did not give.
#include <algorithm>
#include <backprop/config.hpp>
#include <backprop/error.hpp>
#include <cmath>

#include "config/keys.hpp"

namespace backprop::config {

namespace {

constexpr std::int64_t kLargestBatch = 128;  // the default batch, kept for large data
constexpr std::int64_t kSmallestBatch = 16;
constexpr std::int64_t kRowsPerBatch = 32;    // the batch is at most rows / 32 (within the two bounds)
constexpr std::int64_t kSmallTable = 1000;    // up to this: no validation split
constexpr std::int64_t kUpdateBudget = 5000;  // updates the epochs aim for
constexpr std::int64_t kFewestEpochs = 30, kMostEpochs = 200;
constexpr std::int64_t kPresetEpochs = 15;  // the image presets' epochs, as measured in docs/cli.md
constexpr std::int64_t kCnnBatch = 64;      // the cnn preset's batch and augmentation (docs/cli.md)
constexpr const char* kCnnAugment = "flip";

bool is_given(const std::vector<std::string>& given, const std::string& key) {
  return std::find(given.begin(), given.end(), key) != given.end();
}

std::int64_t largest_power_of_two_at_most(std::int64_t v) {
  std::int64_t p = 1;
  while (p * 2 <= v) p *= 2;
  return p;
}

}  // namespace

FittedDefaults fit_to_data(Config& config, const DataShape& shape, const std::vector<std::string>& given) {
  const std::int64_t n = shape.rows;
  BP_CHECK(n >= 1, ConfigError, "fit_to_data: the training data has ", n, " rows; expected at least 1");
  for (const std::string& key : given)
    BP_CHECK(detail::find(key) != nullptr, ConfigError, "fit_to_data: unknown key '", key,
             "' among the given keys");
  const Config before = config;
  FittedDefaults out;
  auto note = [&](const std::string& key, const std::string& phrase) {
    if (get(before, key) != get(config, key)) out.choices.push_back(phrase);
  };

  TrainConfig& t = config.train;
  if (!is_given(given, "train.batch_size"))
    t.batch_size = std::clamp(largest_power_of_two_at_most(n / kRowsPerBatch), kSmallestBatch, kLargestBatch);
  note("train.batch_size", "batch " + std::to_string(t.batch_size));

  if (!is_given(given, "data.val_split") && n <= kSmallTable) config.data.val_split = 0.0;
  note("data.val_split", "no validation split (all " + std::to_string(n) + " rows train)");

  // The rows left for training after the split, counted as train_validation_split counts them (at least 1:
  // a split that leaves none is the data loader's error to report).
  const std::int64_t train_rows = std::max<std::int64_t>(
      1, n - static_cast<std::int64_t>(std::llround(static_cast<double>(n) * config.data.val_split)));
  const std::int64_t batch = t.batch_size == 0 ? train_rows : std::min(t.batch_size, train_rows);
  const std::int64_t updates_per_epoch = (train_rows + batch - 1) / batch;
  // No early stopping is added: on the validation loss it stopped too soon on tables (docs/train.md).
  if (!is_given(given, "train.epochs")) {
    const std::int64_t epochs = (kUpdateBudget + updates_per_epoch - 1) / updates_per_epoch;
    t.epochs = std::clamp(epochs, kFewestEpochs, kMostEpochs);
  }
  note("train.epochs", std::string(t.early_stopping > 0 ? "up to " : "") + std::to_string(t.epochs) +
                           " epochs (" + std::to_string(updates_per_epoch * t.epochs) + " updates)");

  if (!out.choices.empty()) {
    out.summary = "defaults for " + std::to_string(n) + " rows:";
    for (std::size_t i = 0; i < out.choices.size(); ++i) out.summary += (i ? ", " : " ") + out.choices[i];
  }
  return out;
}

FittedDefaults preset_defaults(Config& config, const std::vector<std::string>& given, bool images) {
  for (const std::string& key : given)
    BP_CHECK(detail::find(key) != nullptr, ConfigError, "preset_defaults: unknown key '", key,
             "' among the given keys");
  FittedDefaults out;
  const std::string& arch = config.model.arch;
  if (arch != "lenet5" && arch != "cnn") return out;
  if (!is_given(given, "train.epochs") && config.train.epochs != kPresetEpochs) {
    config.train.epochs = kPresetEpochs;
    out.choices.push_back(std::to_string(kPresetEpochs) + " epochs");
  }
  if (arch == "cnn" && !is_given(given, "train.batch_size") && config.train.batch_size != kCnnBatch) {
    config.train.batch_size = kCnnBatch;
    out.choices.push_back("batch " + std::to_string(kCnnBatch));
  }
  if (arch == "cnn" && images && !is_given(given, "data.augment") && config.data.augment.empty()) {
    config.data.augment = kCnnAugment;
    out.choices.push_back(std::string("augment ") + kCnnAugment);
  }
  if (!out.choices.empty()) {
    out.summary = "defaults for the " + arch + " preset:";
    for (std::size_t i = 0; i < out.choices.size(); ++i) out.summary += (i ? ", " : " ") + out.choices[i];
  }
  return out;
}

}  // namespace backprop::config
