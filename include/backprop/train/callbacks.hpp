// backprop/train/callbacks.hpp — the library's training callbacks: a progress bar, the metrics log, model
// checkpoints. `backprop train` uses exactly these.
//
// Example:
//   bp::io::MetricsWriter log("runs/a/metrics.jsonl");
//   bp::train::MetricsLog metrics(log);                            // epoch and gradient-flow records
//   bp::train::ProgressBar progress(stderr);                       // a bar on a terminal, else per epoch
//   bp::io::ModelFile description{.architecture = {.inputs = 784, .hidden = {256}, .outputs = 10}};
//   bp::train::ModelCheckpoint checkpoints("runs/a/checkpoints", description, {.every = 5});
//   bp::train::fit(net, loss, opt, train, {.epochs = 30, .callbacks = {&metrics, &progress, &checkpoints}});
//
// Early stopping (with restoring the best weights) is FitOptions::early_stopping_patience / restore_best and
// ReduceLROnPlateau is FitOptions::plateau: their bookkeeping is part of the Trainer's state, so a checkpoint
// carries it and a resumed run stops and lowers the lr exactly where an uninterrupted one would.
#pragma once

#include <backprop/io/checkpoint.hpp>
#include <backprop/io/metrics.hpp>
#include <backprop/train.hpp>
#include <chrono>
#include <cstdio>
#include <string>

namespace backprop::train {

/// On a terminal: a bar redrawn in place (epoch, batch, loss, accuracy, samples/s, ETA of the run), at most
/// every 100 ms. Otherwise one plain line per epoch. Writes to `out` (stderr, so stdout stays for results).
class ProgressBar : public Callback {
 public:
  /// tty: draw the bar; by default when `out` is a terminal.
  explicit ProgressBar(std::FILE* out = stderr);
  ProgressBar(std::FILE* out, bool tty);
  void on_train_begin(std::int64_t epochs, std::int64_t batches_per_epoch) override;
  void on_epoch_begin(std::int64_t epoch) override;
  void on_batch_end(const StepInfo& info) override;
  bool on_epoch_end(const EpochMetrics& m) override;

 private:
  using Clock = std::chrono::steady_clock;
  std::FILE* out_;
  bool tty_;
  std::int64_t first_epoch_ = 0, epochs_ = 0, batches_ = 0;
  Clock::time_point start_, last_draw_;
  std::int64_t batches_done_ = 0, samples_ = 0;
  double loss_sum_ = 0, correct_ = 0;
  std::int64_t seen_ = 0;
  bool drawn_ = false;
};

/// Appends epoch and gradient-flow records to a metrics log (io/metrics.hpp) as training goes.
class MetricsLog : public Callback {
 public:
  explicit MetricsLog(io::MetricsWriter& writer);
  void on_grad_flow(const GradFlowRecord& record) override;
  bool on_epoch_end(const EpochMetrics& m) override;

 private:
  io::MetricsWriter& writer_;
};

struct CheckpointOptions {
  std::int64_t every = 1;  // a checkpoint every N epochs and after the last epoch (0 = only when interrupted)
  int keep = 3;            // checkpoints kept in the directory (0 = all)
  /// Also saves the model file (weights only, io::save_model) here whenever the validation loss reaches a
  /// new best ("" = off).
  std::string best_model;
};

/// Writes the Trainer's state as checkpoints: DIR/epoch-NNNN.safetensors every `every` epochs and after the
/// last, and, when fit() is interrupted (FitOptions::stop), a mid-epoch checkpoint of exactly that point;
/// DIR/latest names the newest (io::write_checkpoint: temporary file, fsync, rename, so a crash at any moment
/// leaves a complete checkpoint). `model` describes the network (architecture, preprocessing, config); its
/// weights are taken from the Trainer each time.
class ModelCheckpoint : public Callback {
 public:
  ModelCheckpoint(std::string dir, io::ModelFile model, CheckpointOptions options = {});
  bool on_epoch_end(const EpochMetrics& m) override;
  void on_train_end(const History& history) override;
  /// Checkpoints written so far, and the path of the last one ("" before the first).
  std::int64_t written() const { return written_; }
  const std::string& last_path() const { return last_path_; }

 private:
  void save();
  std::string dir_;
  io::ModelFile model_;
  CheckpointOptions options_;
  std::int64_t epochs_ = 0, written_ = 0;
  double best_ = std::numeric_limits<double>::infinity();
  std::string last_path_;
};

/// "1:02:03" / "2:03" for a duration in seconds.
std::string clock_text(double seconds);

}  // namespace backprop::train
