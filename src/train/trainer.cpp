// Trainer: the training loop. Each update is forward, cost, backward, (clip), optimiser step; everything else
// (metrics, validation, early stopping, schedules, gradient flow, the stop flag and mid-epoch resume) is
// bookkeeping around those lines. The Collective makes every reported or deciding number global, so the
// same loop serves one process and every rank of an MPI job.
#include <backprop/io/checkpoint.hpp>
#include <backprop/ops.hpp>
#include <backprop/train.hpp>
#include <chrono>
#include <cmath>

#include "kernels/kernels.hpp"

namespace backprop::train {

namespace {

using Clock = std::chrono::steady_clock;

std::map<std::string, Tensor> clone_state(const std::map<std::string, Tensor>& state) {
  std::map<std::string, Tensor> copy;
  NoGradGuard guard;
  for (const auto& [name, t] : state) copy.emplace(name, t.detach().clone());
  return copy;
}

void check_options(const FitOptions& o) {
  BP_CHECK(o.epochs >= 0, ValueError, "fit: epochs must be >= 0, got ", o.epochs);
  BP_CHECK(o.full_batch || o.batch_size >= 1, ValueError, "fit: batch_size must be >= 1, got ", o.batch_size);
  BP_CHECK(o.early_stopping_patience >= 0, ValueError, "fit: early_stopping_patience must be >= 0, got ",
           o.early_stopping_patience);
  BP_CHECK(o.early_stopping_patience == 0 || o.validation != nullptr, ValueError,
           "fit: early stopping needs a validation set");
  BP_CHECK(o.l1 >= 0 && o.l2 >= 0, ValueError, "fit: l1 and l2 must be >= 0, got ", o.l1, " and ", o.l2);
  BP_CHECK(o.clip_grad_norm >= 0, ValueError, "fit: clip_grad_norm must be >= 0, got ", o.clip_grad_norm);
  BP_CHECK(o.grad_flow_every >= 0, ValueError, "fit: grad_flow_every must be >= 0, got ", o.grad_flow_every);
}

}  // namespace

const Trainer& Callback::trainer() const {
  BP_CHECK(trainer_ != nullptr, ValueError, "Callback::trainer(): the callback is not attached to a Trainer");
  return *trainer_;
}

void Collective::backward(const Tensor& objective) {
  objective.backward();
}

Evaluation Collective::evaluate(nn::Module& model, const loss::Loss& loss, const data::TensorDataset& data,
                                std::int64_t batch_size) {
  return train::evaluate(model, loss, data, batch_size);
}

Trainer::Trainer(nn::Module& model, const loss::Loss& loss, optim::Optimizer& optimizer, FitOptions options,
                 std::shared_ptr<Collective> collective)
    : model_(model),
      loss_(loss),
      optimizer_(optimizer),
      options_(std::move(options)),
      collective_(collective ? std::move(collective) : std::make_shared<Collective>()) {
  check_options(options_);
}

void Trainer::check_data(const data::TensorDataset& train, std::int64_t num_batches) const {
  const FitOptions& o = options_;
  BP_CHECK(train.size() > 0, ValueError, "fit: the training set is empty");
  if (o.validation) {
    BP_CHECK(o.validation->num_features() == train.num_features(), ShapeError, "fit: validation set has ",
             o.validation->num_features(), " features but the training set has ", train.num_features());
  }
  BP_CHECK(partial_.batches < num_batches, ValueError, "fit: the state resumes after batch ",
           partial_.batches, " of epoch ", epoch_ + 1, " but an epoch of this data has ", num_batches,
           " batches");
  BP_CHECK(partial_.batches == 0 || epoch_ < o.epochs, ValueError, "fit: the state resumes inside epoch ",
           epoch_ + 1, " but epochs is ", o.epochs);
  check_batch_split(train.size(), o, collective_->size());
}

void check_batch_split(std::int64_t rows, const FitOptions& o, int ranks) {
  if (ranks <= 1 || rows <= 0) return;
  const std::int64_t batch_size = o.full_batch || o.batch_size >= rows ? rows : o.batch_size;
  // The smallest global batch is the last one; every rank needs at least one row of it.
  const std::int64_t smallest = rows % batch_size == 0 || o.drop_last ? batch_size : rows % batch_size;
  BP_CHECK(smallest >= ranks, ValueError, "fit: a global batch of ", smallest, " rows cannot be split over ",
           ranks, " ranks (", rows, " training examples in batches of ", batch_size,
           "; each rank needs at least one row); use a batch size of at least ", ranks,
           " whose remainder is 0 or at least ", ranks, " (or drop_last)");
}

History Trainer::fit(const data::TensorDataset& train) {
  const FitOptions& o = options_;
  Collective& comm = *collective_;
  const bool root = comm.rank() == 0;
  const std::int64_t n = train.size();
  const std::int64_t batch_size =
      o.full_batch || o.batch_size >= n ? std::max<std::int64_t>(n, 1) : o.batch_size;
  data::DataLoader loader(train, {.batch_size = batch_size,
                                  .shuffle = o.shuffle && batch_size < n,
                                  .drop_last = o.drop_last,
                                  .seed = o.seed,
                                  .augment = o.augment,
                                  .image_shape = o.image_shape,
                                  .prefetch = o.prefetch});
  const std::int64_t num_batches = loader.num_batches();
  check_data(train, num_batches);
  const bool classification = train.task == data::Task::classification;
  comm.start(model_);

  const Tensors penalised = penalised_weights(model_);
  const std::vector<std::pair<std::string, Tensor>> named = model_.named_parameters();
  const std::vector<Callback*> callbacks = root ? o.callbacks : std::vector<Callback*>{};
  for (Callback* cb : callbacks) cb->trainer_ = this;

  History history;
  history.epochs_done = epoch_;
  bool stopped_early = false;
  for (Callback* cb : callbacks) cb->on_train_begin(o.epochs, num_batches);

  while (epoch_ < o.epochs) {
    const auto start = Clock::now();
    model_.train();
    loader.set_epoch(epoch_);
    for (Callback* cb : callbacks) cb->on_epoch_begin(epoch_ + 1);
    // A mid-epoch resume continues the running sums where the interrupted run left them, so the epoch's
    // metrics are those of an uninterrupted epoch.
    const double prior_seconds = partial_.seconds;
    EpochMetrics m;
    m.epoch = epoch_ + 1;
    m.lr = optimizer_.lr();
    bool stop_requested = false;

    for (std::int64_t b = partial_.batches; b < num_batches; ++b) {
      data::Batch global = loader.batch(b);
      global.features = model_input(model_, global.features);
      const std::int64_t rows = global.features.size(0);
      const data::Batch batch = comm.shard(global);
      const std::int64_t local_rows = batch.features.size(0);
      optimizer_.zero_grad();
      const Tensor output = model_(batch.features);
      const Tensor cost = loss_(output, batch.targets);
      const double local_cost = cost.item();
      // Global loss and correct count of this batch, from the ranks' sums.
      double sums[2] = {
          local_cost * static_cast<double>(local_rows),
          classification ? static_cast<double>(kernels::count_argmax_matches(output, batch.targets)) : 0.0};
      comm.sum(sums, 2);
      const double cost_value = comm.size() == 1 ? local_cost : sums[0] / static_cast<double>(rows);
      BP_CHECK(!o.check_finite || std::isfinite(cost_value), DivergedError, "training diverged: the loss is ",
               cost_value, " at epoch ", epoch_ + 1, ", step ", step_ + 1, " (batch ", b + 1, " of ",
               num_batches, "); try a smaller learning rate or --clip-grad-norm");
      // Sum over ranks of the objectives = the objective of one process on the whole batch (penalties once).
      const double share = static_cast<double>(local_rows) / static_cast<double>(rows);
      const double scale = o.grad_reduction == GradReduction::sum ? static_cast<double>(local_rows) : share;
      Tensor objective = scale == 1.0 ? cost : mul(cost, scale);
      if (o.l1 > 0) objective = add(objective, mul(loss::l1_penalty(penalised), o.l1 * share));
      if (o.l2 > 0) objective = add(objective, mul(loss::l2_penalty(penalised), o.l2 * share));
      comm.backward(objective);
      if (o.check_finite) {
        for (const auto& [name, p] : named) {
          const Tensor g = p.grad();
          BP_CHECK(!g.defined() || all_finite(g), DivergedError, "training diverged: the gradient of '", name,
                   "' is not finite at epoch ", epoch_ + 1, ", step ", step_ + 1,
                   "; try a smaller learning rate");
        }
      }
      if (o.clip_grad_norm > 0) optim::clip_grad_norm(optimizer_.params(), o.clip_grad_norm);
      if (o.grad_flow_every > 0 && (step_ + 1) % o.grad_flow_every == 0) {
        // The gradients are the global ones on every rank and the global batch is the same everywhere, so
        // every rank measures the same figures without communicating.
        GradFlowRecord record = measure_grad_flow(model_, global.features);
        record.epoch = epoch_ + 1;
        record.step = step_ + 1;
        for (Callback* cb : callbacks) cb->on_grad_flow(record);
        history.grad_flow.push_back(std::move(record));
        model_.train();
      }
      optimizer_.step();
      ++step_;
      if (o.scheduler && o.scheduler_interval == ScheduleInterval::update) o.scheduler->step();

      partial_.batches = b + 1;
      ++partial_.updates;
      partial_.loss_sum += sums[0];
      partial_.correct += sums[1];
      partial_.seen += rows;
      StepInfo info{.epoch = epoch_ + 1,
                    .batch = b,
                    .num_batches = num_batches,
                    .step = step_,
                    .batch_size = rows,
                    .loss = cost_value};
      if (classification) info.accuracy = sums[1] / static_cast<double>(rows);
      for (Callback* cb : callbacks) cb->on_batch_end(info);
      // A signal may reach the ranks at different moments: the stop is decided together, so every rank
      // stops after the same update.
      if (comm.any(o.stop != nullptr && o.stop->load())) {
        stop_requested = true;
        break;
      }
    }
    // Rank 0's clock, so every rank reports the same numbers.
    const double seconds =
        comm.from_root(prior_seconds + std::chrono::duration<double>(Clock::now() - start).count());
    if (partial_.batches < num_batches) {  // interrupted mid-epoch: no epoch end
      partial_.seconds = seconds;
      history.interrupted = true;
      break;
    }

    m.updates = partial_.updates;
    m.train_loss = partial_.loss_sum / static_cast<double>(partial_.seen);
    if (classification) m.train_accuracy = partial_.correct / static_cast<double>(partial_.seen);
    if (o.validation) {
      const Evaluation v = comm.evaluate(model_, loss_, *o.validation, 1000);
      m.val_loss = v.loss;
      m.val_accuracy = v.accuracy;
    }
    m.seconds = seconds;
    m.samples_per_second = m.seconds > 0 ? static_cast<double>(partial_.seen) / m.seconds : 0.0;
    ++epoch_;
    partial_ = {};
    history.epochs.push_back(m);
    history.epochs_done = epoch_;
    history.total_updates = step_;
    if (o.scheduler && o.scheduler_interval == ScheduleInterval::epoch) o.scheduler->step();
    if (o.plateau) o.plateau->step(o.validation ? m.val_loss : m.train_loss);

    // Early stopping first, so that a checkpoint written by a callback holds this epoch's state. The
    // validation loss is global: every rank agrees.
    const bool patience_ran_out = end_of_epoch(m);
    bool stop = false;
    for (Callback* cb : callbacks) stop = cb->on_epoch_end(m) || stop;
    stop = comm.any(stop);
    if (patience_ran_out) stopped_early = stop = true;
    if (stop) break;
    if (stop_requested) {  // the flag came on the epoch's last update: the epoch ended normally first
      history.interrupted = epoch_ < o.epochs;
      break;
    }
  }
  history.total_updates = step_;
  history.epochs_done = epoch_;
  history.best_epoch = early_.best_epoch;
  history.stopped_early = stopped_early;
  if (stopped_early && o.restore_best && !best_.empty()) {
    model_.load_state_dict(best_);
    history.restored_best = true;
  }
  model_.train();
  for (Callback* cb : callbacks) cb->on_train_end(history);
  return history;
}

bool Trainer::end_of_epoch(const EpochMetrics& m) {
  if (!options_.validation) return false;
  const std::int64_t patience = options_.early_stopping_patience;
  if (m.val_loss < early_.best_val_loss) {
    early_ = {.best_val_loss = m.val_loss, .best_epoch = m.epoch, .since_best = 0};
    if (patience > 0 && options_.restore_best) best_ = clone_state(model_.state_dict());
    return false;
  }
  return patience > 0 && ++early_.since_best >= patience;
}

TrainerState Trainer::state() const {
  TrainerState s;
  s.model = clone_state(model_.state_dict());
  s.optimizer = optimizer_.state();
  s.generators = io::module_generators(model_);
  s.scheduler_steps = options_.scheduler ? options_.scheduler->steps() : 0;
  if (options_.plateau) s.plateau = options_.plateau->state();
  s.data_seed = options_.seed;
  s.epoch = epoch_;
  s.step = step_;
  s.partial = partial_;
  s.early_stopping = early_;
  s.best_state = clone_state(best_);
  return s;
}

void Trainer::load_state(const TrainerState& s) {
  BP_CHECK(s.epoch >= 0 && s.step >= 0, ValueError, "Trainer::load_state: epoch and step must be >= 0, got ",
           s.epoch, " and ", s.step);
  const EpochProgress& p = s.partial;
  BP_CHECK(
      p.batches >= 0 && p.seen >= 0 && p.updates >= 0 && p.loss_sum >= 0 && p.correct >= 0 && p.seconds >= 0,
      ValueError, "Trainer::load_state: the partial epoch holds a negative count (batches ", p.batches,
      ", seen ", p.seen, ", updates ", p.updates, ", loss_sum ", p.loss_sum, ", correct ", p.correct,
      ", seconds ", p.seconds, ")");
  BP_CHECK(p.batches > 0 || (p.seen == 0 && p.updates == 0), ValueError,
           "Trainer::load_state: the partial epoch has seen ", p.seen, " rows and ", p.updates,
           " updates but 0 batches; a state at an epoch boundary has an empty partial epoch");
  const EarlyStoppingState& e = s.early_stopping;
  BP_CHECK(e.best_epoch >= 0 && e.best_epoch <= s.epoch && e.since_best >= 0, ValueError,
           "Trainer::load_state: early stopping must have 0 <= best_epoch <= epoch (", s.epoch,
           ") and since_best >= 0, got best_epoch ", e.best_epoch, ", since_best ", e.since_best);
  BP_CHECK(s.data_seed == options_.seed, ValueError, "Trainer::load_state: the state's data order seed ",
           s.data_seed, " differs from FitOptions::seed ", options_.seed,
           "; the resumed run would see other batches");
  BP_CHECK(s.scheduler_steps == 0 || options_.scheduler != nullptr, ValueError,
           "Trainer::load_state: the state has ", s.scheduler_steps,
           " schedule steps but FitOptions::scheduler is not set");
  const auto current = model_.state_dict();
  if (!s.best_state.empty()) {
    bool fits = s.best_state.size() == current.size();
    for (const auto& [name, t] : current)
      fits = fits && s.best_state.count(name) && s.best_state.at(name).shape() == t.shape();
    BP_CHECK(fits, ValueError,
             "Trainer::load_state: the best-epoch weights do not match the model's parameters and buffers");
  }
  // The model and optimiser validate before they change; the generators come last, and a failure there
  // puts the earlier two back.
  const auto model_before = clone_state(current);
  const auto optimizer_before = optimizer_.state();
  model_.load_state_dict(s.model);
  try {
    optimizer_.load_state(s.optimizer);
    io::restore_module_generators(model_, s.generators);
  } catch (...) {
    model_.load_state_dict(model_before);
    optimizer_.load_state(optimizer_before);
    throw;
  }
  // The schedule sets the lr for its step (a run extended to more epochs anneals over the new total); with a
  // ReduceLROnPlateau the saved lr, which it may have lowered, stands.
  if (options_.scheduler) {
    const double saved_lr = optimizer_.lr();
    options_.scheduler->set_steps(s.scheduler_steps);
    if (options_.plateau) optimizer_.set_lr(saved_lr);
  }
  if (options_.plateau) options_.plateau->load_state(s.plateau);
  epoch_ = s.epoch;
  step_ = s.step;
  partial_ = s.partial;
  early_ = s.early_stopping;
  best_ = options_.early_stopping_patience > 0 && options_.restore_best ? clone_state(s.best_state)
                                                                        : std::map<std::string, Tensor>{};
}

History fit(nn::Module& model, const loss::Loss& loss, optim::Optimizer& optimizer,
            const data::TensorDataset& train, const FitOptions& options) {
  return Trainer(model, loss, optimizer, options).fit(train);
}

}  // namespace backprop::train
