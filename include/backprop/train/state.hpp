// backprop/train/state.hpp — the records of a training run: per-epoch metrics, gradient flow, the progress of
// an unfinished epoch, early stopping, and TrainerState, everything a checkpoint holds.
//
// They are plain data, defined once: the training loop fills them (train::Trainer), the metrics log and the
// checkpoint files store them (io/metrics.hpp, io/checkpoint.hpp), the report reads them back.
//
// Example:
//   bp::train::Trainer trainer(net, loss, opt, {.epochs = 5});
//   trainer.fit(train);
//   bp::train::TrainerState s = trainer.state();  // weights, optimiser, generators, position, early stopping
//   std::cout << s.epoch << " epochs, " << s.step << " updates, " << s.partial.batches
//             << " batches of the next epoch\n";
#pragma once

#include <backprop/generator.hpp>
#include <backprop/tensor.hpp>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <vector>

namespace backprop::train {

/// A value that does not exist (no validation set, accuracy in regression); written as null.
inline constexpr double kNone = std::numeric_limits<double>::quiet_NaN();

/// Per-layer gradient-flow figures, measured on one mini-batch.
struct LayerFlow {
  std::string name;               // the parameter's name, e.g. "0.weight"
  double grad_norm = kNone;       // ||dC/dW||_2
  double weight_norm = kNone;     // ||W||_2
  std::string activation;         // the activation that follows the layer ("sigmoid", "relu", ...) or ""
  double saturated_fraction = 0;  // sigmoid/tanh units with |z| large (output within 0.01 of its bounds)
  double dead_fraction = 0;       // ReLU units that output 0 for every example of the batch
};

struct GradFlowRecord {
  std::int64_t epoch = 0;
  std::int64_t step = 0;  // global update count when measured
  std::vector<LayerFlow> layers;
};

struct EpochMetrics {
  std::int64_t epoch = 0;         // 1-based
  double train_loss = kNone;      // mean over the epoch's batches (in training mode: dropout on)
  double train_accuracy = kNone;  // classification only
  double val_loss = kNone;        // on the validation set, in eval mode
  double val_accuracy = kNone;
  double lr = kNone;  // learning rate used during the epoch
  // A resumed epoch's updates and seconds include the part done before the interruption.
  std::int64_t updates = 0;  // optimiser steps in this epoch
  double seconds = kNone;
  double samples_per_second = kNone;
};

/// Running sums of a partly trained epoch, so that an epoch interrupted and resumed reports the same metrics
/// as one trained in a single call (train_loss = loss_sum / seen, train_accuracy = correct / seen).
struct EpochProgress {
  std::int64_t batches = 0;  // batches of this epoch already done (0: at an epoch boundary)
  double loss_sum = 0.0;     // sum over done batches of batch-mean loss x rows
  double correct = 0.0;      // correctly classified rows so far (classification)
  std::int64_t seen = 0;     // rows seen so far
  std::int64_t updates = 0;  // optimiser updates in this epoch so far
  double seconds = 0.0;      // time spent in this epoch so far
};

/// Early-stopping bookkeeping: the best validation loss so far and the epochs since it.
struct EarlyStoppingState {
  double best_val_loss = std::numeric_limits<double>::infinity();
  std::int64_t best_epoch = 0;  // 1-based; 0 = none yet
  std::int64_t since_best = 0;  // epochs without improvement (counted only with a patience)
};

/// ReduceLROnPlateau's bookkeeping (optim/schedule.hpp).
struct PlateauState {
  double best = std::numeric_limits<double>::infinity();
  std::int64_t bad_epochs = 0;  // epochs since `best` without an improvement
  std::int64_t cooldown = 0;    // epochs left before bad epochs are counted again
};

/// Everything that decides how a run continues: Trainer::state() returns it and Trainer::load_state() takes
/// it back; a checkpoint file is this plus the model file's description of the network (io/checkpoint.hpp).
struct TrainerState {
  std::map<std::string, Tensor> model;                 // Module::state_dict(): parameters and buffers
  std::map<std::string, Tensor> optimizer;             // Optimizer::state(): step, lr, moment buffers
  std::map<std::string, Generator::State> generators;  // module name -> its own generator (dropout, ...)
  std::int64_t scheduler_steps = 0;                    // Scheduler::steps()
  PlateauState plateau;                                // with a ReduceLROnPlateau
  std::uint64_t data_seed = 0;  // the seed of the data order (epoch e's order is (seed, e))
  std::int64_t epoch = 0;       // epochs completed
  std::int64_t step = 0;        // optimiser updates done
  EpochProgress partial;        // the done part of epoch `epoch + 1` (batches == 0 at an epoch boundary)
  EarlyStoppingState early_stopping;
  std::map<std::string, Tensor> best_state;  // early stopping: the weights of best_epoch (may be empty)
};

}  // namespace backprop::train
