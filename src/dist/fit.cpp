// dist::fit(): train::fit()'s loop with each global batch split across ranks. The four lines that matter are
// the same (forward, cost, backward, step); backward goes through DataParallel, and every number that is
// reported or decides something (loss, accuracy, validation, stop) is made global first, so every rank takes
// the same branches.
#include <backprop/ops.hpp>
#include <chrono>
#include <cmath>
#include <map>

#include "dist/mpi_util.hpp"
#include "train/resume.hpp"

namespace backprop::dist {

namespace {

using Clock = std::chrono::steady_clock;
thread_local CommStats last_stats;

std::int64_t correct_count(const Tensor& output, const Tensor& targets) {
  if (output.size(0) == 0) return 0;
  const Tensor predicted = argmax(output, 1);
  std::int64_t correct = 0;
  for (std::int64_t i = 0; i < output.size(0); ++i) correct += predicted.flat(i) == targets.flat(i);
  return correct;
}

}  // namespace

CommStats last_fit_comm_stats() {
  return last_stats;
}

train::Evaluation evaluate(nn::Module& model, const loss::Loss& loss, const data::TensorDataset& data,
                           std::int64_t batch_size) {
  BP_CHECK(batch_size >= 1, ValueError, "dist::evaluate: batch_size must be >= 1, got ", batch_size);
  train::Evaluation result;
  result.examples = data.size();
  if (data.size() == 0) return result;
  const Shard mine = shard_of(data.size(), rank(), size());
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard no_grad;
  const bool classification = data.task == data::Task::classification;
  double loss_sum = 0.0;
  std::vector<double> confusion;  // flattened [true][predicted], summed over ranks below
  std::int64_t classes = classification ? data.num_classes : 0;
  for (std::int64_t start = mine.begin; start < mine.end; start += batch_size) {
    const std::int64_t rows = std::min(batch_size, mine.end - start);
    const Tensor x = narrow(data.features, start, rows);
    const Tensor y = narrow(data.targets, start, rows);
    const Tensor out = model(x);
    loss_sum += loss(out, y).item() * static_cast<double>(rows);
    if (!classification) continue;
    BP_CHECK(out.size(1) <= classes, ValueError, "dist::evaluate: the model outputs ", out.size(1),
             " classes but the dataset declares ", classes);
    if (confusion.empty()) confusion.assign(static_cast<std::size_t>(classes * classes), 0.0);
    const Tensor predicted = argmax(out, 1);
    for (std::int64_t i = 0; i < rows; ++i) {
      const auto t = static_cast<std::int64_t>(y.flat(i));
      const auto p = static_cast<std::int64_t>(predicted.flat(i));
      if (t >= 0 && t < classes && p >= 0 && p < classes)
        confusion[static_cast<std::size_t>(t * classes + p)] += 1;
    }
  }
  result.loss = all_reduce_sum(loss_sum) / static_cast<double>(data.size());
  if (classification) {
    confusion.resize(static_cast<std::size_t>(classes * classes), 0.0);
    Tensor c = from_vector(confusion, {classes, classes}, f64);
    all_reduce_sum_(c);
    std::int64_t correct = 0;
    result.confusion.assign(static_cast<std::size_t>(classes), std::vector<std::int64_t>(classes, 0));
    for (std::int64_t t = 0; t < classes; ++t) {
      std::int64_t total = 0;
      for (std::int64_t p = 0; p < classes; ++p) {
        const auto v = static_cast<std::int64_t>(c.flat(t * classes + p));
        result.confusion[static_cast<std::size_t>(t)][static_cast<std::size_t>(p)] = v;
        total += v;
      }
      correct += result.confusion[static_cast<std::size_t>(t)][static_cast<std::size_t>(t)];
      result.per_class_accuracy.push_back(
          total ? static_cast<double>(
                      result.confusion[static_cast<std::size_t>(t)][static_cast<std::size_t>(t)]) /
                      static_cast<double>(total)
                : train::kNone);
    }
    result.accuracy = static_cast<double>(correct) / static_cast<double>(data.size());
  }
  model.train(was_training);
  return result;
}

train::History fit(nn::Module& model, const loss::Loss& loss, optim::Optimizer& optimizer,
                   const data::TensorDataset& train, const train::FitOptions& options,
                   DataParallelOptions parallel) {
  detail::require_init("dist::fit");
  BP_CHECK(options.epochs >= 0, ValueError, "dist::fit: epochs must be >= 0, got ", options.epochs);
  BP_CHECK(options.full_batch || options.batch_size >= 1, ValueError,
           "dist::fit: batch_size must be >= 1, got ", options.batch_size);
  BP_CHECK(train.size() > 0, ValueError, "dist::fit: the training set is empty");
  BP_CHECK(options.early_stopping_patience == 0 || options.validation != nullptr, ValueError,
           "dist::fit: early stopping needs a validation set");
  BP_CHECK(options.grad_flow_every >= 0, ValueError, "dist::fit: grad_flow_every must be >= 0, got ",
           options.grad_flow_every);
  const int ranks = size();
  const bool root = is_root();
  const std::int64_t n = train.size();
  const std::int64_t batch_size = options.full_batch || options.batch_size >= n ? n : options.batch_size;
  data::DataLoader loader(train, {.batch_size = batch_size,
                                  .shuffle = options.shuffle && batch_size < n,
                                  .drop_last = options.drop_last,
                                  .seed = options.seed});
  const std::int64_t num_batches = loader.num_batches();
  train::detail::check_resume_options(options, num_batches, "dist::fit");
  // The smallest global batch is the last one; every rank needs at least one row of it.
  const std::int64_t smallest = n % batch_size == 0 || options.drop_last ? batch_size : n % batch_size;
  BP_CHECK(smallest >= ranks, ValueError, "dist::fit: a global batch of ", smallest,
           " rows cannot be split over ", ranks,
           " ranks (each needs at least one row); use a batch size of at least ", ranks,
           " and a dataset size whose remainder is 0 or at least ", ranks, " (or drop_last)");
  const bool classification = train.task == data::Task::classification;

  DataParallel dp(model, parallel);  // broadcasts rank 0's weights
  const Tensors penalised = train::penalised_weights(model);
  const auto named = model.named_parameters();

  train::History history;
  history.epochs_done = options.start_epoch;
  train::detail::EarlyStopper early(options);
  std::int64_t step = options.start_step;
  if (root)
    for (train::Callback* cb : options.callbacks) cb->on_train_begin(options.epochs, num_batches);

  for (std::int64_t epoch = options.start_epoch; epoch < options.epochs; ++epoch) {
    const auto start = Clock::now();
    model.train();
    loader.set_epoch(epoch);
    if (root)
      for (train::Callback* cb : options.callbacks) cb->on_epoch_begin(epoch + 1);
    // The running sums are global (all-reduced per batch), so a resume on any number of ranks continues them.
    train::EpochProgress progress = train::detail::epoch_start(options, epoch);
    const double prior_seconds = progress.seconds;
    train::EpochMetrics m;
    m.epoch = epoch + 1;
    m.lr = optimizer.lr();
    bool stop_requested = false;

    for (std::int64_t b = progress.batches; b < num_batches; ++b) {
      const data::Batch global = loader.batch(b);
      const std::int64_t rows = global.features.size(0);
      const data::Batch batch = shard(global);
      const std::int64_t local_rows = batch.features.size(0);
      optimizer.zero_grad();
      const Tensor output = model(batch.features);
      const Tensor cost = loss(output, batch.targets);
      // Global loss and accuracy of this batch, from local sums.
      double sums[2] = {cost.item() * static_cast<double>(local_rows),
                        classification ? static_cast<double>(correct_count(output, batch.targets)) : 0.0};
      detail::check(MPI_Allreduce(MPI_IN_PLACE, sums, 2, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD),
                    "MPI_Allreduce");
      const double cost_value = sums[0] / static_cast<double>(rows);
      BP_CHECK(!options.check_finite || std::isfinite(cost_value), DivergedError,
               "training diverged: the loss is ", cost_value, " at epoch ", epoch + 1, ", step ", step + 1,
               " (batch ", b + 1, " of ", num_batches, "); try a smaller learning rate or --clip-grad-norm");
      // Sum over ranks of the objectives = the objective of one process on the whole batch (penalties once).
      const double share = static_cast<double>(local_rows) / static_cast<double>(rows);
      Tensor objective = mul(cost, shard_scale(local_rows, rows, options.grad_reduction));
      if (options.l1 > 0) objective = add(objective, mul(loss::l1_penalty(penalised), options.l1 * share));
      if (options.l2 > 0) objective = add(objective, mul(loss::l2_penalty(penalised), options.l2 * share));
      dp.backward(objective);
      if (options.check_finite) {
        for (const auto& [name, p] : named) {
          const Tensor g = p.grad();
          BP_CHECK(!g.defined() || train::all_finite(g), DivergedError,
                   "training diverged: the gradient of '", name, "' is not finite at epoch ", epoch + 1,
                   ", step ", step + 1, "; try a smaller learning rate");
        }
      }
      if (options.clip_grad_norm > 0) optim::clip_grad_norm(optimizer.params(), options.clip_grad_norm);
      if (options.grad_flow_every > 0 && (step + 1) % options.grad_flow_every == 0) {
        // The gradients are the global ones on every rank and the global batch is the same everywhere, so
        // every rank measures the same figures without communicating (a SyncBatchNorm1d is in eval mode
        // here).
        train::GradFlowRecord record = train::measure_grad_flow(model, global.features);
        record.epoch = epoch + 1;
        record.step = step + 1;
        if (root)
          for (train::Callback* cb : options.callbacks) cb->on_grad_flow(record);
        history.grad_flow.push_back(std::move(record));
        model.train();
      }
      optimizer.step();
      ++step;

      progress.batches = b + 1;
      ++progress.updates;
      progress.loss_sum += sums[0];
      progress.correct += sums[1];
      progress.seen += rows;
      train::StepInfo info{.epoch = epoch + 1,
                           .batch = b,
                           .num_batches = num_batches,
                           .step = step,
                           .batch_size = rows,
                           .loss = cost_value};
      if (classification) info.accuracy = sums[1] / static_cast<double>(rows);
      if (root)
        for (train::Callback* cb : options.callbacks) cb->on_batch_end(info);
      // A signal may reach the ranks at different moments: the stop is decided together (max of the local
      // flags), so every rank stops after the same update.
      int flag = options.stop != nullptr && options.stop->load() ? 1 : 0;
      detail::check(MPI_Allreduce(MPI_IN_PLACE, &flag, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD), "MPI_Allreduce");
      if (flag) {
        stop_requested = true;
        break;
      }
    }
    if (progress.batches < num_batches) {  // interrupted mid-epoch: no epoch end
      double seconds = prior_seconds + std::chrono::duration<double>(Clock::now() - start).count();
      detail::check(MPI_Bcast(&seconds, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD), "MPI_Bcast");
      progress.seconds = seconds;
      history.interrupted = true;
      history.partial = progress;
      break;
    }

    m.updates = progress.updates;
    m.train_loss = progress.loss_sum / static_cast<double>(progress.seen);
    if (classification) m.train_accuracy = progress.correct / static_cast<double>(progress.seen);
    if (options.validation) {
      const train::Evaluation v = evaluate(model, loss, *options.validation);
      m.val_loss = v.loss;
      m.val_accuracy = v.accuracy;
    }
    // Rank 0's clock, so every rank reports the same numbers.
    double seconds = prior_seconds + std::chrono::duration<double>(Clock::now() - start).count();
    detail::check(MPI_Bcast(&seconds, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD), "MPI_Bcast");
    m.seconds = seconds;
    m.samples_per_second = m.seconds > 0 ? static_cast<double>(progress.seen) / m.seconds : 0.0;
    history.epochs.push_back(m);
    history.epochs_done = epoch + 1;
    history.total_updates = step;
    if (options.scheduler) options.scheduler->step();

    int stop = 0;
    if (root)
      for (train::Callback* cb : options.callbacks) stop = cb->on_epoch_end(m) || stop;
    detail::check(MPI_Bcast(&stop, 1, MPI_INT, 0, MPI_COMM_WORLD), "MPI_Bcast");
    if (early.epoch_end(m, model)) stop = 1;  // the validation loss is global: every rank agrees
    if (stop) break;
    if (stop_requested) {  // the flag came on the epoch's last update: the epoch ended normally first
      history.interrupted = epoch + 1 < options.epochs;
      break;
    }
  }
  history.total_updates = step;
  early.finish(model, history);
  model.train();
  last_stats = dp.stats();
  if (root)
    for (train::Callback* cb : options.callbacks) cb->on_train_end(history);
  return history;
}

}  // namespace backprop::dist
