// train::run (backprop/train/run.hpp): configuration -> data -> network -> fit() -> model file, test
// evaluation, summary, report.
#include <algorithm>
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
#include <backprop/train/run.hpp>
#include <backprop/train/signals.hpp>
#include <charconv>
#include <chrono>
#include <filesystem>
#include <optional>

namespace backprop::train {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Shortest text of a number ("0.2", "1e-05").
std::string shortest(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

// The run folder of a checkpoint: RUN/checkpoints/epoch-NNNN.safetensors -> RUN.
std::string run_dir_of(const std::string& checkpoint) {
  const fs::path parent = fs::path(checkpoint).parent_path();
  BP_CHECK(
      parent.filename() == "checkpoints", ConfigError, "--resume ", checkpoint,
      ": the checkpoint is not inside a run folder's checkpoints/ directory; say where the run continues "
      "with --out DIR");
  return parent.parent_path().empty() ? "." : parent.parent_path().string();
}

// Where a run writes: its run folder, or while `overwrite` keeps the earlier run there, a staging folder.
struct Place {
  std::string dir;      // the run folder
  std::string staging;  // non-empty: written here, moved to `dir` once the run has finished
  const std::string& written() const { return staging.empty() ? dir : staging; }
};

// A run folder that holds an earlier run is not a new run's to empty: refused, or with `overwrite` staged.
std::string stage_or_refuse(const std::string& run_dir, bool overwrite, bool continues_here) {
  if (continues_here) return {};
  const std::vector<std::string> found = io::run_entries(run_dir);
  if (found.empty()) return {};
  if (!overwrite) {
    std::string names;
    for (const std::string& f : found) names += (names.empty() ? "" : ", ") + f;
    throw ConfigError("--out " + run_dir + ": the folder already holds a run (" + names +
                      "), which a new run would replace. Continue it with --resume " + run_dir +
                      ", choose another --out, or give --overwrite to replace it once the new run has "
                      "finished");
  }
  return io::staging_dir(run_dir, "--out");
}

// The report of a run that already fails: one that cannot be written is a warning, not the run's error.
void report_anyway(io::RunFolder& files, std::FILE* log) {
  const std::string why = files.try_report();
  if (log != nullptr && !why.empty()) std::fprintf(log, "warning: no report written: %s\n", why.c_str());
}

// The run, from its data to its files (rank 0's in place.written(), moved to place.dir when staged).
RunResult train_into(const RunConfig& setup, const RunOptions& options, const Place& place,
                     Clock::time_point started) {
  Collective* const mpi = options.collective.get();
  const bool distributed = mpi != nullptr && mpi->size() > 1;
  const bool root = mpi == nullptr || mpi->rank() == 0;
  config::Config cfg = setup.config;  // the fitted defaults below change it
  const bool resuming = setup.resuming();
  const std::string& run_dir = place.written();
  std::FILE* const log = root ? options.log : nullptr;
  std::FILE* const notices = root ? options.notices : nullptr;
  if (cfg.run.threads > 0) set_num_threads(static_cast<int>(cfg.run.threads));

  // ---- data, network, optimiser --------------------------------------------------------------------------
  data::TrainingData data = data::load_training_data(cfg);
  if (!resuming) {  // an image preset's own defaults (its epochs) for the keys that were not given
    const config::FittedDefaults preset =
        config::preset_defaults(cfg, setup.given, data.preprocessing.input == "image");
    if (log != nullptr && !preset.summary.empty()) std::fprintf(log, "%s\n", preset.summary.c_str());
  }
  // A table's keys that were not given, fitted to its size; a new validation split reads it again.
  if (!resuming && data.preprocessing.input == "table") {
    const double split = cfg.data.val_split;
    const config::FittedDefaults fitted =
        config::fit_to_data(cfg,
                            {.rows = data.train.size() + data.validation.size(),
                             .features = data.train.num_features(),
                             .classes = data.train.num_classes},
                            setup.given);
    if (cfg.data.val_split != split) data = data::load_training_data(cfg);
    if (log != nullptr && !fitted.summary.empty()) std::fprintf(log, "%s\n", fitted.summary.c_str());
  }
  const bool regression = data.train.task == data::Task::regression;
  const std::int64_t outputs = regression ? data.train.targets.size(1) : data.train.num_classes;
  BP_CHECK(regression || outputs >= 2, FileError, data.name,
           ": classification needs at least 2 classes, found ", outputs);
  const std::int64_t n = data.train.size(), batch = cfg.train.batch_size;
  if (distributed) {
    try {
      check_batch_split(n, {.batch_size = std::max<std::int64_t>(batch, 1), .full_batch = batch == 0},
                        mpi->size());
    } catch (const ValueError& e) {
      const std::string why = e.what();
      throw ConfigError("--batch-size " + (batch == 0 ? std::string("full") : std::to_string(batch)) +
                        " is the global batch, split over " + std::to_string(mpi->size()) +
                        " ranks: " + why.substr(why.rfind("fit: ", 0) == 0 ? 5 : 0));
    }
  }
  BP_CHECK(!(cfg.model.batchnorm && ((batch > 0 && batch < n && n % batch == 1) || n == 1)), ConfigError,
           "--batchnorm: the last batch of each epoch would hold a single example (", n,
           " training examples in batches of ", batch,
           "), which has no variance; choose another --batch-size or --val-split");
  // model.arch "mlp": dense layers from model.layers and its companions; else a preset's or the config's
  // layer list.
  const std::vector<config::LayerSpec> layers = config::network_layers(cfg.model);
  const bool mlp = layers.empty();
  if (!mlp) config::check_layer_list_keys(setup.given, cfg.model.arch);
  const io::Architecture arch =
      mlp ? config::make_architecture(cfg, data.train.num_features(), outputs) : io::Architecture{};
  if (mlp) check_memory(arch, cfg, n, data.nbytes());
  Generator gen(cfg.run.seed);
  std::shared_ptr<nn::Sequential> net =
      mlp ? io::build_network(arch, gen)
          : config::make_layer_network(layers, data.train.num_features(), outputs, data.preprocessing, gen,
                                       cfg.model.init);
  io::ModelFile model{.architecture = arch, .preprocessing = data.preprocessing};
  model.config_toml = config::to_toml(cfg);
  if (!mlp) {  // saved as its module tree: eval, predict and info rebuild it from the file
    model.module_tree = io::module_tree(*net);
    model.input_shape = {data.train.num_features()};
  }
  // Global batch statistics need several ranks; in one process local statistics already are the global ones.
  // The synchronised layers share the plain ones' tensors and names, and the tree above names the plain ones,
  // so the model file is the one a single process writes.
  if (distributed && cfg.model.sync_batchnorm) {
    BP_CHECK(options.sync_batchnorm != nullptr, ValueError, "train::run: model.sync_batchnorm over ",
             mpi->size(), " ranks needs RunOptions::sync_batchnorm (dist::convert_sync_batchnorm)");
    net = options.sync_batchnorm(*net);
  }
  const auto loss = config::make_loss(cfg.train.loss, data.train.task);
  const auto optimizer = config::make_optimizer(cfg.optimizer, net->parameters());
  const auto scheduler = config::make_scheduler(cfg.optimizer, *optimizer, cfg.train.epochs);
  const std::string network =
      mlp ? io::describe(arch) : cfg.model.arch + " (" + std::to_string(layers.size()) + " layers)";

  if (!cfg.run.init_from.empty() && !resuming) io::init_from(*net, cfg.run.init_from, model);

  // ---- the trainer and its callbacks ---------------------------------------------------------------------
  // SIGINT / SIGTERM from here on: fit() returns after the current update, and ModelCheckpoint saves that
  // point.
  std::optional<StopOnSignals> signals;
  if (options.stop_on_signals) signals.emplace();
  Trainer trainer(
      *net, *loss, *optimizer,
      {.epochs = cfg.train.epochs,
       .batch_size = std::max<std::int64_t>(cfg.train.batch_size, 1),
       .full_batch = cfg.train.batch_size == 0,
       .grad_reduction = cfg.train.grad_reduction == "sum" ? GradReduction::sum : GradReduction::mean,
       .shuffle = true,
       .seed = cfg.run.seed,
       .augment = cfg.data.augment.empty() ? nullptr
                                           : std::make_shared<const data::Augmentation>(
                                                 data::Augmentation::parse(cfg.data.augment)),
       .image_shape = data.image,
       // augmentation is worth a loader thread; a plain gather is not
       .prefetch = !cfg.data.augment.empty(),
       .validation = data.validation.size() > 0 ? &data.validation : nullptr,
       .early_stopping_patience = cfg.train.early_stopping,
       .l1 = cfg.train.l1,
       .l2 = cfg.train.l2,
       .clip_grad_norm = cfg.train.clip_grad_norm,
       .scheduler = scheduler.get(),
       .grad_flow_every = cfg.run.grad_flow,
       .callbacks = {},
       .stop = signals ? signals->flag() : options.stop},
      options.collective);

  // ---- the run folder (checked at start-up) ---------------------------------------------------------------
  io::RunFolder files(run_dir, root, "--out");
  if (resuming) {
    const io::Checkpoint& ck = setup.saved;
    io::check_same_model(ck.model, model, setup.checkpoint);
    BP_CHECK(ck.trainer.partial.batches == 0 || cfg.train.epochs > ck.trainer.epoch, ConfigError, "--epochs ",
             cfg.train.epochs, ": the checkpoint ", setup.checkpoint, " stopped inside epoch ",
             ck.trainer.epoch + 1, "; a resumed run must train at least ", ck.trainer.epoch + 1, " epochs");
    try {
      trainer.load_state(ck.trainer);
    } catch (const FileError&) {
      throw;
    } catch (const OutOfMemoryError&) {
      throw;
    } catch (const Error& e) {
      throw FileError(setup.checkpoint + ": does not fit the network it describes: " + e.what());
    }
    files.prepare_resume(trainer.epoch(), trainer.step());
  } else {
    files.prepare_fresh();
  }
  if (root) io::write_file_atomic(files.config(), model.config_toml);

  if (log != nullptr) {
    std::string extras = mlp ? arch.activation : "";
    if (arch.batchnorm) extras += ", batchnorm";
    if (arch.dropout > 0) extras += ", dropout " + shortest(arch.dropout);
    if (arch.dropconnect > 0) extras += ", dropconnect " + shortest(arch.dropconnect);
    if (!extras.empty()) extras += "; ";
    std::fprintf(log, "%s %s (%s%lld parameters) on %s: %lld train, %lld validation, %lld test\n",
                 resuming ? "resuming" : "training", network.c_str(), extras.c_str(),
                 static_cast<long long>(net->num_parameters()), data.name.c_str(),
                 static_cast<long long>(data.train.size()), static_cast<long long>(data.validation.size()),
                 static_cast<long long>(data.test.size()));
    const std::int64_t done = trainer.epoch(), batches = setup.saved.trainer.partial.batches;
    if (resuming && batches > 0)
      std::fprintf(log, "from %s: epoch %lld of %lld done, and %lld batches of epoch %lld\n",
                   setup.checkpoint.c_str(), static_cast<long long>(done),
                   static_cast<long long>(cfg.train.epochs), static_cast<long long>(batches),
                   static_cast<long long>(done + 1));
    else if (resuming)
      std::fprintf(log, "from %s: epoch %lld of %lld done\n", setup.checkpoint.c_str(),
                   static_cast<long long>(done), static_cast<long long>(cfg.train.epochs));
    if (distributed)
      std::fprintf(log, "data parallel over %d ranks: global batch %s%s\n", mpi->size(),
                   batch == 0 ? "full" : std::to_string(batch).c_str(),
                   cfg.model.sync_batchnorm ? ", synchronised batch norm" : "");
    if (place.staging.empty())
      std::fprintf(log, "run folder %s\n", run_dir.c_str());
    else
      std::fprintf(log, "run folder %s, written to %s until the run has finished (--overwrite)\n",
                   place.dir.c_str(), run_dir.c_str());
  }

  // ---- fit ------------------------------------------------------------------------------------------------
  // Files and callbacks: rank 0 only (the Trainer calls callbacks on rank 0 alone).
  std::optional<io::MetricsWriter> metrics;
  std::optional<MetricsLog> logger;
  std::optional<ModelCheckpoint> checkpoints;
  std::optional<ProgressBar> progress;
  std::vector<Callback*> callbacks;
  if (root) {
    metrics.emplace(files.metrics());
    logger.emplace(*metrics);
    checkpoints.emplace(files.checkpoints(), model, CheckpointOptions{.every = cfg.run.checkpoint_every});
    callbacks = {&*logger, &*checkpoints};
  }
  if (log != nullptr) callbacks.push_back(&progress.emplace(log));
  trainer.set_callbacks(callbacks);

  io::RunSummary summary(run_dir, {.data_source = data.name,
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
  RunResult result{.run_dir = run_dir};
  // run.detect_anomaly: every op checks what it produces, so a divergence names the op (anomaly.hpp).
  std::optional<DetectAnomalyGuard> anomaly;
  if (cfg.run.detect_anomaly) anomaly.emplace();
  try {
    result.history = trainer.fit(data.train);
  } catch (const DivergedError& e) {
    summary.diverged(e.what(), seconds_since(started));
    files.write_summary(summary.json_text());
    report_anyway(files, log);
    result.end = RunEnd::diverged;
    result.message = e.what();
    if (root) result.summary_json = summary.json_text();
    return result;
  }
  anomaly.reset();  // the checks cover training; evaluation and saving run at full speed
  const History& history = result.history;

  // ---- results --------------------------------------------------------------------------------------------
  summary.history(history);
  if (history.interrupted) {
    // ModelCheckpoint saved exactly the point fit() stopped at. Signals that come now are ignored.
    result.end = RunEnd::interrupted;
    if (root) {
      const std::string name = stop_signal_name(signals ? signals->signal() : 0);
      result.checkpoint = checkpoints->last_path();
      const std::int64_t epoch = trainer.epoch() + (trainer.partial().batches > 0 ? 1 : 0);
      summary.interrupted(name, epoch, history.total_updates, result.checkpoint, seconds_since(started));
      files.write_summary(summary.json_text());
      report_anyway(files, log);
      result.summary_json = summary.json_text();
      if (notices != nullptr)
        std::fprintf(notices,
                     "interrupted by %s at epoch %lld, step %lld; saved %s; continue with: backprop train "
                     "--resume %s\n",
                     name.c_str(), static_cast<long long>(epoch),
                     static_cast<long long>(history.total_updates), result.checkpoint.c_str(),
                     run_dir.c_str());
    }
    // The other ranks wait here (an all-reduce needs every rank) until rank 0's checkpoint and summary are on
    // disk, with the handlers still ignoring signals: a caller that then exits non-zero makes mpirun end the
    // job.
    if (distributed) mpi->any(false);
    result.signal = signals ? signals->signal() : 0;
    return result;
  }
  model.state = net->state_dict();
  if (data.test.size() > 0) {
    // Over MPI the test rows are split across ranks and the sums all-reduced (every rank must take part).
    const Evaluation global = trainer.collective().evaluate(*net, *loss, data.test, 1000);
    if (root) {
      const io::Preprocessing& pre = data.preprocessing;
      const io::TestRecord test =
          io::test_record(*net, global, data.test, pre.class_names,
                          pre.input == "image" && pre.image_shape.size() == 2 ? pre.image_shape
                                                                              : std::vector<std::int64_t>{});
      metrics->test(test);
      std::optional<RegressionMetrics> errors;
      if (regression) errors = regression_metrics(predict(*net, data.test.features), data.test.targets);
      summary.test(test, errors);
    }
  }
  if (!root) return result;
  summary.finish(seconds_since(started));
  summary.set_run_dir(place.dir);
  model.training_json = summary.training_json();
  io::save_model(files.model(), model);
  files.write_summary(summary.json_text());
  try {
    files.write_report();
  } catch (const FileError& e) {
    throw FileError(std::string(e.what()) + "; the run's model and summary.json are saved in " + run_dir +
                    "; write the report again with: backprop report " + run_dir);
  }
  if (!place.staging.empty()) {
    const std::string warning = io::replace_run(place.staging, place.dir, "--overwrite");
    if (notices != nullptr && !warning.empty()) std::fprintf(notices, "warning: %s\n", warning.c_str());
  }
  result.run_dir = place.dir;
  result.summary_json = summary.json_text();
  result.summary_text = summary.text();
  return result;
}

}  // namespace

const std::vector<std::string>& resumable_keys() {
  static const std::vector<std::string> keys = {"train.epochs", "run.checkpoint_every", "run.threads",
                                                "run.grad_flow", "run.detect_anomaly"};
  return keys;
}

RunConfig run_config(const RunSource& source) {
  RunConfig e;
  e.config_file = source.config_file;
  if (!source.resume.empty()) {
    BP_CHECK(source.config_file.empty(), ConfigError,
             "--config cannot be combined with --resume: a resumed run keeps the configuration saved in its "
             "checkpoint");
    e.checkpoint = io::resolve_checkpoint(source.resume);
    e.saved = io::load_checkpoint(e.checkpoint);
    BP_CHECK(!e.saved.model.config_toml.empty(), FileError, e.checkpoint,
             ": the checkpoint has no 'config' metadata");
    try {
      e.config = config::parse_toml(e.saved.model.config_toml, e.checkpoint + " (config)");
    } catch (const ConfigError& err) {
      throw FileError(err.what());
    }
    const std::vector<std::string>& resumable = resumable_keys();
    for (const Override& o : source.overrides) {
      const std::string before = config::get(e.config, o.key);
      config::set(e.config, o.key, o.text, o.flag);
      const bool allowed = std::find(resumable.begin(), resumable.end(), o.key) != resumable.end();
      BP_CHECK(
          allowed || config::get(e.config, o.key) == before, ConfigError, o.flag,
          " cannot be changed when resuming: the run continues with the configuration in its checkpoint (",
          o.key, " = ", before,
          "); only --epochs, --checkpoint-every, --threads, --grad-flow and --detect-anomaly may change");
    }
  } else {
    e.config =
        source.config_file.empty() ? config::Config{} : config::load_toml(source.config_file, &e.given);
    for (const Override& o : source.overrides) {
      config::set(e.config, o.key, o.text, o.flag);
      e.given.push_back(o.key);
    }
  }
  config::validate(e.config);
  return e;
}

RunResult run(const RunConfig& setup, const RunOptions& options) {
  const auto started = Clock::now();
  BP_CHECK(!(options.stop_on_signals && options.stop != nullptr), ValueError,
           "train::run: RunOptions::stop_on_signals and stop are two ways to stop a run; give one");
  // Under MPI every rank runs all of this with the same configuration and data; rank 0 alone prints and
  // writes files. Without MPI, one process is rank 0 of 1.
  const bool root = options.collective == nullptr || options.collective->rank() == 0;
  const config::Config& cfg = setup.config;
  const bool resuming = setup.resuming();
  const std::string run_dir = !options.out.empty() ? options.out
                              : resuming           ? run_dir_of(setup.checkpoint)
                                                   : io::new_run_dir();
  // Before any data is read: a run folder that cannot be written, or whose files would overwrite an input, is
  // refused now rather than after the training.
  Place place{.dir = run_dir, .staging = {}};
  if (root) {
    io::check_run_folder(
        run_dir,
        {{"--data", cfg.data.source == "fashion-mnist" ? std::string(data::FashionMNIST::default_dir)
                                                       : cfg.data.source},
         {"--config", setup.config_file}},
        "--out");
    const fs::path checkpoint_dir = fs::path(setup.checkpoint).parent_path();
    place.staging = stage_or_refuse(
        run_dir, options.overwrite,
        resuming && checkpoint_dir.filename() == "checkpoints" &&
            io::same_path(checkpoint_dir.parent_path().empty() ? "." : checkpoint_dir.parent_path().string(),
                          run_dir));
  }
  if (place.staging.empty()) return train_into(setup, options, place, started);
  // overwrite: whatever ends the new run before it has finished, the earlier run stays as it was.
  const auto kept = [&](const char* what) {
    if (options.notices == nullptr) return;
    std::error_code ec;
    std::fprintf(options.notices, "note: --overwrite: %s still holds the earlier run, unchanged; %s\n",
                 run_dir.c_str(),
                 fs::exists(place.staging, ec) ? (std::string(what) + " in " + place.staging).c_str()
                                               : "the new run wrote nothing");
  };
  try {
    RunResult result = train_into(setup, options, place, started);
    if (result.end == RunEnd::interrupted) kept("the interrupted new run is");
    if (result.end == RunEnd::diverged) kept("the new run's files are");
    return result;
  } catch (...) {
    kept("the new run's files are");
    throw;
  }
}

}  // namespace backprop::train
