// backprop/io/run_summary.hpp — summary.json of a run folder (backprop/io/run_folder.hpp): what was trained on
// what, how the run ended, its final and test metrics; the few lines printed when a run ends; and the test
// record of metrics.jsonl (test_record(), with the examples a classifier got wrong, for the report).
//
// summary.json is one JSON object; docs/cli.md lists its keys. "status" is "running" until the run ends, then
// "completed", "stopped_early", "interrupted" or "diverged". A value that does not exist (no validation set,
// accuracy in regression) is null. The same object, less the run folder and the confusion matrix, is what
// `backprop train` stores as a model file's "training" metadata (training_json()).
//
// Example:
//   bp::io::RunSummary summary("runs/demo", {.data_source = "train.csv", .task = "classification",
//                                            .train_examples = 540, .network = "4-16-3",
//                                            .optimizer = "adam", .lr = 0.001, .batch_size = 32,
//                                            .epochs_planned = 30});
//   bp::train::History history;                    // what Trainer::fit() returned
//   summary.history(history);
//   summary.finish(12.5);                          // seconds
//   std::string json = summary.json_text();       // for RunFolder::write_summary (io/run_folder.hpp)
//   std::string lines = summary.text();            // "trained 0 epochs in ...", the run folder
#pragma once

#include <backprop/io/metrics.hpp>
#include <backprop/train.hpp>
#include <backprop/train/metrics.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace backprop::io {

/// The test record of `evaluation` (train::evaluate or dist::evaluate of `model` on `test`: loss, accuracy,
/// confusion matrix) with the first `max_misclassified` test examples a classifier gets wrong, found by
/// predicting `test` (train::predict). With `image_shape` [height, width] each carries its pixels, clamped to
/// [0, 1] and rounded to 3 digits, for the report's grid of images. A regression record has none.
TestRecord test_record(nn::Module& model, const train::Evaluation& evaluation,
                       const data::TensorDataset& test, const std::vector<std::string>& class_names,
                       const std::vector<std::int64_t>& image_shape = {}, std::size_t max_misclassified = 32);

/// What a run trains, on what: the fields summary.json has from the start.
struct RunDescription {
  std::string data_source;  // "data" -> "source": "fashion-mnist", a folder or a file
  std::string task;         // "classification" or "regression"
  std::int64_t train_examples = 0;
  std::int64_t validation_examples = 0;
  std::int64_t test_examples = 0;
  std::string network;     // in a few words: "784-256-128-10", "cnn (13 layers)"
  std::string activation;  // the dense layers' activation; "" for a layer list
  std::int64_t parameters = 0;
  std::string optimizer;
  double lr = 0;
  std::int64_t batch_size = 0;  // 0: the full batch (written as "full")
  std::uint64_t seed = 0;
  std::int64_t epochs_planned = 0;
};

/// summary.json, built as the run goes.
class RunSummary {
 public:
  RunSummary(const std::string& run_dir, const RunDescription& run);
  ~RunSummary();
  RunSummary(const RunSummary& other);
  RunSummary& operator=(const RunSummary& other);

  /// Status "diverged", with the error's message and the seconds run.
  void diverged(const std::string& message, double seconds);
  /// Status, epochs and final metrics (the counts include what a resumed run had done before).
  void history(const train::History& history);
  /// Status "interrupted": by which signal, at which epoch and update, the checkpoint that continues it.
  void interrupted(const std::string& signal, std::int64_t epoch, std::int64_t step,
                   const std::string& checkpoint, double seconds);
  /// The test results: for a classifier (no `errors`) loss, accuracy, per-class accuracy and the confusion
  /// matrix (its top_confusions() beyond kFullConfusionClasses classes); for regression, loss and `errors`.
  void test(const TestRecord& test, const std::optional<train::RegressionMetrics>& errors = std::nullopt);
  void finish(double seconds);
  /// The folder the run ends up in, when not the one it was written to (a staged run, see replace_run).
  void set_run_dir(const std::string& dir);

  /// summary.json's text (indented by 2).
  std::string json_text() const;
  /// One line of JSON without the run folder and the confusion matrix: a model file's "training" metadata.
  std::string training_json() const;
  /// The lines printed at the end of a run: epochs and time, the final train / validation metrics, the test
  /// metrics, the run folder.
  std::string text() const;

 private:
  struct Json;
  std::unique_ptr<Json> j_;
  std::string run_dir_;
};

}  // namespace backprop::io
