// Internal: the bookkeeping that train::fit() and dist::fit() share for interruption, mid-epoch resume and
// early stopping, so both loops follow one contract (docs/train.md, "Interrupting and resuming").
#pragma once

#include <backprop/train.hpp>
#include <cstdint>
#include <map>
#include <string>

namespace backprop::train::detail {

/// Checks the resume fields of `o` against an epoch of `num_batches` batches. `who` names the caller
/// ("fit", "dist::fit") in the ValueError.
void check_resume_options(const FitOptions& o, std::int64_t num_batches, const char* who);

/// Where epoch `epoch` (0-based) starts: options.start_progress for the first epoch of a mid-epoch resume,
/// zeros otherwise.
EpochProgress epoch_start(const FitOptions& o, std::int64_t epoch);

/// Best validation loss, patience counter and (with restore_best) the best weights, across calls.
class EarlyStopper {
 public:
  explicit EarlyStopper(const FitOptions& o);
  /// After the validation of epoch m: records a new best (snapshotting the weights when they may be restored)
  /// or counts an epoch without improvement. True when the patience has run out.
  bool epoch_end(const EpochMetrics& m, const nn::Module& model);
  /// Fills history's best_epoch, stopped_early, early_stopping, best_state and restored_best, restoring the
  /// best weights when training stopped early and they are held.
  void finish(nn::Module& model, History& history);

 private:
  const FitOptions& options_;
  EarlyStoppingState state_;
  std::map<std::string, Tensor> best_;
  bool stopped_ = false;
};

}  // namespace backprop::train::detail
