// backprop/train.hpp — the training loop (Trainer, fit()), evaluate() and predict().
//
// A Trainer runs epochs of gradient descent: forward, cost, backward, (clip), optimiser step, and the
// bookkeeping around them (metrics, validation, early stopping, learning-rate schedules, gradient flow,
// interruption). The batch size picks the mode: 1 is stochastic gradient descent, the dataset size (or
// full_batch) is batch gradient descent, anything between is mini-batch. fit() is a Trainer used once.
//
// Interrupting and resuming (docs/train.md): point FitOptions::stop at an atomic flag (a signal handler may
// set it); Trainer::fit() returns after the update during which it became true, with History::interrupted.
// Trainer::state() is then everything needed to continue (weights, optimiser, generators, schedule, data
// position, early stopping); a fresh Trainer over a model of the same shape continues bit for bit.
//
// Example:
//   bp::Generator gen(42);
//   bp::nn::Sequential net{bp::nn::Linear(784, 256, gen), bp::nn::ReLU(), bp::nn::Linear(256, 10, gen)};
//   bp::optim::SGD opt(net.parameters(), {.lr = 0.1, .momentum = 0.9});
//   auto train = bp::data::FashionMNIST::load(bp::data::FashionMNIST::default_dir, bp::data::Split::train);
//   auto test = bp::data::FashionMNIST::load(bp::data::FashionMNIST::default_dir, bp::data::Split::test);
//   bp::loss::CrossEntropy loss;
//   bp::train::History history = bp::train::fit(net, loss, opt, train, {.epochs = 10, .batch_size = 128});
//   bp::train::Evaluation result = bp::train::evaluate(net, loss, test);   // loss, accuracy, confusion
//   std::atomic<bool> stop{false};                                         // a signal handler may set it
//   bp::train::Trainer trainer(net, loss, opt, {.epochs = 10, .stop = &stop});
//   trainer.fit(train);                                                    // interrupted, say
//   bp::train::TrainerState saved = trainer.state();                       // io::write_checkpoint stores it
//   bp::train::Trainer again(net, loss, opt, {.epochs = 10});
//   again.load_state(saved);
//   again.fit(train);                                                      // as if never interrupted
#pragma once

#include <atomic>
#include <backprop/data.hpp>
#include <backprop/loss.hpp>
#include <backprop/nn.hpp>
#include <backprop/optim.hpp>
#include <backprop/tensor.hpp>
#include <backprop/train/state.hpp>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace backprop::train {

/// How the per-example gradients of a mini-batch are combined. With `sum` the gradient grows with the batch
/// size, so the learning rate must shrink by the same factor to take the same step: lr_sum = lr_mean / B.
enum class GradReduction { mean, sum };

/// When FitOptions::scheduler is stepped: after every epoch (StepLR, cosine over epochs) or after every
/// optimiser update (warm-up over updates, OneCycleLR).
enum class ScheduleInterval { epoch, update };

struct History {
  std::vector<EpochMetrics> epochs;  // the epochs completed in this call
  std::vector<GradFlowRecord> grad_flow;
  std::int64_t best_epoch = 0;  // epoch with the lowest validation loss (0 without validation)
  bool stopped_early = false;
  std::int64_t total_updates = 0;  // optimiser updates in total, counting those before a resume
  /// fit() returned because *FitOptions::stop became true while epochs were left to train.
  bool interrupted = false;
  std::int64_t epochs_done = 0;  // completed epochs in total, counting those before a resume
  /// The weights of the best epoch were loaded into the model at the end (early stop with restore_best).
  bool restored_best = false;
};

/// What a callback sees after each update.
struct StepInfo {
  std::int64_t epoch = 0;  // 1-based
  std::int64_t batch = 0;  // 0-based within the epoch
  std::int64_t num_batches = 0;
  std::int64_t step = 0;  // global update count (after this update)
  std::int64_t batch_size = 0;
  double loss = 0.0;
  double accuracy = kNone;
};

class Trainer;

/// Hooks into the training loop: progress bars, metric logs, checkpoints (train/callbacks.hpp has the
/// library's). Return true from on_epoch_end to stop training after that epoch. A mid-epoch resume calls
/// on_epoch_begin for the resumed epoch too, and on_batch_end only for the batches it trains. Under MPI
/// callbacks run on rank 0 only. trainer() is the Trainer running the callback (valid from on_train_begin).
class Callback {
 public:
  virtual ~Callback() = default;
  virtual void on_train_begin(std::int64_t /*epochs*/, std::int64_t /*batches_per_epoch*/) {}
  virtual void on_epoch_begin(std::int64_t /*epoch*/) {}
  virtual void on_batch_end(const StepInfo&) {}
  virtual void on_grad_flow(const GradFlowRecord&) {}
  virtual bool on_epoch_end(const EpochMetrics&) { return false; }
  virtual void on_train_end(const History&) {}

 protected:
  const Trainer& trainer() const;

 private:
  friend class Trainer;
  const Trainer* trainer_ = nullptr;
};

struct FitOptions {
  std::int64_t epochs = 10;
  /// 1 = stochastic gradient descent; >= dataset size = batch gradient descent; otherwise mini-batch.
  std::int64_t batch_size = 64;
  /// Batch gradient descent regardless of batch_size: one update per epoch over the whole training set.
  bool full_batch = false;
  GradReduction grad_reduction = GradReduction::mean;
  bool shuffle = true;
  std::uint64_t seed = 0;  // data order: epoch e's order depends only on (seed, e)
  bool drop_last = false;  // drop the last incomplete batch of each epoch
  /// Image augmentation of every training batch (never of validation or evaluation data); null: none.
  std::shared_ptr<const data::Augmentation> augment = nullptr;
  /// The image shape of a training row, for augmenting flat rows [N, C*H*W]; height 0: from the features.
  data::ImageShape image_shape = {1, 0, 0};
  /// A loader thread prepares the next batch while this one trains (data::LoaderOptions::prefetch); off by
  /// default, `backprop train` turns it on with --augment.
  bool prefetch = false;
  const data::TensorDataset* validation = nullptr;
  /// Stop when the validation loss has not improved for this many epochs (0 = never), then restore the best
  /// weights (restore_best).
  std::int64_t early_stopping_patience = 0;
  bool restore_best = true;
  double l1 = 0.0;                        // adds l1 * sum |w| to the cost (weights only, not biases)
  double l2 = 0.0;                        // adds l2 * 1/2 sum w^2 to the cost (weights only, not biases)
  double clip_grad_norm = 0.0;            // 0 = off
  optim::Scheduler* scheduler = nullptr;  // stepped every scheduler_interval
  ScheduleInterval scheduler_interval = ScheduleInterval::epoch;
  /// Lowers the lr when the validation loss (the training loss without validation) stops improving; stepped
  /// after each epoch, after `scheduler`.
  optim::ReduceLROnPlateau* plateau = nullptr;
  std::int64_t grad_flow_every = 0;  // measure gradient flow every N updates (0 = off)
  bool check_finite = true;          // stop with DivergedError at the first NaN/Inf loss or gradient
  std::vector<Callback*> callbacks = {};
  /// Polled after every update (after the on_batch_end callbacks); when true, fit() returns after that
  /// update with History::interrupted: no epoch end, validation or scheduler step, unless the update was the
  /// epoch's last, in which case the epoch is finished normally first.
  const std::atomic<bool>* stop = nullptr;
};

/// Evaluation of a model on a dataset (evaluate()).
struct Evaluation {
  double loss = kNone;
  double accuracy = kNone;                           // classification only
  std::vector<std::vector<std::int64_t>> confusion;  // [true class][predicted class]
  std::vector<double> per_class_accuracy;            // recall per class (NaN for a class with no examples)
  std::int64_t examples = 0;
};

/// The processes a Trainer runs on. The default is one process; dist::Collective (dist.hpp) is every rank of
/// an MPI job, each training on its shard of every global batch. Every number that is reported or decides
/// something goes through sum() / any() / from_root(), so all ranks take the same branches.
class Collective {
 public:
  virtual ~Collective() = default;
  virtual int rank() const { return 0; }
  virtual int size() const { return 1; }
  /// Called once before training: gives every rank rank 0's parameters and buffers.
  virtual void start(nn::Module& /*model*/) {}
  /// This rank's rows of a global batch.
  virtual data::Batch shard(const data::Batch& global) { return global; }
  /// objective.backward(), leaving in every parameter's .grad() the gradient of the sum over ranks of the
  /// objectives.
  virtual void backward(const Tensor& objective);
  /// Replaces each value by its sum over ranks.
  virtual void sum(double* /*values*/, int /*count*/) {}
  /// True on every rank when `flag` is true on any.
  virtual bool any(bool flag) { return flag; }
  /// Rank 0's value on every rank.
  virtual double from_root(double value) { return value; }
  /// evaluate() over the ranks: the same global figures on every rank.
  virtual Evaluation evaluate(nn::Module& model, const loss::Loss& loss, const data::TensorDataset& data,
                              std::int64_t batch_size);
};

/// The one training loop, for one process and (with a dist::Collective) for every rank of an MPI job. It
/// keeps the model, loss, optimiser, schedules, callbacks and validation set by reference (they must outlive
/// it), and owns the run's position: epochs and updates done, the running sums of an unfinished epoch, the
/// early-stopping state and the best weights. state() / load_state() carry all of it, with the weights,
/// optimiser buffers, module generators and schedule steps: what a checkpoint writes and reads.
class Trainer {
 public:
  /// Throws ValueError on bad options (naming the option and the value).
  Trainer(nn::Module& model, const loss::Loss& loss, optim::Optimizer& optimizer, FitOptions options = {},
          std::shared_ptr<Collective> collective = nullptr);
  /// The loss is kept by reference: a temporary would be gone before fit().
  Trainer(nn::Module& model, const loss::Loss&& loss, optim::Optimizer& optimizer, FitOptions options = {},
          std::shared_ptr<Collective> collective = nullptr) = delete;

  /// Trains on `train` from the current position to options.epochs (or an early stop or interruption).
  /// Throws ValueError when `train` does not fit the options (empty, a validation set with other features,
  /// a global batch smaller than the ranks), DivergedError (naming epoch and step) when the loss or a
  /// gradient becomes non-finite; the model then holds the last finite weights of the step before.
  History fit(const data::TensorDataset& train);

  /// Everything needed to continue the run (clones of the tensors).
  TrainerState state() const;
  /// Continues from `state`. Validates first (the trainer and the model are unchanged on failure): the
  /// weights, optimiser state and generators must fit this model; counters must be non-negative and
  /// consistent. Throws ValueError naming what does not fit.
  void load_state(const TrainerState& state);

  /// Replaces FitOptions::callbacks (callbacks made after the Trainer, e.g. once a resumed run's folder is
  /// ready).
  void set_callbacks(std::vector<Callback*> callbacks) { options_.callbacks = std::move(callbacks); }

  std::int64_t epoch() const { return epoch_; }              // epochs completed
  std::int64_t step() const { return step_; }                // optimiser updates done
  const EpochProgress& partial() const { return partial_; }  // the done part of epoch epoch() + 1
  const EarlyStoppingState& early_stopping() const { return early_; }
  const FitOptions& options() const { return options_; }
  nn::Module& model() const { return model_; }
  optim::Optimizer& optimizer() const { return optimizer_; }
  Collective& collective() const { return *collective_; }

 private:
  void check_data(const data::TensorDataset& train, std::int64_t num_batches) const;
  bool end_of_epoch(const EpochMetrics& m);

  nn::Module& model_;
  const loss::Loss& loss_;
  optim::Optimizer& optimizer_;
  FitOptions options_;
  std::shared_ptr<Collective> collective_;
  std::int64_t epoch_ = 0, step_ = 0;
  EpochProgress partial_;
  EarlyStoppingState early_;
  std::map<std::string, Tensor> best_;  // the best epoch's weights (early stopping with restore_best)
};

/// Trains `model` on `train` and returns the per-epoch history: Trainer(model, loss, optimizer,
/// options).fit(train). The loss's value is taken as the batch mean (use the losses' default
/// Reduction::mean); grad_reduction = sum scales it by the batch size.
/// Throws ValueError when a training set of `rows` examples, in the global batches of `options`, would leave a
/// rank of `ranks` without a row of some batch (the last one is the smallest). Trainer::fit() checks it; a
/// program may check it before loading anything else.
void check_batch_split(std::int64_t rows, const FitOptions& options, int ranks);

/// Trainer(model, loss, optimizer, options).fit(train): trains `model` on `train` and returns the per-epoch
/// history. The loss's value is taken as the batch mean
/// (use the losses' default Reduction::mean); grad_reduction = sum scales it by the batch size.
/// Throws ValueError on bad options, DivergedError (naming epoch and step) when the loss or a gradient
/// becomes non-finite; the model then holds the last finite weights of the step before.
History fit(nn::Module& model, const loss::Loss& loss, optim::Optimizer& optimizer,
            const data::TensorDataset& train, const FitOptions& options = {});

/// Loss (batch-size weighted mean), accuracy and confusion matrix in eval mode, without recording a graph.
Evaluation evaluate(nn::Module& model, const loss::Loss& loss, const data::TensorDataset& data,
                    std::int64_t batch_size = 1000);

/// The model's outputs for `features` [N, D] (or images, see model_input()), in eval mode, batch by batch, without recording a graph.
Tensor predict(nn::Module& model, const Tensor& features, std::int64_t batch_size = 1000);

/// `x` as `model` takes it: images [N, C, H, W] become rows [N, C*H*W] (a view) when the model's first layer is
/// a Linear or DropConnect (a dense network, as a Sequential or alone); anything else is passed unchanged.
/// fit(), evaluate() and predict() feed every batch through it, so a dense network trains on image data.
Tensor model_input(const nn::Module& model, const Tensor& x);

/// The weight matrices that FitOptions::l1 / l2 penalise: parameters named "...weight" with at least two
/// dimensions (not biases, not batch-norm scales).
Tensors penalised_weights(const nn::Module& model);

/// True when every element of t is finite (no NaN, no infinity).
bool all_finite(const Tensor& t);

/// Fraction of rows whose argmax equals the target class.
double accuracy(const Tensor& outputs, const Tensor& targets);

/// Gradient-flow figures for the model's current gradients (set by a backward on `batch`): weight-gradient
/// norms per Linear/DropConnect layer, and for a Sequential the saturation / dead-unit shares of the
/// activations that follow each layer, from a forward pass over `batch` without recording.
GradFlowRecord measure_grad_flow(nn::Module& model, const Tensor& batch);

}  // namespace backprop::train
