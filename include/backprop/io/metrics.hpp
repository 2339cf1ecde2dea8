// backprop/io/metrics.hpp — a training run's log, RUN/metrics.jsonl: one JSON object per line.
//
// Three kinds of line, told apart by "type":
//   {"type": "epoch", "epoch": 3, "train_loss": 0.41, "train_accuracy": 0.85, "val_loss": 0.43,
//    "val_accuracy": 0.84, "lr": 0.05, "updates": 422, "seconds": 4.1, "samples_per_second": 13100}
//   {"type": "grad_flow", "epoch": 3, "step": 900, "layers": [{"name": "0.weight", "grad_norm": 0.12,
//    "weight_norm": 9.8, "activation": "relu", "saturated_fraction": 0, "dead_fraction": 0.02}, ...]}
//   {"type": "test", "loss": 0.33, "accuracy": 0.89, "examples": 10000, "class_names": [...],
//    "per_class_accuracy": [...], "confusion": [[true class 0's predictions], ...],
//    "misclassified": [{"index": 12, "true": 6, "predicted": 0, "pixels": [0..1 row-major], "shape": [28,
//    28]},
//    ...]}   (pixels and shape only for image data)
// With more than kFullConfusionClasses classes a test record holds, instead of "confusion", its
// kTopConfusions largest off-diagonal cells: "top_confusions": [{"true": 3, "predicted": 7, "count": 12}, ...]
// (the full matrix grows with the square of the class count).
// A value that does not exist (no validation set, accuracy in regression) is null. Lines are appended and
// flushed as training goes, so the file can be followed live (tail -f); a reader skips a last line cut off by
// a crash.
//
// Example:
//   bp::io::MetricsWriter log("runs/demo/metrics.jsonl");
//   log.epoch({.epoch = 1, .train_loss = 0.52, .lr = 0.05});
//   bp::io::Metrics m = bp::io::read_metrics("runs/demo/metrics.jsonl");   // m.epochs[0].train_loss == 0.52
#pragma once

#include <backprop/train/state.hpp>
#include <cstdint>
#include <cstdio>
#include <limits>
#include <optional>
#include <string>
#include <vector>

namespace backprop::io {

inline constexpr double kMissing = train::kNone;  // written as null

/// The records of the log are the training loop's own (train/state.hpp).
using EpochRecord = train::EpochMetrics;
using LayerGradient = train::LayerFlow;
using GradFlowEntry = train::GradFlowRecord;

/// A test example the model got wrong (for the report's grid of images).
struct Misclassified {
  std::int64_t index = 0;  // row in the test set
  std::int64_t true_class = 0;
  std::int64_t predicted = 0;
  std::vector<double> pixels;       // row-major in [0, 1]; empty for tabular data
  std::vector<std::int64_t> shape;  // [height, width] with pixels
};

/// A cell of a confusion matrix: how often an example of class `true_class` was predicted as `predicted`.
struct Confusion {
  std::int64_t true_class = 0;
  std::int64_t predicted = 0;
  std::int64_t count = 0;
};

/// Up to this many classes, test records, summaries and reports hold the whole confusion matrix; with more,
/// only its kTopConfusions largest off-diagonal cells and the per-class accuracy.
inline constexpr std::size_t kFullConfusionClasses = 50;
inline constexpr std::size_t kTopConfusions = 100;

/// The `n` largest off-diagonal cells of `confusion` ([true class][predicted class]), largest first (ties in
/// row-major order); cells of 0 are left out.
std::vector<Confusion> top_confusions(const std::vector<std::vector<std::int64_t>>& confusion,
                                      std::size_t n = kTopConfusions);

struct TestRecord {
  double loss = kMissing;
  double accuracy = kMissing;
  std::int64_t examples = 0;
  std::vector<std::string> class_names;
  std::vector<double> per_class_accuracy;
  std::vector<std::vector<std::int64_t>> confusion;  // [true class][predicted class]
  std::vector<Misclassified> misclassified;          // a sample of the errors
  /// Read back from a record of more than kFullConfusionClasses classes, whose `confusion` is then empty.
  /// When writing, a record with a `confusion` matrix of more classes gets its top_confusions() instead.
  std::vector<Confusion> top_confusions;
};

struct Metrics {
  std::vector<EpochRecord> epochs;
  std::vector<GradFlowEntry> grad_flow;
  std::optional<TestRecord> test;
};

/// Appends records to a metrics file, one line each, flushed at once.
class MetricsWriter {
 public:
  /// Opens `path` for appending (creating it; truncating it first when `truncate`). Throws FileError naming
  /// the path when it cannot be opened.
  explicit MetricsWriter(const std::string& path, bool truncate = false);
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

  void epoch(const EpochRecord& record);
  void grad_flow(const GradFlowEntry& record);
  void test(const TestRecord& record);
  /// Throws FileError when a write failed (disk full, ...).
  void line(const std::string& json_object);

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
};

/// Reads a metrics file. Skips a last line without its newline that is not valid JSON (a crash mid-write)
/// and lines of an unknown "type". Throws FileError "path:line: ..." for any other line that is not a JSON
/// object with the fields of its type.
Metrics read_metrics(const std::string& path);

/// Keeps only the records of epochs <= `epoch` (and drops test records and any partial line), rewriting the
/// file crash-safely: what a resumed run does before it continues after epoch `epoch`. A missing file is
/// left missing.
void truncate_metrics(const std::string& path, std::int64_t epoch);
/// The same for a checkpoint taken mid-epoch, after update `step` of epoch `epoch + 1`: also keeps the
/// gradient-flow records of epoch `epoch + 1` measured at steps <= `step` (the resumed run continues after
/// them and does not measure them again).
void truncate_metrics(const std::string& path, std::int64_t epoch, std::int64_t step);

/// The JSON text of each record (one line, no newline).
std::string to_json(const EpochRecord& record);
std::string to_json(const GradFlowEntry& record);
std::string to_json(const TestRecord& record);

}  // namespace backprop::io
