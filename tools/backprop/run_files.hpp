// summary.json of a `backprop train` run, and its test record. The run folder itself (its files, the rule that
// keeps an earlier run safe) is the library's: backprop/io/run_folder.hpp.
#pragma once

#include <backprop/config.hpp>
#include <backprop/io/metrics.hpp>
#include <backprop/io/model_file.hpp>
#include <backprop/io/run_folder.hpp>
#include <backprop/loss.hpp>
#include <backprop/train.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data_source.hpp"

namespace cli {

/// summary.json, built as the run goes.
class Summary {
 public:
  /// `network` describes it in a few words ("784-256-128-10", "cnn (13 layers)"); `activation` is the dense
  /// layers' activation, "" for a layer list.
  Summary(const std::string& run_dir, const backprop::config::Config& config, const TrainingData& data,
          const std::string& network, const std::string& activation, std::int64_t parameters);
  void diverged(const std::string& message, double seconds);
  /// Status, epochs and final metrics (the counts include what a resumed run had done before).
  void history(const backprop::train::History& history);
  /// Status "interrupted": by which signal, at which epoch and update, the checkpoint that continues it.
  void interrupted(const std::string& signal, std::int64_t epoch, std::int64_t step,
                   const std::string& checkpoint, double seconds);
  void test(const backprop::io::TestRecord& test, backprop::nn::Module& net,
            const backprop::data::TensorDataset& data);
  void finish(double seconds);
  /// The folder the run ends up in, when not the one it was written to (a staged run, see replace_run).
  void set_run_dir(const std::string& dir);
  std::string json_text() const;
  /// The part stored in the model file's "training" metadata (no confusion matrix).
  std::string training_json() const;
  /// The human summary printed at the end of a run.
  std::string text() const;

 private:
  nlohmann::json j_;
  std::string run_dir_;
};

/// The test record of `evaluation` (train::evaluate or dist::evaluate of `net` on `test`: loss, accuracy,
/// confusion matrix) with up to 32 misclassified examples (with pixels for image data) found by predicting
/// `test` in this process.
backprop::io::TestRecord evaluate_test(backprop::nn::Module& net,
                                       const backprop::train::Evaluation& evaluation,
                                       const backprop::data::TensorDataset& test,
                                       const backprop::io::Preprocessing& preprocessing);

double seconds_since(std::chrono::steady_clock::time_point start);
/// Shortest text of a number ("0.2", "1e-05").
std::string number_text(double v);
/// "784-256-128-10".
std::string layers_text(const backprop::io::Architecture& a);

}  // namespace cli
