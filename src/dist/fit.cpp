// dist::fit(): train::fit()'s loop with each global batch split across ranks. The four lines that matter are
// the same (forward, cost, backward, step); backward goes through DataParallel, and every number that is
// reported or decides something (loss, accuracy, validation, stop) is made global first, so every rank takes
// the same branches.
#include <backprop/ops.hpp>
#include <chrono>
#include <cmath>
#include <map>

#include "dist/mpi_util.hpp"

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
  BP_CHECK(
      options.grad_flow_every == 0, ValueError,
      "dist::fit: grad_flow_every is not supported in data-parallel training; measure it in one process");
  BP_CHECK(options.epochs >= 0, ValueError, "dist::fit: epochs must be >= 0, got ", options.epochs);
  BP_CHECK(options.full_batch || options.batch_size >= 1, ValueError,
           "dist::fit: batch_size must be >= 1, got ", options.batch_size);
  BP_CHECK(train.size() > 0, ValueError, "dist::fit: the training set is empty");
  BP_CHECK(options.early_stopping_patience == 0 || options.validation != nullptr, ValueError,
           "dist::fit: early stopping needs a validation set");
  const int ranks = size();
  const bool root = is_root();
  const std::int64_t n = train.size();
  const std::int64_t batch_size = options.full_batch || options.batch_size >= n ? n : options.batch_size;
  data::DataLoader loader(train, {.batch_size = batch_size,
                                  .shuffle = options.shuffle && batch_size < n,
                                  .drop_last = false,
                                  .seed = options.seed});
  // The smallest global batch is the last one; every rank needs at least one row of it.
  const std::int64_t smallest = n % batch_size == 0 ? batch_size : n % batch_size;
  BP_CHECK(smallest >= ranks, ValueError, "dist::fit: a global batch of ", smallest,
           " rows cannot be split over ", ranks,
           " ranks (each needs at least one row); use a batch size of at least ", ranks,
           " and a dataset size whose remainder is 0 or at least ", ranks);
  const bool classification = train.task == data::Task::classification;

  DataParallel dp(model, parallel);  // broadcasts rank 0's weights
  const Tensors penalised = train::penalised_weights(model);
  const auto named = model.named_parameters();

  train::History history;
  double best_val = std::numeric_limits<double>::infinity();
  std::map<std::string, Tensor> best_state;
  std::int64_t since_best = 0;
  std::int64_t step = 0;
  if (root)
    for (train::Callback* cb : options.callbacks) cb->on_train_begin(options.epochs, loader.num_batches());

  for (std::int64_t epoch = options.start_epoch; epoch < options.epochs; ++epoch) {
    const auto start = Clock::now();
    model.train();
    loader.set_epoch(epoch);
    if (root)
      for (train::Callback* cb : options.callbacks) cb->on_epoch_begin(epoch + 1);
    train::EpochMetrics m;
    m.epoch = epoch + 1;
    m.lr = optimizer.lr();
    double loss_sum = 0.0, correct = 0.0;
    std::int64_t seen = 0;

    for (std::int64_t b = 0; b < loader.num_batches(); ++b) {
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
               " (batch ", b + 1, " of ", loader.num_batches(),
               "); try a smaller learning rate or --clip-grad-norm");
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
      optimizer.step();
      ++step;
      ++m.updates;

      loss_sum += sums[0];
      correct += sums[1];
      seen += rows;
      train::StepInfo info{.epoch = epoch + 1,
                           .batch = b,
                           .num_batches = loader.num_batches(),
                           .step = step,
                           .batch_size = rows,
                           .loss = cost_value};
      if (classification) info.accuracy = sums[1] / static_cast<double>(rows);
      if (root)
        for (train::Callback* cb : options.callbacks) cb->on_batch_end(info);
    }

    m.train_loss = loss_sum / static_cast<double>(seen);
    if (classification) m.train_accuracy = correct / static_cast<double>(seen);
    if (options.validation) {
      const train::Evaluation v = evaluate(model, loss, *options.validation);
      m.val_loss = v.loss;
      m.val_accuracy = v.accuracy;
    }
    // Rank 0's clock, so every rank reports the same numbers.
    double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    detail::check(MPI_Bcast(&seconds, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD), "MPI_Bcast");
    m.seconds = seconds;
    m.samples_per_second = m.seconds > 0 ? static_cast<double>(seen) / m.seconds : 0.0;
    history.epochs.push_back(m);
    history.total_updates = step;
    if (options.scheduler) options.scheduler->step();

    int stop = 0;
    if (root)
      for (train::Callback* cb : options.callbacks) stop = cb->on_epoch_end(m) || stop;
    detail::check(MPI_Bcast(&stop, 1, MPI_INT, 0, MPI_COMM_WORLD), "MPI_Bcast");
    if (options.validation) {
      if (m.val_loss < best_val) {
        best_val = m.val_loss;
        history.best_epoch = m.epoch;
        since_best = 0;
        if (options.early_stopping_patience > 0 && options.restore_best) {
          NoGradGuard guard;
          best_state.clear();
          for (auto& [name, t] : model.state_dict()) best_state.emplace(name, t.detach().clone());
        }
      } else if (options.early_stopping_patience > 0 && ++since_best >= options.early_stopping_patience) {
        history.stopped_early = true;
        stop = 1;
      }
    }
    if (stop) break;
  }
  if (history.stopped_early && options.restore_best && !best_state.empty()) model.load_state_dict(best_state);
  model.train();
  last_stats = dp.stats();
  if (root)
    for (train::Callback* cb : options.callbacks) cb->on_train_end(history);
  return history;
}

}  // namespace backprop::dist
