// The training callbacks of `backprop train`: progress on the terminal, the metrics log, checkpoints.
#pragma once

#include <backprop/io/checkpoint.hpp>
#include <backprop/io/metrics.hpp>
#include <backprop/train.hpp>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <string>

namespace cli {

/// On a terminal: a bar redrawn in place (epoch, batch, loss, accuracy, samples/s, ETA of the run). Otherwise
/// one plain line per epoch. Writes to `out` (stderr), so stdout stays for results.
class Progress : public backprop::train::Callback {
 public:
  Progress(std::FILE* out, bool tty, std::int64_t first_epoch);
  void on_train_begin(std::int64_t epochs, std::int64_t batches_per_epoch) override;
  void on_epoch_begin(std::int64_t epoch) override;
  void on_batch_end(const backprop::train::StepInfo& info) override;
  bool on_epoch_end(const backprop::train::EpochMetrics& m) override;

 private:
  using Clock = std::chrono::steady_clock;
  std::FILE* out_;
  bool tty_;
  std::int64_t first_epoch_, epochs_ = 0, batches_ = 0;
  Clock::time_point start_, last_draw_;
  std::int64_t batches_done_ = 0, samples_ = 0;
  double loss_sum_ = 0, correct_ = 0;
  std::int64_t seen_ = 0;
  bool drawn_ = false;
};

/// Appends epoch and gradient-flow records to metrics.jsonl (fit() numbers steps globally, across a resume).
class MetricsLogger : public backprop::train::Callback {
 public:
  explicit MetricsLogger(backprop::io::MetricsWriter& writer);
  void on_grad_flow(const backprop::train::GradFlowRecord& record) override;
  bool on_epoch_end(const backprop::train::EpochMetrics& m) override;

 private:
  backprop::io::MetricsWriter& writer_;
};

/// Every `every` epochs (and after the last one) writes RUN/checkpoints/epoch-NNNN.safetensors and updates
/// `latest`. `make` fills in the model part and the optimiser / scheduler / RNG state; this callback adds the
/// counters and the early-stopping state, tracked as fit() tracks it: since_best counts only with a patience,
/// and then `snapshot` (the model's state_dict, cloned) keeps the best epoch's weights for the checkpoint.
/// `best_state`: those of a resumed run's checkpoint.
class Checkpointer : public backprop::train::Callback {
 public:
  using Maker = std::function<backprop::io::Checkpoint()>;
  using Snapshot = std::function<std::map<std::string, backprop::Tensor>()>;
  Checkpointer(std::string dir, std::int64_t every, std::int64_t last_epoch, std::int64_t start_step,
               backprop::train::EarlyStoppingState early, std::int64_t patience,
               std::map<std::string, backprop::Tensor> best_state, Maker make, Snapshot snapshot);
  void on_batch_end(const backprop::train::StepInfo& info) override;
  bool on_epoch_end(const backprop::train::EpochMetrics& m) override;
  std::int64_t written() const { return written_; }

 private:
  std::string dir_;
  std::int64_t every_, last_epoch_, step_;
  backprop::train::EarlyStoppingState early_;
  std::int64_t patience_;
  std::map<std::string, backprop::Tensor> best_state_;
  Maker make_;
  Snapshot snapshot_;
  std::int64_t written_ = 0;
};

/// "1:02:03" / "2:03" for a duration in seconds.
std::string clock_text(double seconds);

}  // namespace cli
