// `backprop train`: configuration -> data -> network -> fit() -> model file, test evaluation, summary,
// report.
#include <unistd.h>

#include <backprop/anomaly.hpp>
#include <backprop/backprop.hpp>
#include <backprop/config/make.hpp>
#include <backprop/data/source.hpp>
#include <backprop/io/checkpoint.hpp>
#include <backprop/io/metrics.hpp>
#include <backprop/io/module_tree.hpp>
#include <backprop/io/run_folder.hpp>
#include <backprop/io/run_summary.hpp>
#include <backprop/io/warm_start.hpp>
#include <backprop/threads.hpp>
#include <backprop/train/callbacks.hpp>
#include <backprop/train/memory_estimate.hpp>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli.hpp"
#include "parallel.hpp"
#include "signals.hpp"
#include "text.hpp"

namespace cli {

namespace bp = backprop;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Keys a resumed run may change: they do not alter what the finished epochs computed.
const std::vector<std::string> kResumable = {"train.epochs", "run.checkpoint_every", "run.threads",
                                             "run.grad_flow", "run.detect_anomaly"};

// The run folder of a checkpoint: RUN/checkpoints/epoch-NNNN.safetensors -> RUN.
std::string run_dir_of(const std::string& checkpoint) {
  const fs::path parent = fs::path(checkpoint).parent_path();
  BP_CHECK(
      parent.filename() == "checkpoints", ConfigError, "--resume ", checkpoint,
      ": the checkpoint is not inside a run folder's checkpoints/ directory; say where the run continues "
      "with --out DIR");
  return parent.parent_path().empty() ? "." : parent.parent_path().string();
}

struct Effective {
  bp::config::Config config;
  std::string checkpoint;  // when resuming
  bp::io::Checkpoint saved;
  std::vector<std::string> given;  // keys set by --config or a flag: fit_to_data leaves them alone
};

Effective effective_config(const TrainArgs& a) {
  Effective e;
  if (!a.resume.empty()) {
    BP_CHECK(a.config_file.empty(), ConfigError,
             "--config cannot be combined with --resume: a resumed run keeps the configuration saved in its "
             "checkpoint");
    e.checkpoint = bp::io::resolve_checkpoint(a.resume);
    e.saved = bp::io::load_checkpoint(e.checkpoint);
    BP_CHECK(!e.saved.model.config_toml.empty(), FileError, e.checkpoint,
             ": the checkpoint has no 'config' metadata");
    try {
      e.config = bp::config::parse_toml(e.saved.model.config_toml, e.checkpoint + " (config)");
    } catch (const bp::ConfigError& err) {
      throw bp::FileError(err.what());
    }
    for (const Override& o : a.overrides) {
      const std::string before = bp::config::get(e.config, o.key);
      bp::config::set(e.config, o.key, o.text, o.flag);
      const bool allowed = std::find(kResumable.begin(), kResumable.end(), o.key) != kResumable.end();
      BP_CHECK(
          allowed || bp::config::get(e.config, o.key) == before, ConfigError, o.flag,
          " cannot be changed when resuming: the run continues with the configuration in its checkpoint (",
          o.key, " = ", before,
          "); only --epochs, --checkpoint-every, --threads, --grad-flow and --detect-anomaly may change");
    }
  } else {
    e.config = a.config_file.empty() ? bp::config::Config{} : bp::config::load_toml(a.config_file, &e.given);
    for (const Override& o : a.overrides) {
      bp::config::set(e.config, o.key, o.text, o.flag);
      e.given.push_back(o.key);
    }
  }
  bp::config::validate(e.config);
  return e;
}

// Where a run writes: its run folder, or while --overwrite keeps the earlier run there, a staging folder.
struct Place {
  std::string dir;      // the run folder
  std::string staging;  // non-empty: written here, moved to `dir` once the run has finished
  const std::string& written() const { return staging.empty() ? dir : staging; }
};

// A run folder that holds an earlier run is not a new run's to empty: refused, or with --overwrite staged.
std::string stage_or_refuse(const TrainArgs& args, const std::string& run_dir, bool continues_here) {
  if (continues_here) return {};
  const std::vector<std::string> found = bp::io::run_entries(run_dir);
  if (found.empty()) return {};
  if (!args.overwrite) {
    std::string names;
    for (const std::string& f : found) names += (names.empty() ? "" : ", ") + f;
    throw bp::ConfigError("--out " + run_dir + ": the folder already holds a run (" + names +
                          "), which a new run would replace. Continue it with --resume " + run_dir +
                          ", choose another --out, or give --overwrite to replace it once the new run has "
                          "finished");
  }
  return bp::io::staging_dir(run_dir, "--out");
}

int train(const TrainArgs& args, Effective& eff, const Place& place,
          std::chrono::steady_clock::time_point started);

// The report of a run that already fails: one that cannot be written is a warning, not the run's error.
void report_anyway(bp::io::RunFolder& files, bool talk) {
  const std::string why = files.try_report();
  if (talk && !why.empty()) std::fprintf(stderr, "warning: no report written: %s\n", why.c_str());
}

}  // namespace

int run_train(const TrainArgs& args) {
  const auto started = std::chrono::steady_clock::now();
  // Under mpirun every rank runs all of this with the same configuration and data; rank 0 alone prints and
  // writes files (parallel.hpp). Without MPI, one process is rank 0 of 1.
  const Parallel* mpi = Parallel::current();
  const bool root = mpi == nullptr || mpi->root();
  Effective eff = effective_config(args);  // every rank reads (and, resuming, validates) the checkpoint
  const bp::config::Config& cfg = eff.config;
  if (args.print_config) {
    if (root) std::cout << bp::config::to_toml(cfg);
    return kOk;
  }
  const bool resuming = !eff.checkpoint.empty();
  const std::string run_dir = !args.out.empty() ? args.out
                              : resuming        ? run_dir_of(eff.checkpoint)
                                                : bp::io::new_run_dir();
  // Before any data is read: a run folder that cannot be written, or whose files would overwrite an input, is
  // refused now rather than after the training.
  Place place{.dir = run_dir, .staging = {}};
  if (root) {
    bp::io::check_run_folder(
        run_dir,
        {{"--data", cfg.data.source == "fashion-mnist" ? std::string(bp::data::FashionMNIST::default_dir)
                                                       : cfg.data.source},
         {"--config", args.config_file}},
        "--out");
    const fs::path checkpoint_dir = fs::path(eff.checkpoint).parent_path();
    place.staging = stage_or_refuse(
        args, run_dir,
        resuming && checkpoint_dir.filename() == "checkpoints" &&
            bp::io::same_path(
                checkpoint_dir.parent_path().empty() ? "." : checkpoint_dir.parent_path().string(), run_dir));
  }
  if (place.staging.empty()) return train(args, eff, place, started);
  // --overwrite: whatever ends the new run before it has finished, the earlier run stays as it was.
  const auto kept = [&](const char* what) {
    std::error_code ec;
    std::fprintf(stderr, "note: --overwrite: %s still holds the earlier run, unchanged; %s\n",
                 run_dir.c_str(),
                 fs::exists(place.staging, ec) ? (std::string(what) + " in " + place.staging).c_str()
                                               : "the new run wrote nothing");
  };
  try {
    const int code = train(args, eff, place, started);
    if (code != kOk) kept("the interrupted new run is");
    return code;
  } catch (...) {
    kept("the new run's files are");
    throw;
  }
}

namespace {

// The run, from its data to its files (rank 0's in place.written(), moved to place.dir when staged).
int train(const TrainArgs& args, Effective& eff, const Place& place,
          std::chrono::steady_clock::time_point started) {
  const Parallel* mpi = Parallel::current();
  const bool distributed = mpi != nullptr && mpi->ranks() > 1;
  const bool root = mpi == nullptr || mpi->root();
  const bp::config::Config& cfg = eff.config;
  const bool resuming = !eff.checkpoint.empty();
  const std::string& run_dir = place.written();
  const bool talk = root && !args.quiet && !args.json;
  if (cfg.run.threads > 0) bp::set_num_threads(static_cast<int>(cfg.run.threads));

  // ---- data, network, optimiser --------------------------------------------------------------------------
  bp::data::TrainingData data = bp::data::load_training_data(cfg);
  if (!resuming) {  // an image preset's own defaults (its epochs) for the keys that were not given
    const bp::config::FittedDefaults preset =
        bp::config::preset_defaults(eff.config, eff.given, data.preprocessing.input == "image");
    if (talk && !preset.summary.empty()) std::fprintf(stderr, "%s\n", preset.summary.c_str());
  }
  // A table's keys that were not given, fitted to its size; a new validation split reads it again.
  if (!resuming && data.preprocessing.input == "table") {
    const double split = cfg.data.val_split;
    const bp::config::FittedDefaults fitted =
        bp::config::fit_to_data(eff.config,
                                {.rows = data.train.size() + data.validation.size(),
                                 .features = data.train.num_features(),
                                 .classes = data.train.num_classes},
                                eff.given);
    if (cfg.data.val_split != split) data = bp::data::load_training_data(cfg);
    if (talk && !fitted.summary.empty()) std::fprintf(stderr, "%s\n", fitted.summary.c_str());
  }
  const bool regression = data.train.task == bp::data::Task::regression;
  const std::int64_t outputs = regression ? data.train.targets.size(1) : data.train.num_classes;
  BP_CHECK(regression || outputs >= 2, FileError, data.name,
           ": classification needs at least 2 classes, found ", outputs);
  const std::int64_t n = data.train.size(), batch = cfg.train.batch_size;
  if (distributed) {
    try {
      bp::train::check_batch_split(
          n, {.batch_size = std::max<std::int64_t>(batch, 1), .full_batch = batch == 0}, mpi->ranks());
    } catch (const bp::ValueError& e) {
      const std::string why = e.what();
      throw bp::ConfigError("--batch-size " + (batch == 0 ? std::string("full") : std::to_string(batch)) +
                            " is the global batch, split over " + std::to_string(mpi->ranks()) +
                            " ranks: " + why.substr(why.rfind("fit: ", 0) == 0 ? 5 : 0));
    }
  }
  BP_CHECK(!(cfg.model.batchnorm && ((batch > 0 && batch < n && n % batch == 1) || n == 1)), ConfigError,
           "--batchnorm: the last batch of each epoch would hold a single example (", n,
           " training examples in batches of ", batch,
           "), which has no variance; choose another --batch-size or --val-split");
  // --arch mlp: dense layers from --layers and its companions; else a preset's or the config's layer list.
  const std::vector<bp::config::LayerSpec> layers = bp::config::network_layers(cfg.model);
  const bool mlp = layers.empty();
  if (!mlp) bp::config::check_layer_list_keys(eff.given, cfg.model.arch);
  const bp::io::Architecture arch =
      mlp ? bp::config::make_architecture(cfg, data.train.num_features(), outputs) : bp::io::Architecture{};
  if (mlp) bp::train::check_memory(arch, cfg, n, data.nbytes());
  bp::Generator gen(cfg.run.seed);
  std::shared_ptr<bp::nn::Sequential> net =
      mlp ? bp::io::build_network(arch, gen)
          : bp::config::make_layer_network(layers, data.train.num_features(), outputs, data.preprocessing,
                                           gen, cfg.model.init);
  bp::io::ModelFile model{.architecture = arch, .preprocessing = data.preprocessing};
  model.config_toml = bp::config::to_toml(cfg);
  if (!mlp) {  // saved as its module tree: eval, predict and info rebuild it from the file
    model.module_tree = bp::io::module_tree(*net);
    model.input_shape = {data.train.num_features()};
  }
  // Global batch statistics need several ranks; in one process local statistics already are the global ones.
  // The synchronised layers share the plain ones' tensors and names, and the tree above names the plain ones,
  // so the model file is the one a single process writes.
  if (distributed && cfg.model.sync_batchnorm) net = mpi->sync_batchnorm(*net);
  const auto loss = bp::config::make_loss(cfg.train.loss, data.train.task);
  const auto optimizer = bp::config::make_optimizer(cfg.optimizer, net->parameters());
  const auto scheduler = bp::config::make_scheduler(cfg.optimizer, *optimizer, cfg.train.epochs);
  const std::string network =
      mlp ? bp::io::describe(arch) : cfg.model.arch + " (" + std::to_string(layers.size()) + " layers)";

  if (!cfg.run.init_from.empty() && !resuming) bp::io::init_from(*net, cfg.run.init_from, model);

  // ---- the trainer and its callbacks ---------------------------------------------------------------------
  // SIGINT / SIGTERM from here on: fit() returns after the current update, and ModelCheckpoint saves that
  // point.
  StopSignals signals;
  bp::train::Trainer trainer(
      *net, *loss, *optimizer,
      {.epochs = cfg.train.epochs,
       .batch_size = std::max<std::int64_t>(cfg.train.batch_size, 1),
       .full_batch = cfg.train.batch_size == 0,
       .grad_reduction =
           cfg.train.grad_reduction == "sum" ? bp::train::GradReduction::sum : bp::train::GradReduction::mean,
       .shuffle = true,
       .seed = cfg.run.seed,
       .augment = cfg.data.augment.empty() ? nullptr
                                           : std::make_shared<const bp::data::Augmentation>(
                                                 bp::data::Augmentation::parse(cfg.data.augment)),
       .image_shape = data.image,
       .prefetch = !cfg.data.augment.empty(),  // augmentation is worth a loader thread; a plain gather is not
       .validation = data.validation.size() > 0 ? &data.validation : nullptr,
       .early_stopping_patience = cfg.train.early_stopping,
       .l1 = cfg.train.l1,
       .l2 = cfg.train.l2,
       .clip_grad_norm = cfg.train.clip_grad_norm,
       .scheduler = scheduler.get(),
       .grad_flow_every = cfg.run.grad_flow,
       .callbacks = {},
       .stop = signals.flag()},
      mpi != nullptr ? mpi->collective() : nullptr);

  // ---- the run folder (checked at start-up) ---------------------------------------------------------------
  bp::io::RunFolder files(run_dir, root, "--out");
  if (resuming) {
    const bp::io::Checkpoint& ck = eff.saved;
    bp::io::check_same_model(ck.model, model, eff.checkpoint);
    BP_CHECK(ck.trainer.partial.batches == 0 || cfg.train.epochs > ck.trainer.epoch, ConfigError, "--epochs ",
             cfg.train.epochs, ": the checkpoint ", eff.checkpoint, " stopped inside epoch ",
             ck.trainer.epoch + 1, "; a resumed run must train at least ", ck.trainer.epoch + 1, " epochs");
    try {
      trainer.load_state(ck.trainer);
    } catch (const bp::FileError&) {
      throw;
    } catch (const bp::OutOfMemoryError&) {
      throw;
    } catch (const bp::Error& e) {
      throw bp::FileError(eff.checkpoint + ": does not fit the network it describes: " + e.what());
    }
    files.prepare_resume(trainer.epoch(), trainer.step());
  } else {
    files.prepare_fresh();
  }
  if (root) bp::io::write_file_atomic(files.config(), model.config_toml);

  if (talk) {
    std::string extras = mlp ? arch.activation : "";
    if (arch.batchnorm) extras += ", batchnorm";
    if (arch.dropout > 0) extras += ", dropout " + number_text(arch.dropout);
    if (arch.dropconnect > 0) extras += ", dropconnect " + number_text(arch.dropconnect);
    if (!extras.empty()) extras += "; ";
    std::fprintf(stderr, "%s %s (%s%lld parameters) on %s: %lld train, %lld validation, %lld test\n",
                 resuming ? "resuming" : "training", network.c_str(), extras.c_str(),
                 static_cast<long long>(net->num_parameters()), data.name.c_str(),
                 static_cast<long long>(data.train.size()), static_cast<long long>(data.validation.size()),
                 static_cast<long long>(data.test.size()));
    const std::int64_t done = trainer.epoch(), batches = eff.saved.trainer.partial.batches;
    if (resuming && batches > 0)
      std::fprintf(stderr, "from %s: epoch %lld of %lld done, and %lld batches of epoch %lld\n",
                   eff.checkpoint.c_str(), static_cast<long long>(done),
                   static_cast<long long>(cfg.train.epochs), static_cast<long long>(batches),
                   static_cast<long long>(done + 1));
    else if (resuming)
      std::fprintf(stderr, "from %s: epoch %lld of %lld done\n", eff.checkpoint.c_str(),
                   static_cast<long long>(done), static_cast<long long>(cfg.train.epochs));
    if (distributed)
      std::fprintf(stderr, "data parallel over %d ranks: global batch %s%s\n", mpi->ranks(),
                   batch == 0 ? "full" : std::to_string(batch).c_str(),
                   cfg.model.sync_batchnorm ? ", synchronised batch norm" : "");
    if (place.staging.empty())
      std::fprintf(stderr, "run folder %s\n", run_dir.c_str());
    else
      std::fprintf(stderr, "run folder %s, written to %s until the run has finished (--overwrite)\n",
                   place.dir.c_str(), run_dir.c_str());
  }

  // ---- fit ------------------------------------------------------------------------------------------------
  // Files and callbacks: rank 0 only (the Trainer calls callbacks on rank 0 alone).
  std::optional<bp::io::MetricsWriter> metrics;
  std::optional<bp::train::MetricsLog> logger;
  std::optional<bp::train::ModelCheckpoint> checkpoints;
  bp::train::ProgressBar progress(stderr);
  std::vector<bp::train::Callback*> callbacks;
  if (root) {
    metrics.emplace(files.metrics());
    logger.emplace(*metrics);
    checkpoints.emplace(files.checkpoints(), model,
                        bp::train::CheckpointOptions{.every = cfg.run.checkpoint_every});
    callbacks = {&*logger, &*checkpoints};
  }
  if (talk) callbacks.push_back(&progress);
  trainer.set_callbacks(callbacks);

  bp::io::RunSummary summary(run_dir, {.data_source = data.name,
                                       .task = data.preprocessing.task,
                                       .train_examples = data.train.size(),
                                       .validation_examples = data.validation.size(),
                                       .test_examples = data.test.size(),
                                       .network = network,
                                       .activation = mlp ? arch.activation : "",
                                       .parameters = net->num_parameters(),
                                       .optimizer = cfg.optimizer.name,
                                       .lr = cfg.optimizer.lr,
                                       .batch_size = cfg.train.batch_size,
                                       .seed = cfg.run.seed,
                                       .epochs_planned = cfg.train.epochs});
  bp::train::History history;
  // --detect-anomaly: every op checks what it produces, so a divergence names the op (backprop/anomaly.hpp).
  std::optional<bp::DetectAnomalyGuard> anomaly;
  if (cfg.run.detect_anomaly) anomaly.emplace();
  try {
    history = trainer.fit(data.train);
  } catch (const bp::DivergedError& e) {
    summary.diverged(e.what(), seconds_since(started));
    files.write_summary(summary.json_text());
    report_anyway(files, talk);
    throw;
  }
  anomaly.reset();  // the checks cover training; evaluation and saving run at full speed

  // ---- results --------------------------------------------------------------------------------------------
  summary.history(history);
  if (history.interrupted) {
    // ModelCheckpoint saved exactly the point fit() stopped at. Signals that come now are ignored.
    if (root) {
      const std::string& saved = checkpoints->last_path();
      const std::int64_t epoch = trainer.epoch() + (trainer.partial().batches > 0 ? 1 : 0);
      summary.interrupted(signals.name(), epoch, history.total_updates, saved, seconds_since(started));
      files.write_summary(summary.json_text());
      report_anyway(files, talk);
      if (args.json) std::cout << summary.json_text() << "\n";
      std::fprintf(stderr,
                   "interrupted by %s at epoch %lld, step %lld; saved %s; continue with: backprop train "
                   "--resume %s\n",
                   signals.name().c_str(), static_cast<long long>(epoch),
                   static_cast<long long>(history.total_updates), saved.c_str(), run_dir.c_str());
    }
    // Every rank leaves with 128 + signal, and mpirun ends the job as soon as one rank exits non-zero: the
    // others wait here until rank 0's checkpoint is on disk.
    if (distributed) mpi->barrier();
    return signals.exit_code();
  }
  model.state = net->state_dict();
  if (data.test.size() > 0) {
    // Over MPI the test rows are split across ranks and the sums all-reduced (every rank must take part).
    const bp::train::Evaluation global = trainer.collective().evaluate(*net, *loss, data.test, 1000);
    if (root) {
      const bp::io::Preprocessing& pre = data.preprocessing;
      const bp::io::TestRecord test = bp::io::test_record(*net, global, data.test, pre.class_names,
                                                          pre.input == "image" && pre.image_shape.size() == 2
                                                              ? pre.image_shape
                                                              : std::vector<std::int64_t>{});
      metrics->test(test);
      std::optional<bp::train::RegressionMetrics> errors;
      if (regression)
        errors =
            bp::train::regression_metrics(bp::train::predict(*net, data.test.features), data.test.targets);
      summary.test(test, errors);
    }
  }
  if (!root) return kOk;
  summary.finish(seconds_since(started));
  summary.set_run_dir(place.dir);
  model.training_json = summary.training_json();
  bp::io::save_model(files.model(), model);
  files.write_summary(summary.json_text());
  try {
    files.write_report();
  } catch (const bp::FileError& e) {
    throw bp::FileError(std::string(e.what()) + "; the run's model and summary.json are saved in " + run_dir +
                        "; write the report again with: backprop report " + run_dir);
  }
  if (!place.staging.empty()) {
    const std::string warning = bp::io::replace_run(place.staging, place.dir, "--overwrite");
    if (!warning.empty()) std::fprintf(stderr, "warning: %s\n", warning.c_str());
  }

  if (args.json) {
    std::cout << summary.json_text() << "\n";
  } else if (!args.quiet) {
    std::cout << summary.text();
  }
  return kOk;
}

}  // namespace

}  // namespace cli
