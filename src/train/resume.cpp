// Early-stopping state and resume checks shared by train::fit() and dist::fit().
#include "train/resume.hpp"

#include <backprop/autograd.hpp>
#include <cmath>

namespace backprop::train::detail {

namespace {

std::map<std::string, Tensor> clone_state(const std::map<std::string, Tensor>& state) {
  std::map<std::string, Tensor> copy;
  NoGradGuard guard;
  for (const auto& [name, t] : state) copy.emplace(name, t.detach().clone());
  return copy;
}

}  // namespace

void check_resume_options(const FitOptions& o, std::int64_t num_batches, const char* who) {
  BP_CHECK(o.start_epoch >= 0, ValueError, who, ": start_epoch must be >= 0, got ", o.start_epoch);
  BP_CHECK(o.start_step >= 0, ValueError, who, ": start_step must be >= 0, got ", o.start_step);
  const EpochProgress& p = o.start_progress;
  BP_CHECK(p.batches >= 0 && p.batches < num_batches, ValueError, who,
           ": start_progress.batches must be in [0, ", num_batches, ") (the batches per epoch), got ",
           p.batches);
  BP_CHECK(p.batches == 0 || o.start_epoch < o.epochs, ValueError, who, ": start_progress resumes epoch ",
           o.start_epoch + 1, " but epochs is ", o.epochs);
  BP_CHECK(p.seen >= 0 && p.updates >= 0 && p.loss_sum >= 0 && p.correct >= 0 && p.seconds >= 0, ValueError,
           who, ": start_progress holds a negative count (seen ", p.seen, ", updates ", p.updates,
           ", loss_sum ", p.loss_sum, ", correct ", p.correct, ", seconds ", p.seconds, ")");
  BP_CHECK(p.batches > 0 || (p.seen == 0 && p.updates == 0), ValueError, who, ": start_progress has seen ",
           p.seen, " rows and ", p.updates,
           " updates but 0 batches; a resume at an epoch boundary passes an empty EpochProgress");
  const EarlyStoppingState& e = o.early_stopping;
  BP_CHECK(e.best_epoch >= 0 && e.best_epoch <= o.start_epoch && e.since_best >= 0, ValueError, who,
           ": early_stopping state must have 0 <= best_epoch <= start_epoch (", o.start_epoch,
           ") and since_best >= 0, got best_epoch ", e.best_epoch, ", since_best ", e.since_best);
  BP_CHECK(o.best_state == nullptr || e.best_epoch > 0, ValueError, who,
           ": best_state is given but early_stopping.best_epoch is 0 (no best epoch to restore)");
}

EpochProgress epoch_start(const FitOptions& o, std::int64_t epoch) {
  return epoch == o.start_epoch ? o.start_progress : EpochProgress{};
}

EarlyStopper::EarlyStopper(const FitOptions& o) : options_(o), state_(o.early_stopping) {
  if (o.best_state && o.early_stopping_patience > 0 && o.restore_best) best_ = clone_state(*o.best_state);
}

bool EarlyStopper::epoch_end(const EpochMetrics& m, const nn::Module& model) {
  if (!options_.validation) return false;
  if (m.val_loss < state_.best_val_loss) {
    state_.best_val_loss = m.val_loss;
    state_.best_epoch = m.epoch;
    state_.since_best = 0;
    if (options_.early_stopping_patience > 0 && options_.restore_best)
      best_ = clone_state(model.state_dict());
    return false;
  }
  if (options_.early_stopping_patience > 0 && ++state_.since_best >= options_.early_stopping_patience)
    stopped_ = true;
  return stopped_;
}

void EarlyStopper::finish(nn::Module& model, History& history) {
  history.best_epoch = state_.best_epoch;
  history.stopped_early = stopped_;
  history.early_stopping = state_;
  if (stopped_ && options_.restore_best && !best_.empty()) {
    model.load_state_dict(best_);
    history.restored_best = true;
  }
  history.best_state = std::move(best_);
}

}  // namespace backprop::train::detail
