// backprop/train.hpp — fit(), evaluate() and predict(): gradient descent on a dataset.
//
// fit() runs epochs of gradient descent. The batch size picks the mode the seed describes: 1 is stochastic
// gradient descent (one update per example), the dataset size (or full_batch) is batch gradient descent (one
// update per epoch), anything between is mini-batch. The mini-batch gradient is averaged (grad_reduction
// mean, the default) or summed.
//
//   bp::Generator gen(42);
//   bp::nn::Sequential net{bp::nn::Linear(784, 256, gen), bp::nn::ReLU(), bp::nn::Linear(256, 10, gen)};
//   bp::optim::SGD opt(net.parameters(), {.lr = 0.1, .momentum = 0.9});
//   auto train = bp::data::FashionMNIST::load(bp::data::FashionMNIST::default_dir, bp::data::Split::train);
//   auto history = bp::train::fit(net, bp::loss::CrossEntropy{}, opt, train, {.epochs = 10, .batch_size =
//   128}); auto result = bp::train::evaluate(net, bp::loss::CrossEntropy{}, test);   // loss, accuracy,
//   confusion matrix
//
// Interrupting and resuming (docs/train.md): point FitOptions::stop at an atomic flag (a signal handler may
// set it); fit() returns after the update during which it became true, with History::interrupted. Save the
// model, optimiser, module generators and scheduler steps, then continue in a fresh process with the same
// options and
//
//   {.start_epoch = h.epochs_done, .start_step = h.total_updates, .start_progress = h.partial,
//    .early_stopping = h.early_stopping}
//
// for the weights and metrics of an uninterrupted run, bit for bit.
#pragma once

#include <atomic>
#include <backprop/data.hpp>
#include <backprop/loss.hpp>
#include <backprop/nn.hpp>
#include <backprop/optim.hpp>
#include <backprop/tensor.hpp>
#include <cstdint>
#include <functional>
#include <limits>
#include <map>
#include <string>
#include <vector>

namespace backprop::train {

/// How the per-example gradients of a mini-batch are combined. With `sum` the gradient grows with the batch
/// size, so the learning rate must shrink by the same factor to take the same step: lr_sum = lr_mean / B.
enum class GradReduction { mean, sum };

/// Per-layer gradient-flow figures, measured on one mini-batch.
struct LayerFlow {
  std::string name;               // the parameter's name, e.g. "0.weight"
  double grad_norm = 0.0;         // ||dC/dW||_2
  double weight_norm = 0.0;       // ||W||_2
  std::string activation;         // the activation that follows the layer ("sigmoid", "relu", ...) or ""
  double saturated_fraction = 0;  // sigmoid/tanh units with |z| large (output within 0.01 of its bounds)
  double dead_fraction = 0;       // ReLU units that output 0 for every example of the batch
};

struct GradFlowRecord {
  std::int64_t epoch = 0;
  std::int64_t step = 0;  // global update count when measured (counting FitOptions::start_step)
  std::vector<LayerFlow> layers;
};

inline constexpr double kNone = std::numeric_limits<double>::quiet_NaN();

struct EpochMetrics {
  std::int64_t epoch = 0;         // 1-based
  double train_loss = kNone;      // mean over the epoch's batches (in training mode: dropout on)
  double train_accuracy = kNone;  // classification only
  double val_loss = kNone;        // on the validation set, in eval mode
  double val_accuracy = kNone;
  double lr = 0.0;  // learning rate used during the epoch
  // A resumed epoch's updates and seconds include the part done before the interruption.
  std::int64_t updates = 0;  // optimiser steps in this epoch
  double seconds = 0.0;
  double samples_per_second = 0.0;
};

/// Running sums of a partly trained epoch, so that an epoch interrupted and resumed reports the same metrics
/// as one trained in a single call (train_loss = loss_sum / seen, train_accuracy = correct / seen).
struct EpochProgress {
  std::int64_t batches = 0;  // batches of this epoch already done
  double loss_sum = 0.0;     // sum over done batches of batch-mean loss x rows
  double correct = 0.0;      // correctly classified rows so far (classification)
  std::int64_t seen = 0;     // rows seen so far
  std::int64_t updates = 0;  // optimiser updates in this epoch so far
  double seconds = 0.0;      // time spent in this epoch so far
};

/// Early-stopping bookkeeping, carried across a resume: pass History::early_stopping of the interrupted run
/// back as FitOptions::early_stopping and patience counts exactly as in an uninterrupted run.
struct EarlyStoppingState {
  double best_val_loss = std::numeric_limits<double>::infinity();
  std::int64_t best_epoch = 0;  // 1-based; 0 = none yet
  /// Epochs without improvement. With early stopping on it is always (epochs done) - best_epoch, so a
  /// checkpoint that holds best_val_loss and best_epoch can rebuild it.
  std::int64_t since_best = 0;
};

struct History {
  std::vector<EpochMetrics> epochs;  // the epochs completed in this call
  std::vector<GradFlowRecord> grad_flow;
  std::int64_t best_epoch = 0;  // epoch with the lowest validation loss (0 without validation)
  bool stopped_early = false;
  std::int64_t total_updates = 0;  // optimiser updates in total: FitOptions::start_step + this call's
  /// fit() returned because *FitOptions::stop became true while epochs were left to train.
  bool interrupted = false;
  std::int64_t epochs_done = 0;  // completed epochs in total (counting FitOptions::start_epoch)
  /// When interrupted mid-epoch: the progress of the unfinished epoch epochs_done + 1 (pass it back as
  /// FitOptions::start_progress). batches == 0 when interrupted at an epoch boundary.
  EpochProgress partial;
  EarlyStoppingState early_stopping;  // state at return (pass it back as FitOptions::early_stopping)
  /// With early stopping and restore_best: the weights (state_dict) of early_stopping.best_epoch, when fit()
  /// holds them (taken in this call or passed in as FitOptions::best_state); empty otherwise. Save them with
  /// a mid-run checkpoint to restore the best epoch after a resume.
  std::map<std::string, Tensor> best_state;
  /// The weights of the best epoch were loaded into the model at the end (early stop with restore_best).
  bool restored_best = false;
};

/// What a callback sees after each update.
struct StepInfo {
  std::int64_t epoch = 0;  // 1-based
  std::int64_t batch = 0;  // 0-based within the epoch
  std::int64_t num_batches = 0;
  std::int64_t step = 0;  // global update count (after this update), counting FitOptions::start_step
  std::int64_t batch_size = 0;
  double loss = 0.0;
  double accuracy = kNone;
};

/// Hooks into the training loop: progress bars, metric logs, checkpoints. Return true from on_epoch_end to
/// stop training after that epoch. A mid-epoch resume calls on_epoch_begin for the resumed epoch too, and
/// on_batch_end only for the batches it trains.
class Callback {
 public:
  virtual ~Callback() = default;
  virtual void on_train_begin(std::int64_t /*epochs*/, std::int64_t /*batches_per_epoch*/) {}
  virtual void on_epoch_begin(std::int64_t /*epoch*/) {}
  virtual void on_batch_end(const StepInfo&) {}
  virtual void on_grad_flow(const GradFlowRecord&) {}
  virtual bool on_epoch_end(const EpochMetrics&) { return false; }
  virtual void on_train_end(const History&) {}
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
  const data::TensorDataset* validation = nullptr;
  /// Stop when the validation loss has not improved for this many epochs (0 = never), then restore the best
  /// weights (restore_best).
  std::int64_t early_stopping_patience = 0;
  bool restore_best = true;
  double l1 = 0.0;                        // adds l1 * sum |w| to the cost (weights only, not biases)
  double l2 = 0.0;                        // adds l2 * 1/2 sum w^2 to the cost (weights only, not biases)
  double clip_grad_norm = 0.0;            // 0 = off
  optim::Scheduler* scheduler = nullptr;  // stepped once per epoch
  std::int64_t grad_flow_every = 0;       // measure gradient flow every N updates (0 = off)
  bool check_finite = true;               // stop with DivergedError at the first NaN/Inf loss or gradient
  std::int64_t start_epoch = 0;           // epochs already done (resuming a checkpoint)
  std::vector<Callback*> callbacks;

  // ---- interruption and resume (see docs/train.md, "Interrupting and resuming")
  bool drop_last = false;       // drop the last incomplete batch of each epoch
  std::int64_t start_step = 0;  // updates already done (StepInfo::step numbering, grad-flow cadence)
  /// The part of epoch start_epoch + 1 already done (mid-epoch resume): its first start_progress.batches
  /// batches are skipped and its metrics continue from these sums.
  EpochProgress start_progress;
  EarlyStoppingState early_stopping;  // initial early-stopping state (resume)
  /// Polled after every update (after the on_batch_end callbacks); when true, fit() returns after that
  /// update with History::interrupted: no epoch end, validation or scheduler step, unless the update was the
  /// epoch's last, in which case the epoch is finished normally first.
  const std::atomic<bool>* stop = nullptr;
  /// Optional: the weights of early_stopping.best_epoch saved before a resume (History::best_state of the
  /// interrupted run), so that restore_best can restore an epoch trained before this call.
  const std::map<std::string, Tensor>* best_state = nullptr;
};

/// Trains `model` on `train` and returns the per-epoch history. The loss's value is taken as the batch mean
/// (use the losses' default Reduction::mean); grad_reduction = sum scales it by the batch size.
/// Throws ValueError on bad options, DivergedError (naming epoch and step) when the loss or a gradient
/// becomes non-finite; the model then holds the last finite weights of the step before.
History fit(nn::Module& model, const loss::Loss& loss, optim::Optimizer& optimizer,
            const data::TensorDataset& train, const FitOptions& options = {});

struct Evaluation {
  double loss = kNone;
  double accuracy = kNone;                           // classification only
  std::vector<std::vector<std::int64_t>> confusion;  // [true class][predicted class]
  std::vector<double> per_class_accuracy;            // recall per class (NaN for a class with no examples)
  std::int64_t examples = 0;
};

/// Loss (batch-size weighted mean), accuracy and confusion matrix in eval mode, without recording a graph.
Evaluation evaluate(nn::Module& model, const loss::Loss& loss, const data::TensorDataset& data,
                    std::int64_t batch_size = 1000);

/// The model's outputs for `features` [N, D], in eval mode, batch by batch, without recording a graph.
Tensor predict(nn::Module& model, const Tensor& features, std::int64_t batch_size = 1000);

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
