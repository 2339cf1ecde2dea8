// backprop/io/checkpoint.hpp — everything needed to continue a training run exactly where it stopped.
//
// A checkpoint is a model file (model_file.hpp) with "format" = "backprop.checkpoint/1" plus:
//   tensors "optimizer.<key>"  every entry of Optimizer::state() ("optimizer.step", "optimizer.lr",
//                              "optimizer.0.momentum_buffer", ...)
//   tensors "best_state.<name>" with early stopping: the state_dict of best_epoch, so that a resumed run can
//                              still restore the best weights (optional)
//   metadata "checkpoint"      JSON: {"epoch", "step", "data_seed", "scheduler_steps",
//                              "generators": {"<module name>": {"s": [4 x hex], "seed": hex, "has_spare",
//                              "spare": hex of the double's bits}}, "best_val_loss", "best_epoch",
//                              "since_best", "partial": {"batches", "loss_sum", "correct", "seen", "updates",
//                              "seconds"}, "plateau": {"best": hex, "bad_epochs", "cooldown"}}
// Generator states and the partial epoch's sums are written as hexadecimal text (the sums as the bits of the
// double), so they come back bit for bit. "since_best" and "partial" are optional when reading: checkpoints
// written before they existed load with zeros (an epoch boundary, no epochs without improvement).
//
// A checkpoint taken at an epoch boundary has partial.batches == 0. One taken mid-epoch (an interrupted run:
// SIGINT / SIGTERM) has `epoch` completed epochs plus partial.batches batches of epoch `epoch + 1`, and the
// running sums of that epoch's metrics, so a resumed run reports the epoch as an uninterrupted one would.
//
// In a run folder checkpoints live in RUN/checkpoints/ as epoch-0004.safetensors, ...; the text file
// RUN/checkpoints/latest names the newest one and is replaced last, after the checkpoint itself is safely on
// disk, so a crash at any moment leaves `latest` naming a complete checkpoint. Every file is written with
// write_file_atomic's protocol (temporary file, fsync, rename, fsync of the directory).
//
// Example:
//   bp::io::Checkpoint ck{.model = description, .trainer = trainer.state()};  // train::Trainer
//   bp::io::write_checkpoint("runs/demo/checkpoints", ck, /*keep=*/3);
//   bp::io::Checkpoint back = bp::io::load_checkpoint(bp::io::resolve_checkpoint("runs/demo"));
//   trainer.load_state(back.trainer);                                         // continues where it stopped
#pragma once

#include <backprop/generator.hpp>
#include <backprop/io/model_file.hpp>
#include <backprop/nn.hpp>
#include <backprop/train/state.hpp>
#include <cstdint>
#include <limits>
#include <map>
#include <string>

namespace backprop::io {

/// A checkpoint: the network's description and a Trainer's state. When saving, the weights written are
/// trainer.model (model.state is not used); when loading, model.state and trainer.model are the same tensors.
struct Checkpoint {
  ModelFile model;              // architecture, preprocessing, config
  train::TrainerState trainer;  // weights, optimiser, generators, schedules, position, early stopping
};

/// Writes a checkpoint file crash-safely. Throws FileError when writing fails.
void save_checkpoint(const std::string& path, const Checkpoint& checkpoint);

/// Reads a checkpoint. Throws FileError naming the file and what is wrong: not a checkpoint (a model file
/// gives "is a model, not a checkpoint"), the "checkpoint" metadata missing a field or not JSON, a generator
/// state that is not 4 x 64-bit hex, or any load_model / load_safetensors error.
Checkpoint load_checkpoint(const std::string& path);

/// Saves DIR/epoch-NNNN.safetensors (NNNN = checkpoint.epoch, zero-padded to 4; a mid-epoch checkpoint is
/// DIR/epoch-NNNN-step-SSSSSSSS.safetensors with SSSSSSSS = checkpoint.step), then replaces DIR/latest with
/// that file name and a newline, then removes the oldest epoch-*.safetensors files beyond the newest `keep`
/// (0 = keep all; "oldest" by epoch, then step). Creates DIR if needed. Returns the checkpoint's path.
std::string write_checkpoint(const std::string& dir, const Checkpoint& checkpoint, int keep = 3);

/// The checkpoint a --resume argument means: a checkpoint file itself; a directory with a `latest` file (a
/// checkpoints directory); or a run directory with checkpoints/latest. Throws FileError naming what was
/// looked for when none is found or `latest` names a missing file.
std::string resolve_checkpoint(const std::string& path);

/// The Generator state of every module that owns one (Dropout, DropConnect), by its name in
/// named_modules() ("2", "5", ...).
std::map<std::string, Generator::State> module_generators(nn::Module& model);
/// Restores states saved by module_generators. Throws FileError naming the module when a name is unknown or
/// a module with its own generator has no saved state.
void restore_module_generators(nn::Module& model, const std::map<std::string, Generator::State>& states);

}  // namespace backprop::io
