// backprop/train/run.hpp — a whole training run from a configuration into a run folder: what `backprop train`
// does, for a program.
//
// run() loads the data the configuration names, fits the defaults that were not given (an image preset's
// epochs, a table's size), builds the network, loss, optimiser and schedule (config/make.hpp), starts from a
// saved model's weights (run.init_from) or continues a checkpoint, trains with a Trainer and the library's
// callbacks (metrics log, checkpoints, progress bar), evaluates on the test set, and writes the run folder
// (io/run_folder.hpp): model.safetensors, metrics.jsonl, config.toml, summary.json, report.html and
// checkpoints/. How the run ended comes back as a RunResult; bad configurations and unreadable files throw.
// run_config() reads the configuration first, as `backprop train --config FILE --FLAG VALUE` or
// `--resume RUN` does (a resumed run may change only resumable_keys()).
//
// Example:
//   const bp::train::RunConfig setup = bp::train::run_config(
//       {.config_file = "run.toml", .overrides = {{.key = "train.epochs", .text = "5", .flag = "--epochs"}}});
//   const bp::train::RunResult result = bp::train::run(setup, {.out = "runs/a", .stop_on_signals = true});
//   if (result.end == bp::train::RunEnd::finished) std::cout << result.summary_text;  // model in runs/a
//   if (result.end == bp::train::RunEnd::interrupted)                                // Ctrl-C: continue it
//     bp::train::run(bp::train::run_config({.resume = "runs/a"}), {.stop_on_signals = true});
//
// Messages: what the run is doing (the network and data, the fitted defaults, the progress bar) goes to
// RunOptions::log; what must be said even then (an earlier run kept by `overwrite`, how an interrupted run
// continues) to RunOptions::notices. Either may be nullptr. Under MPI (RunOptions::collective a
// dist::Collective) every rank calls run() with the same configuration; rank 0 alone prints and writes files.
#pragma once

#include <atomic>
#include <backprop/config.hpp>
#include <backprop/io/checkpoint.hpp>
#include <backprop/nn.hpp>
#include <backprop/train.hpp>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace backprop::train {

/// A configuration key set on top of a configuration file (or a resumed run's saved configuration), as a
/// command-line flag sets it.
struct Override {
  std::string key;   // "optimizer.lr"
  std::string text;  // "0.01"
  std::string flag;  // "--lr": how messages name it
};

/// Where a run's configuration comes from.
struct RunSource {
  std::string config_file;  // a TOML file (config::load_toml); "" = the defaults
  /// Continue a run: its folder, its checkpoints/ or a checkpoint file (io::resolve_checkpoint). The run
  /// keeps the configuration saved in the checkpoint; config_file must then be "".
  std::string resume;
  std::vector<Override> overrides;  // applied in order, after the file or the checkpoint's configuration
};

/// A run's effective configuration (run_config()).
struct RunConfig {
  config::Config config;           // validated
  std::vector<std::string> given;  // keys the file or an override set: fitted defaults leave them alone
  std::string config_file;         // the file it was read from ("" = none)
  std::string checkpoint;          // resuming: the checkpoint file the run continues
  io::Checkpoint saved;            // resuming: what that checkpoint holds
  bool resuming() const { return !checkpoint.empty(); }
};

/// The keys a resumed run may change: they do not alter what the finished epochs computed (train.epochs,
/// run.checkpoint_every, run.threads, run.grad_flow, run.detect_anomaly).
const std::vector<std::string>& resumable_keys();

/// The configuration `source` names, validated (config::validate). Throws ConfigError for a bad file, key or
/// value (naming the override's flag), for config_file with resume, and for an override of a resumed run
/// that changes a key not in resumable_keys(); FileError for a checkpoint that cannot be read or has no
/// configuration.
RunConfig run_config(const RunSource& source);

/// How a run ended.
enum class RunEnd {
  finished,     // trained to the end or stopped early; the model and summary are written
  interrupted,  // a stop request (RunOptions::stop, a signal): a checkpoint continues it
  diverged,     // the loss or a gradient became NaN or infinite; summary.json says where
};

struct RunOptions {
  /// The run folder. "" = io::new_run_dir() (runs/YYYYMMDD-HHMMSS), or when resuming, the checkpoint's run
  /// folder. A folder that holds another run is refused (ConfigError) unless `overwrite`.
  std::string out;
  /// Replace the run already in `out` once this one has finished: until then it writes to a staging folder
  /// (io::staging_dir) and `out` keeps the earlier run, whatever ends this one.
  bool overwrite = false;
  std::FILE* log = stderr;      // what the run is doing; nullptr = quiet
  std::FILE* notices = stderr;  // kept runs, clean-up warnings, how to continue; nullptr = none
  /// SIGINT / SIGTERM stop training after the current update (StopOnSignals, installed once the data is
  /// loaded and the network built), and RunResult::signal says which came. Not with `stop`.
  bool stop_on_signals = false;
  /// Polled after every update (FitOptions::stop): when it becomes true the run stops and saves a checkpoint.
  const std::atomic<bool>* stop = nullptr;
  /// The processes the run trains on (nullptr = this one); a dist::Collective over an MPI job's ranks.
  std::shared_ptr<Collective> collective;
  /// With several ranks and model.sync_batchnorm: dist::convert_sync_batchnorm, which replaces the batch
  /// norms by ones with global statistics.
  std::function<std::shared_ptr<nn::Sequential>(const nn::Sequential&)> sync_batchnorm;
};

struct RunResult {
  RunEnd end = RunEnd::finished;
  /// Where the run's files are: the run folder, or the staging folder of an `overwrite` run that did not
  /// finish.
  std::string run_dir;
  History history;           // what Trainer::fit() returned (empty after a divergence)
  std::string summary_json;  // summary.json's text (rank 0)
  std::string summary_text;  // finished: the lines that end a run, io::RunSummary::text() (rank 0)
  int signal = 0;          // interrupted: SIGINT or SIGTERM; 0 for RunOptions::stop or another rank's signal
  std::string checkpoint;  // interrupted: the checkpoint that continues the run (rank 0)
  std::string message;     // diverged: the DivergedError's message (epoch, step, what became non-finite)
};

/// Trains the run `config` describes into its run folder (see the file comment); sets the thread count to
/// run.threads when given. Throws ConfigError for a configuration that does not fit the data or the machine
/// (memory), a run folder that is refused or would overwrite an input, or a resume that trains fewer epochs
/// than its checkpoint started; FileError for data, a model or a checkpoint that cannot be read or does not
/// fit, or a run folder that cannot be written; OutOfMemoryError. An `overwrite` run that does not finish
/// leaves the earlier run unchanged and says so on `notices`. Under MPI an interrupted run returns on every
/// rank once rank 0 has written its checkpoint and summary, so any rank may then exit (mpirun ends the job at
/// the first non-zero exit).
RunResult run(const RunConfig& config, const RunOptions& options = {});

}  // namespace backprop::train
