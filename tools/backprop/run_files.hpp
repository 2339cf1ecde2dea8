// The run folder of `backprop train` and what goes into it:
//   RUN/model.safetensors      the trained model (backprop/io/model_file.hpp)
//   RUN/metrics.jsonl          per-epoch, gradient-flow and test records (backprop/io/metrics.hpp)
//   RUN/config.toml            the effective configuration
//   RUN/summary.json           the outcome: status, final metrics, test results
//   RUN/report.html            the HTML report (backprop/io/report.hpp)
//   RUN/checkpoints/           epoch-NNNN.safetensors and `latest` (with --checkpoint-every)
#pragma once

#include <backprop/config.hpp>
#include <backprop/io/metrics.hpp>
#include <backprop/io/model_file.hpp>
#include <backprop/loss.hpp>
#include <backprop/train.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data_source.hpp"

namespace cli {

/// An input the command reads: the flag that names it and its path.
struct NamedInput {
  std::string flag;  // "--data", "--config", ...
  std::string path;
};

/// True when a and b name the same file or folder (after resolving links, `..` and relative paths); false
/// when either is empty.
bool same_path(const std::string& a, const std::string& b);

/// Checked before any data is read or anything trained: the run folder `dir` (named by `flag`) must be a
/// folder or creatable (checked on its nearest existing parent; nothing is created) and writable, and neither
/// it nor a file a run writes into it (model.safetensors, metrics.jsonl, config.toml, summary.json,
/// report.html) may be one of the inputs. Throws ConfigError naming both flags and the path (an input would
/// be overwritten), FileError for a folder that cannot be used.
void check_run_folder(const std::string& flag, const std::string& dir, const std::vector<NamedInput>& inputs);

/// The files and folders of a run that `dir` holds (model.safetensors, metrics.jsonl, config.toml,
/// summary.json, report.html, checkpoints/); empty when it holds none or does not exist.
std::vector<std::string> run_entries(const std::string& dir);

/// Where a new run writes when its run folder `dir` holds an earlier run that --overwrite replaces: a staging
/// folder DIR.new-PID/NAME beside it (NAME being dir's own name, so that the report keeps its title), not yet
/// created. Checked at start-up: throws FileError naming the parent folder when the staging folder could not
/// be created there.
std::string staging_dir(const std::string& dir);

/// The run in `staging` (from staging_dir) has finished: it takes the place of the run in `dir`, in one rename
/// exchange where the file system has one (else the old run is renamed aside first, and put back if the new
/// one cannot be moved in). Files and folders of `dir` that are not a run's (see run_entries; in checkpoints/
/// all but epoch-*.safetensors and `latest`) are moved into the new run folder; then the old run and the
/// staging folder are removed. Throws FileError (with `dir` unchanged) when the swap fails; a clean-up that
/// fails only warns on stderr, naming what was left behind.
void replace_run(const std::string& staging, const std::string& dir);

class RunFiles {
 public:
  /// Creates the folder if needed. Throws FileError when it cannot. With writes = false (the ranks other than
  /// 0 of an MPI run) nothing is created, and prepare_*, write_summary and try_report do nothing.
  explicit RunFiles(std::string dir, bool writes = true);
  std::string model() const;
  std::string metrics() const;
  std::string config() const;
  std::string summary() const;
  std::string checkpoints() const;

  /// A new run in this folder, which holds no earlier run (run_entries is empty: the start-up refuses or
  /// stages a folder that does): removes the temporaries of saves a kill cut short, nothing else.
  void prepare_fresh();
  /// Continuing after `epoch` complete epochs and `step` updates in all (a mid-epoch checkpoint: some of
  /// epoch `epoch + 1` too): keeps the metrics of epochs <= epoch and the gradient-flow records up to `step`,
  /// removes the model, summary and report of the interrupted run and the temporaries of saves a kill cut
  /// short.
  void prepare_resume(std::int64_t epoch, std::int64_t step);
  void write_summary(const std::string& json_text);
  /// Writes report.html. Throws FileError when it cannot be written completely.
  void write_report();
  /// Writes report.html for a run that already fails (diverged, interrupted): a failure is reported on stderr
  /// (when `talk`) rather than replacing the run's own error and exit code.
  void try_report(bool talk);

 private:
  std::string dir_;
  bool writes_;
};

/// summary.json, built as the run goes.
class Summary {
 public:
  Summary(const std::string& run_dir, const backprop::config::Config& config, const TrainingData& data,
          const backprop::io::Architecture& arch, std::int64_t parameters);
  void diverged(const std::string& message, double seconds);
  /// Status, epochs and final metrics (the counts include what a resumed run had done before).
  void history(const backprop::train::History& history);
  /// Status "interrupted": by which signal, at which epoch and update, the checkpoint that continues it.
  void interrupted(const std::string& signal, std::int64_t epoch, std::int64_t step,
                   const std::string& checkpoint, double seconds);
  void test(const backprop::io::TestRecord& test, backprop::nn::Module& net,
            const backprop::data::TensorDataset& data);
  void finish(double seconds);
  /// The folder the run ends up in, when not the one it was written to (a staged run, see replace_run).
  void set_run_dir(const std::string& dir);
  std::string json_text() const;
  /// The part stored in the model file's "training" metadata (no confusion matrix).
  std::string training_json() const;
  /// The human summary printed at the end of a run.
  std::string text() const;

 private:
  nlohmann::json j_;
  std::string run_dir_;
};

/// The test record of `evaluation` (train::evaluate or dist::evaluate of `net` on `test`: loss, accuracy,
/// confusion matrix) with up to 32 misclassified examples (with pixels for image data) found by predicting
/// `test` in this process.
backprop::io::TestRecord evaluate_test(backprop::nn::Module& net,
                                       const backprop::train::Evaluation& evaluation,
                                       const backprop::data::TensorDataset& test,
                                       const backprop::io::Preprocessing& preprocessing);

double seconds_since(std::chrono::steady_clock::time_point start);
/// Shortest text of a number ("0.2", "1e-05").
std::string number_text(double v);
/// "784-256-128-10".
std::string layers_text(const backprop::io::Architecture& a);

}  // namespace cli
