// fit(): the training loop. Each update is forward, cost, backward, (clip), optimiser step; everything else
// (metrics, validation, early stopping, gradient flow, the stop flag and mid-epoch resume) is bookkeeping
// around those four lines.
#include <backprop/ops.hpp>
#include <backprop/train.hpp>
#include <chrono>
#include <cmath>
#include <map>

#include "kernels/kernels.hpp"
#include "train/resume.hpp"

namespace backprop::train {

namespace {

using Clock = std::chrono::steady_clock;

void check_options(const FitOptions& o, const data::TensorDataset& train) {
  BP_CHECK(o.epochs >= 0, ValueError, "fit: epochs must be >= 0, got ", o.epochs);
  BP_CHECK(o.full_batch || o.batch_size >= 1, ValueError, "fit: batch_size must be >= 1, got ", o.batch_size);
  BP_CHECK(train.size() > 0, ValueError, "fit: the training set is empty");
  BP_CHECK(o.early_stopping_patience >= 0, ValueError, "fit: early_stopping_patience must be >= 0, got ",
           o.early_stopping_patience);
  BP_CHECK(o.early_stopping_patience == 0 || o.validation != nullptr, ValueError,
           "fit: early stopping needs a validation set");
  BP_CHECK(o.l1 >= 0 && o.l2 >= 0, ValueError, "fit: l1 and l2 must be >= 0, got ", o.l1, " and ", o.l2);
  BP_CHECK(o.clip_grad_norm >= 0, ValueError, "fit: clip_grad_norm must be >= 0, got ", o.clip_grad_norm);
  BP_CHECK(o.grad_flow_every >= 0, ValueError, "fit: grad_flow_every must be >= 0, got ", o.grad_flow_every);
  if (o.validation) {
    BP_CHECK(o.validation->num_features() == train.num_features(), ShapeError, "fit: validation set has ",
             o.validation->num_features(), " features but the training set has ", train.num_features());
  }
}

}  // namespace

Tensors penalised_weights(const nn::Module& model) {
  Tensors weights;
  for (const auto& [name, p] : model.named_parameters())
    if (p.dim() >= 2 && name.size() >= 6 && name.compare(name.size() - 6, 6, "weight") == 0)
      weights.push_back(p);
  return weights;
}

bool all_finite(const Tensor& t) {
  return kernels::all_finite(t);
}

double accuracy(const Tensor& outputs, const Tensor& targets) {
  const std::int64_t correct = kernels::count_argmax_matches(outputs, targets);
  if (outputs.size(0) == 0) return kNone;
  return static_cast<double>(correct) / static_cast<double>(outputs.size(0));
}

History fit(nn::Module& model, const loss::Loss& loss, optim::Optimizer& optimizer,
            const data::TensorDataset& train, const FitOptions& options) {
  check_options(options, train);
  const std::int64_t n = train.size();
  const std::int64_t batch_size = options.full_batch || options.batch_size >= n ? n : options.batch_size;
  data::DataLoader loader(train, {.batch_size = batch_size,
                                  .shuffle = options.shuffle && batch_size < n,
                                  .drop_last = options.drop_last,
                                  .seed = options.seed});
  const std::int64_t num_batches = loader.num_batches();
  detail::check_resume_options(options, num_batches, "fit");
  const bool classification = train.task == data::Task::classification;

  const Tensors penalised = penalised_weights(model);
  const std::vector<std::pair<std::string, Tensor>> named = model.named_parameters();

  History history;
  history.epochs_done = options.start_epoch;
  detail::EarlyStopper early(options);
  std::int64_t step = options.start_step;
  for (Callback* cb : options.callbacks) cb->on_train_begin(options.epochs, num_batches);

  for (std::int64_t epoch = options.start_epoch; epoch < options.epochs; ++epoch) {
    const auto start = Clock::now();
    model.train();
    loader.set_epoch(epoch);
    for (Callback* cb : options.callbacks) cb->on_epoch_begin(epoch + 1);
    // A mid-epoch resume continues the running sums where the interrupted call left them, so the epoch's
    // metrics are those of an uninterrupted epoch.
    EpochProgress progress = detail::epoch_start(options, epoch);
    const double prior_seconds = progress.seconds;
    EpochMetrics m;
    m.epoch = epoch + 1;
    m.lr = optimizer.lr();
    bool stop_requested = false;

    for (std::int64_t b = progress.batches; b < num_batches; ++b) {
      const data::Batch batch = loader.batch(b);
      const std::int64_t rows = batch.features.size(0);
      optimizer.zero_grad();
      const Tensor output = model(batch.features);
      const Tensor cost = loss(output, batch.targets);
      const double cost_value = cost.item();
      BP_CHECK(!options.check_finite || std::isfinite(cost_value), DivergedError,
               "training diverged: the loss is ", cost_value, " at epoch ", epoch + 1, ", step ", step + 1,
               " (batch ", b + 1, " of ", num_batches, "); try a smaller learning rate or --clip-grad-norm");
      Tensor objective =
          options.grad_reduction == GradReduction::sum ? mul(cost, static_cast<double>(rows)) : cost;
      if (options.l1 > 0) objective = add(objective, mul(loss::l1_penalty(penalised), options.l1));
      if (options.l2 > 0) objective = add(objective, mul(loss::l2_penalty(penalised), options.l2));
      objective.backward();
      if (options.check_finite) {
        for (const auto& [name, p] : named) {
          const Tensor g = p.grad();
          BP_CHECK(!g.defined() || all_finite(g), DivergedError, "training diverged: the gradient of '", name,
                   "' is not finite at epoch ", epoch + 1, ", step ", step + 1,
                   "; try a smaller learning rate");
        }
      }
      if (options.clip_grad_norm > 0) optim::clip_grad_norm(optimizer.params(), options.clip_grad_norm);
      if (options.grad_flow_every > 0 && (step + 1) % options.grad_flow_every == 0) {
        GradFlowRecord record = measure_grad_flow(model, batch.features);
        record.epoch = epoch + 1;
        record.step = step + 1;
        for (Callback* cb : options.callbacks) cb->on_grad_flow(record);
        history.grad_flow.push_back(std::move(record));
        model.train();
      }
      optimizer.step();
      ++step;

      progress.batches = b + 1;
      ++progress.updates;
      progress.loss_sum += cost_value * static_cast<double>(rows);
      progress.seen += rows;
      StepInfo info{.epoch = epoch + 1,
                    .batch = b,
                    .num_batches = num_batches,
                    .step = step,
                    .batch_size = rows,
                    .loss = cost_value};
      if (classification) {
        info.accuracy = accuracy(output, batch.targets);
        progress.correct += info.accuracy * static_cast<double>(rows);
      }
      for (Callback* cb : options.callbacks) cb->on_batch_end(info);
      if (options.stop != nullptr && options.stop->load()) {
        stop_requested = true;
        break;
      }
    }
    if (progress.batches < num_batches) {  // interrupted mid-epoch: no epoch end
      progress.seconds = prior_seconds + std::chrono::duration<double>(Clock::now() - start).count();
      history.interrupted = true;
      history.partial = progress;
      break;
    }

    m.updates = progress.updates;
    m.train_loss = progress.loss_sum / static_cast<double>(progress.seen);
    if (classification) m.train_accuracy = progress.correct / static_cast<double>(progress.seen);
    if (options.validation) {
      const Evaluation v = evaluate(model, loss, *options.validation);
      m.val_loss = v.loss;
      m.val_accuracy = v.accuracy;
    }
    m.seconds = prior_seconds + std::chrono::duration<double>(Clock::now() - start).count();
    m.samples_per_second = m.seconds > 0 ? static_cast<double>(progress.seen) / m.seconds : 0.0;
    history.epochs.push_back(m);
    history.epochs_done = epoch + 1;
    history.total_updates = step;
    if (options.scheduler) options.scheduler->step();

    bool stop = false;
    for (Callback* cb : options.callbacks) stop = cb->on_epoch_end(m) || stop;
    stop = early.epoch_end(m, model) || stop;
    if (stop) break;
    if (stop_requested) {  // the flag came on the epoch's last update: the epoch ended normally first
      history.interrupted = epoch + 1 < options.epochs;
      break;
    }
  }
  history.total_updates = step;
  early.finish(model, history);
  model.train();
  for (Callback* cb : options.callbacks) cb->on_train_end(history);
  return history;
}

Evaluation evaluate(nn::Module& model, const loss::Loss& loss, const data::TensorDataset& data,
                    std::int64_t batch_size) {
  BP_CHECK(batch_size >= 1, ValueError, "evaluate: batch_size must be >= 1, got ", batch_size);
  Evaluation result;
  result.examples = data.size();
  if (data.size() == 0) return result;
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard no_grad;
  const bool classification = data.task == data::Task::classification;
  double loss_sum = 0.0;
  std::int64_t correct = 0;
  for (std::int64_t start = 0; start < data.size(); start += batch_size) {
    const std::int64_t rows = std::min(batch_size, data.size() - start);
    const Tensor x = narrow(data.features, start, rows);
    const Tensor y = narrow(data.targets, start, rows);
    const Tensor out = model(x);
    loss_sum += loss(out, y).item() * static_cast<double>(rows);
    if (!classification) continue;
    const std::int64_t classes = std::max<std::int64_t>(data.num_classes, out.size(1));
    if (result.confusion.empty())
      result.confusion.assign(static_cast<std::size_t>(classes), std::vector<std::int64_t>(classes, 0));
    const Tensor predicted = argmax(out, 1);
    for (std::int64_t i = 0; i < rows; ++i) {
      const auto t = static_cast<std::size_t>(y.flat(i));
      const auto p = static_cast<std::size_t>(predicted.flat(i));
      correct += t == p;
      if (t < result.confusion.size() && p < result.confusion.size()) ++result.confusion[t][p];
    }
  }
  result.loss = loss_sum / static_cast<double>(data.size());
  if (classification) {
    result.accuracy = static_cast<double>(correct) / static_cast<double>(data.size());
    for (std::size_t c = 0; c < result.confusion.size(); ++c) {
      std::int64_t total = 0;
      for (std::int64_t v : result.confusion[c]) total += v;
      result.per_class_accuracy.push_back(
          total ? static_cast<double>(result.confusion[c][c]) / static_cast<double>(total) : kNone);
    }
  }
  model.train(was_training);
  return result;
}

Tensor predict(nn::Module& model, const Tensor& features, std::int64_t batch_size) {
  BP_CHECK(batch_size >= 1, ValueError, "predict: batch_size must be >= 1, got ", batch_size);
  BP_CHECK(features.dim() == 2, ShapeError, "predict: expected features [N, D], got ", features.shape());
  const bool was_training = model.is_training();
  model.eval();
  NoGradGuard no_grad;
  Tensors parts;
  for (std::int64_t start = 0; start < features.size(0); start += batch_size)
    parts.push_back(model(narrow(features, start, std::min(batch_size, features.size(0) - start))));
  model.train(was_training);
  BP_CHECK(!parts.empty(), ValueError, "predict: no rows to predict");
  return parts.size() == 1 ? parts[0] : concat(parts);
}

}  // namespace backprop::train
