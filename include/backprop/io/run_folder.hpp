// backprop/io/run_folder.hpp — the folder a training run writes, and the rules that keep an earlier run safe.
//
// A run folder holds what one run produced:
//   DIR/model.safetensors      the trained model (backprop/io/model_file.hpp)
//   DIR/metrics.jsonl          per-epoch, gradient-flow and test records (backprop/io/metrics.hpp)
//   DIR/config.toml            the effective configuration
//   DIR/summary.json           the outcome: status, final metrics, test results
//   DIR/report.html            the HTML report (backprop/io/report.hpp)
//   DIR/checkpoints/           epoch-NNNN.safetensors and `latest` (backprop/train/callbacks.hpp)
// A folder that already holds a run is never emptied by a new one: the caller refuses it, or stages the new run
// beside it (staging_dir) and swaps it in once it has finished (replace_run), so an interrupted, diverged or
// failed run leaves the earlier one byte-identical. docs/reliability.md gives the rules.
//
// Example:
//   const std::string fresh = bp::io::new_run_dir();                 // runs/20260105-093000
//   bp::io::check_run_folder("runs/a", {{"--data", "train.csv"}});   // before any data is read
//   const bool staged = !bp::io::run_entries("runs/a").empty();
//   const std::string where = staged ? bp::io::staging_dir("runs/a") : "runs/a";
//   bp::io::RunFolder run(where);
//   run.prepare_fresh();
//   bp::io::write_file_atomic(run.config(), "[train]\nepochs = 3\n");
//   run.write_summary(R"({"status": "finished"})");
//   if (staged) std::cerr << bp::io::replace_run(where, "runs/a");   // prints a warning, if any
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace backprop::io {

/// An input a run reads: how the user named it (a flag such as "--data", or a key) and its path.
struct NamedInput {
  std::string name;
  std::string path;
};

/// True when a and b name the same file or folder (after resolving links, `..` and relative paths); false
/// when either is empty.
bool same_path(const std::string& a, const std::string& b);

/// Checked before any data is read or anything trained: the run folder `dir` must be a folder or creatable
/// (checked on its nearest existing parent; nothing is created) and writable, and neither it nor a file a run
/// writes into it may be one of the inputs. Messages start with `label` and `dir` ("--out runs/a: ...").
/// Throws ConfigError naming the input (it would be overwritten), FileError for a folder that cannot be used.
void check_run_folder(const std::string& dir, const std::vector<NamedInput>& inputs,
                      const std::string& label = "run folder");

/// A new run's folder when none is named: PARENT/YYYYMMDD-HHMMSS in local time (as PyTorch's SummaryWriter
/// names its runs/ folders), or PARENT/YYYYMMDD-HHMMSS-2, -3, ... when that exists. Nothing is created.
std::string new_run_dir(const std::string& parent = "runs");

/// The files and folders of a run that `dir` holds (model.safetensors, metrics.jsonl, config.toml,
/// summary.json, report.html, checkpoints/); empty when it holds none or does not exist.
std::vector<std::string> run_entries(const std::string& dir);

/// Where a new run writes when `dir` holds an earlier run it is to replace: a staging folder DIR.new-PID/NAME
/// beside it (NAME being dir's own name, so that the report keeps its title), not yet created. Throws
/// FileError naming the parent folder when the staging folder could not be created there, or when `dir` is a
/// mount point (the swap renames within one file system).
std::string staging_dir(const std::string& dir, const std::string& label = "run folder");

/// The run in `staging` (from staging_dir) has finished: it takes the place of the run in `dir`, in one rename
/// exchange where the file system has one (else the old run is renamed aside first, and put back if the new
/// one cannot be moved in). Files and folders of `dir` that are not a run's (in checkpoints/ all but
/// epoch-*.safetensors and `latest`) are moved into the new run folder; then the old run and the staging
/// folder are removed. Throws FileError (with `dir` unchanged) when the swap fails. A clean-up that fails
/// does not throw: the returned warning names what was left behind (empty when nothing was).
std::string replace_run(const std::string& staging, const std::string& dir,
                        const std::string& label = "run folder");

/// The paths of one run folder and the writes a run makes into it.
class RunFolder {
 public:
  /// Creates the folder if needed; throws FileError when it cannot. With writes = false (the ranks other than
  /// 0 of an MPI run) nothing is created, and prepare_*, write_summary and the reports do nothing.
  explicit RunFolder(std::string dir, bool writes = true, std::string label = "run folder");
  const std::string& dir() const { return dir_; }
  std::string model() const;
  std::string metrics() const;
  std::string config() const;
  std::string summary() const;
  std::string checkpoints() const;

  /// A new run in a folder that holds no earlier run: removes the temporaries of saves a kill cut short,
  /// nothing else.
  void prepare_fresh();
  /// Continuing after `epoch` complete epochs and `step` updates in all (a mid-epoch checkpoint: some of
  /// epoch `epoch + 1` too): keeps the metrics of epochs <= epoch and the gradient-flow records up to `step`,
  /// removes the model, summary and report of the interrupted run and the temporaries of saves a kill cut
  /// short.
  void prepare_resume(std::int64_t epoch, std::int64_t step);
  /// Writes summary.json (crash-safe).
  void write_summary(const std::string& json_text);
  /// Writes report.html. Throws FileError when it cannot be written completely.
  void write_report();
  /// Writes report.html for a run that already fails (diverged, interrupted), where a report that cannot be
  /// written must not replace the run's own error: returns the reason it was not written (empty when it was).
  std::string try_report();

 private:
  std::string dir_;
  bool writes_;
  std::string label_;
};

}  // namespace backprop::io
