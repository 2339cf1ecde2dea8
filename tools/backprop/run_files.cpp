// The run folder: paths, an earlier run in it (refused, or staged and replaced by --overwrite), clean-up
// before a run, summary.json and the report.
#include "run_files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <backprop/error.hpp>
#include <backprop/io.hpp>
#include <backprop/ops.hpp>
#include <backprop/train/callbacks.hpp>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "cli.hpp"

namespace cli {

namespace bp = backprop;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

json number(double v) {
  return std::isfinite(v) ? json(v) : json(nullptr);
}

void remove_file(const fs::path& p) {
  std::error_code ec;
  fs::remove(p, ec);
}

std::string percent(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f%%", 100 * v);
  return buf;
}

std::string fixed(double v, int digits = 4) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

}  // namespace

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string number_text(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

std::string layers_text(const bp::io::Architecture& a) {
  std::string s = std::to_string(a.inputs);
  for (std::int64_t h : a.hidden) s.append("-").append(std::to_string(h));
  return s.append("-").append(std::to_string(a.outputs));
}

bool same_path(const std::string& a, const std::string& b) {
  if (a.empty() || b.empty()) return false;
  std::error_code ec;
  if (fs::exists(a, ec) && fs::exists(b, ec)) return fs::equivalent(a, b, ec) && !ec;
  const fs::path ca = fs::weakly_canonical(a, ec);
  if (ec) return false;
  const fs::path cb = fs::weakly_canonical(b, ec);
  return !ec && ca == cb;
}

void check_run_folder(const std::string& flag, const std::string& dir,
                      const std::vector<NamedInput>& inputs) {
  for (const NamedInput& in : inputs) {
    BP_CHECK(!same_path(in.path, dir), ConfigError, flag, " ", dir, ": is also the input ", in.flag, " ",
             in.path, "; choose another ", flag);
    for (const char* name :
         {"model.safetensors", "metrics.jsonl", "config.toml", "summary.json", "report.html"})
      BP_CHECK(!same_path(in.path, (fs::path(dir) / name).string()), ConfigError, flag, " ", dir,
               ": the run would overwrite its input ", in.flag, " ", in.path, " (the run writes ", name,
               " there); choose another ", flag);
  }
  std::error_code ec;
  if (!fs::exists(dir, ec)) {  // not created yet (a run that fails on its data leaves nothing behind), but
                               // its nearest existing ancestor must be a folder we may write into
    fs::path up = fs::absolute(dir, ec).parent_path();
    while (!up.empty() && !fs::exists(up, ec) && up != up.parent_path()) up = up.parent_path();
    BP_CHECK(fs::is_directory(up, ec), FileError, flag, " ", dir,
             ": cannot create the run folder: ", up.string(), " is not a folder");
    BP_CHECK(::access(up.c_str(), W_OK | X_OK) == 0, FileError, flag, " ", dir,
             ": cannot create the run folder: ", up.string(), " is not writable: ", std::strerror(errno));
  } else {
    BP_CHECK(fs::is_directory(dir, ec), FileError, flag, " ", dir, ": exists and is not a folder");
    BP_CHECK(::access(dir.c_str(), W_OK | X_OK) == 0, FileError, flag, " ", dir,
             ": the folder is not writable: ", std::strerror(errno));
  }
}

// ---- an existing run in the run folder -------------------------------------------------------------------

namespace {

constexpr const char* kRunFiles[] = {"model.safetensors", "metrics.jsonl", "config.toml",
                                     "summary.json",      "report.html",   "checkpoints"};

bool is_temporary(const std::string& name) {
  return name.find(".tmp-") != std::string::npos;
}

// What a run writes into its folder, and into its checkpoints/.
bool run_owned(const std::string& name) {
  return is_temporary(name) ||
         std::find(std::begin(kRunFiles), std::end(kRunFiles), name) != std::end(kRunFiles);
}
bool checkpoint_owned(const std::string& name) {
  return is_temporary(name) || name == "latest" ||
         (name.rfind("epoch-", 0) == 0 && name.ends_with(".safetensors"));
}

// `dir` as a path whose last part names the folder ("runs/a/" -> "runs/a", "." -> the absolute path); a
// symbolic link to a folder as that folder (the run replaced is the link's target, and the link stays).
fs::path named_path(const std::string& dir) {
  std::error_code ec;
  fs::path p = fs::path(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  if (fs::is_symlink(p, ec)) p = fs::canonical(p, ec);
  if (p.empty() || p.filename() == "." || p.filename() == "..") {
    p = fs::absolute(p, ec).lexically_normal();
    if (p.filename().empty()) p = p.parent_path();
  }
  return p;
}

// Moves the entries of `from` that `owned` does not claim into `to` (created if needed). Returns the first
// entry that could not be moved, or an empty path.
fs::path carry_over(const fs::path& from, const fs::path& to, bool (*owned)(const std::string&)) {
  std::error_code ec;
  std::vector<fs::path> foreign;
  for (const auto& entry : fs::directory_iterator(from, ec))
    if (!owned(entry.path().filename().string())) foreign.push_back(entry.path());
  if (!foreign.empty()) fs::create_directories(to, ec);
  for (const fs::path& p : foreign) {
    const fs::path target = to / p.filename();
    if (fs::exists(fs::symlink_status(target, ec)) || ::rename(p.c_str(), target.c_str()) != 0) return p;
  }
  return {};
}

}  // namespace

std::vector<std::string> run_entries(const std::string& dir) {
  std::vector<std::string> found;
  std::error_code ec;
  for (const char* name : kRunFiles)
    if (fs::exists(fs::symlink_status(fs::path(dir) / name, ec))) found.emplace_back(name);
  return found;
}

std::string staging_dir(const std::string& dir) {
  const fs::path target = named_path(dir);
  const fs::path parent = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  BP_CHECK(!target.filename().empty(), FileError, "--out ", dir,
           ": --overwrite needs a folder with a name to stage the new run beside");
  BP_CHECK(::access(parent.c_str(), W_OK | X_OK) == 0, FileError, "--out ", dir,
           ": --overwrite stages the new run beside the old one, but ", parent.string(),
           " is not writable: ", std::strerror(errno));
  // The swap at the end renames within one file system: a run folder that is a mount point cannot take part.
  struct stat folder {
  }, above{};
  BP_CHECK(::stat(target.c_str(), &folder) == 0 && ::stat(parent.c_str(), &above) == 0 &&
               folder.st_dev == above.st_dev,
           FileError, "--out ", dir, ": --overwrite stages the new run beside the old one in ",
           parent.string(), ", but ", target.string(),
           " is another file system (a mount point); choose another --out");
  const std::string base = target.filename().string() + ".new-" + std::to_string(::getpid());
  std::error_code ec;
  fs::path outer = target.parent_path() / base;
  for (int i = 2; fs::exists(fs::symlink_status(outer, ec)); ++i)
    outer = target.parent_path() / (base + "-" + std::to_string(i));
  return (outer / target.filename()).string();
}

void replace_run(const std::string& staging, const std::string& run_dir) {
  const std::string dir = named_path(run_dir).string();
  const fs::path outer = fs::path(staging).parent_path();
  fs::path old = staging;  // where the old run is once the new one is in place
  if (::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE) != 0) {
    const int err = errno;
    BP_CHECK(err == EINVAL || err == ENOSYS || err == ENOTSUP, FileError,
             "--overwrite: cannot move the new run ", staging, " into ", dir, ": ", std::strerror(err), "; ",
             dir, " still holds the earlier run");
    // No exchange on this file system: the old run goes aside first, so DIR is only missing while both runs
    // are beside it.
    old = outer / "previous";
    BP_CHECK(::rename(dir.c_str(), old.c_str()) == 0, FileError, "--overwrite: cannot move the earlier run ",
             dir, " aside to ", old.string(), ": ", std::strerror(errno), "; the new run is in ", staging);
    if (::rename(staging.c_str(), dir.c_str()) != 0) {
      const int moved = errno;
      ::rename(old.c_str(), dir.c_str());
      throw bp::FileError("--overwrite: cannot move the new run " + staging + " into " + dir + ": " +
                          std::strerror(moved) + "; " + dir + " still holds the earlier run");
    }
  }
  // The new run is in place. What the user kept in the old folder stays; the old run itself goes.
  fs::path left = carry_over(old, dir, run_owned);
  if (left.empty()) left = carry_over(old / "checkpoints", fs::path(dir) / "checkpoints", checkpoint_owned);
  if (!left.empty()) {
    std::fprintf(stderr,
                 "warning: --overwrite: could not move %s back into %s; the earlier run is left in %s\n",
                 left.c_str(), dir.c_str(), outer.c_str());
    return;
  }
  std::error_code ec;
  fs::remove_all(outer, ec);
  if (ec)
    std::fprintf(stderr, "warning: --overwrite: could not remove the earlier run in %s: %s\n", outer.c_str(),
                 ec.message().c_str());
}

// ---- RunFiles ---------------------------------------------------------------------------------------------

RunFiles::RunFiles(std::string dir, bool writes) : dir_(std::move(dir)), writes_(writes) {
  if (!writes_) return;
  std::error_code ec;
  fs::create_directories(dir_, ec);
  BP_CHECK(!ec && fs::is_directory(dir_, ec), FileError, "--out ", dir_, ": cannot create the run folder",
           ec ? ": " + ec.message() : std::string());
}

std::string RunFiles::model() const {
  return (fs::path(dir_) / "model.safetensors").string();
}
std::string RunFiles::metrics() const {
  return (fs::path(dir_) / "metrics.jsonl").string();
}
std::string RunFiles::config() const {
  return (fs::path(dir_) / "config.toml").string();
}
std::string RunFiles::summary() const {
  return (fs::path(dir_) / "summary.json").string();
}
std::string RunFiles::checkpoints() const {
  return (fs::path(dir_) / "checkpoints").string();
}

namespace {

// Temporary files of saves cut short by a kill (NAME.tmp-PID-N): never read, removed before a run goes on.
void remove_stale_temporaries(const fs::path& dir) {
  std::error_code ec;
  std::vector<fs::path> stale;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.path().filename().string().find(".tmp-") != std::string::npos) stale.push_back(entry.path());
  for (const fs::path& p : stale) remove_file(p);
}

}  // namespace

void RunFiles::prepare_fresh() {
  if (!writes_) return;
  remove_stale_temporaries(dir_);
  remove_stale_temporaries(checkpoints());
}

void RunFiles::prepare_resume(std::int64_t epoch, std::int64_t step) {
  if (!writes_) return;
  for (const char* f : {"model.safetensors", "summary.json", "report.html"}) remove_file(fs::path(dir_) / f);
  remove_stale_temporaries(dir_);
  remove_stale_temporaries(checkpoints());
  bp::io::truncate_metrics(metrics(), epoch, step);
}

void RunFiles::write_summary(const std::string& json_text) {
  if (!writes_) return;
  bp::io::write_file_atomic(summary(), json_text + "\n");
}

void RunFiles::write_report() {
  if (!writes_) return;
  try {
    write_run_report(dir_);
  } catch (const bp::FileError& e) {
    throw bp::FileError(std::string(e.what()) + "; the run's model and summary.json are saved in " + dir_ +
                        "; write the report again with: backprop report " + dir_);
  }
}

void RunFiles::try_report(bool talk) {
  if (!writes_) return;
  try {
    write_run_report(dir_);
  } catch (const bp::Error& e) {
    if (talk) std::fprintf(stderr, "warning: no report written: %s\n", e.what());
  }
}

// ---- Summary ----------------------------------------------------------------------------------------------

Summary::Summary(const std::string& run_dir, const bp::config::Config& c, const TrainingData& data,
                 const bp::io::Architecture& arch, std::int64_t parameters)
    : run_dir_(run_dir) {
  j_ = {{"status", "running"},
        {"run_dir", run_dir},
        {"data",
         {{"source", data.name},
          {"task", data.preprocessing.task},
          {"train_examples", data.train.size()},
          {"validation_examples", data.validation.size()},
          {"test_examples", data.test.size()}}},
        {"network", layers_text(arch)},
        {"activation", arch.activation},
        {"parameters", parameters},
        {"optimizer", c.optimizer.name},
        {"lr", c.optimizer.lr},
        {"batch_size", c.train.batch_size == 0 ? json("full") : json(c.train.batch_size)},
        {"seed", c.run.seed},
        {"epochs_planned", c.train.epochs}};
}

void Summary::diverged(const std::string& message, double seconds) {
  j_["status"] = "diverged";
  j_["message"] = message;
  j_["seconds"] = seconds;
}

void Summary::history(const bp::train::History& h) {
  j_["status"] = h.interrupted ? "interrupted" : h.stopped_early ? "stopped_early" : "completed";
  j_["epochs_run"] = h.epochs_done;
  j_["best_epoch"] = h.best_epoch;
  j_["updates"] = h.total_updates;
  if (!h.epochs.empty()) {
    const bp::train::EpochMetrics& m = h.epochs.back();
    j_["final"] = {{"train_loss", number(m.train_loss)},
                   {"train_accuracy", number(m.train_accuracy)},
                   {"val_loss", number(m.val_loss)},
                   {"val_accuracy", number(m.val_accuracy)},
                   {"lr", number(m.lr)},
                   {"samples_per_second", number(m.samples_per_second)}};
  }
}

void Summary::test(const bp::io::TestRecord& t, bp::nn::Module& net, const bp::data::TensorDataset& data) {
  json test = {{"loss", number(t.loss)}, {"examples", t.examples}};
  if (data.task == bp::data::Task::classification) {
    test["accuracy"] = number(t.accuracy);
    const auto name = [&](std::size_t c) {
      return c < t.class_names.size() ? t.class_names[c] : std::to_string(c);
    };
    json per_class = json::object();
    for (std::size_t c = 0; c < t.per_class_accuracy.size(); ++c)
      per_class[name(c)] = number(t.per_class_accuracy[c]);
    test["per_class_accuracy"] = per_class;
    test["class_names"] = t.class_names;
    if (t.confusion.size() <= bp::io::kFullConfusionClasses) {
      test["confusion"] = t.confusion;
    } else {  // the whole matrix would grow with the square of the class count
      json top = json::array();
      for (const bp::io::Confusion& c : bp::io::top_confusions(t.confusion))
        top.push_back({{"true", name(static_cast<std::size_t>(c.true_class))},
                       {"predicted", name(static_cast<std::size_t>(c.predicted))},
                       {"count", c.count}});
      test["top_confusions"] = top;
    }
  } else {
    const std::vector<double> y = data.targets.to_vector();
    const std::vector<double> p = bp::train::predict(net, data.features).to_vector();
    double se = 0, ae = 0, mean = 0, ss = 0;
    for (double v : y) mean += v / static_cast<double>(y.size());
    for (std::size_t i = 0; i < y.size(); ++i) {
      se += (p[i] - y[i]) * (p[i] - y[i]);
      ae += std::abs(p[i] - y[i]);
      ss += (y[i] - mean) * (y[i] - mean);
    }
    const auto n = static_cast<double>(y.size());
    test["rmse"] = number(std::sqrt(se / n));
    test["mae"] = number(ae / n);
    test["r2"] = ss > 0 ? number(1 - se / ss) : json(nullptr);
  }
  j_["test"] = test;
}

void Summary::interrupted(const std::string& signal, std::int64_t epoch, std::int64_t step,
                          const std::string& checkpoint, double seconds) {
  j_["status"] = "interrupted";
  j_["interrupted"] = {{"signal", signal}, {"epoch", epoch}, {"step", step}, {"checkpoint", checkpoint}};
  j_["seconds"] = seconds;
}

void Summary::finish(double seconds) {
  j_["seconds"] = seconds;
}

void Summary::set_run_dir(const std::string& dir) {
  run_dir_ = dir;
  j_["run_dir"] = dir;
}

std::string Summary::json_text() const {
  return j_.dump(2);
}

std::string Summary::training_json() const {
  json t = j_;
  if (t.contains("test")) {
    t["test"].erase("confusion");
    t["test"].erase("top_confusions");
  }
  t.erase("run_dir");
  return t.dump();
}

std::string Summary::text() const {
  std::string s;
  const json& f = j_.value("final", json::object());
  s += "trained " + std::to_string(j_.value("epochs_run", 0)) + " epochs in " +
       bp::train::clock_text(j_.value("seconds", 0.0)) +
       (j_["status"] == "stopped_early" ? " (stopped early)" : "") + "\n";
  if (!f.empty()) {
    s += "  train       loss " + fixed(f.value("train_loss", NAN));
    if (f["train_accuracy"].is_number()) s += "  accuracy " + percent(f["train_accuracy"].get<double>());
    s += "\n";
    if (f["val_loss"].is_number()) {
      s += "  validation  loss " + fixed(f["val_loss"].get<double>());
      if (f["val_accuracy"].is_number()) s += "  accuracy " + percent(f["val_accuracy"].get<double>());
      s += "\n";
    }
  }
  if (j_.contains("test")) {
    const json& t = j_["test"];
    s += "  test        loss " + (t["loss"].is_number() ? fixed(t["loss"].get<double>()) : "n/a");
    if (t.contains("accuracy") && t["accuracy"].is_number())
      s += "  accuracy " + percent(t["accuracy"].get<double>());
    if (t.contains("rmse") && t["rmse"].is_number()) s += "  rmse " + fixed(t["rmse"].get<double>());
    s += "  (" + std::to_string(t.value("examples", 0)) + " examples)\n";
  }
  s += "run folder " + run_dir_ +
       ": model.safetensors, metrics.jsonl, config.toml, summary.json, report.html\n";
  return s;
}

// ---- test evaluation --------------------------------------------------------------------------------------

bp::io::TestRecord evaluate_test(bp::nn::Module& net, const bp::train::Evaluation& e,
                                 const bp::data::TensorDataset& test, const bp::io::Preprocessing& pre) {
  bp::io::TestRecord r{.loss = e.loss,
                       .accuracy = e.accuracy,
                       .examples = e.examples,
                       .class_names = pre.class_names,
                       .per_class_accuracy = e.per_class_accuracy,
                       .confusion = e.confusion};
  if (test.task != bp::data::Task::classification) return r;
  constexpr std::size_t kShown = 32;
  const bp::Tensor predicted = bp::argmax(bp::train::predict(net, test.features), 1);
  const bool image = pre.input == "image" && pre.image_shape.size() == 2;
  const std::int64_t d = test.num_features();
  for (std::int64_t i = 0; i < test.size() && r.misclassified.size() < kShown; ++i) {
    const auto truth = static_cast<std::int64_t>(test.targets.flat(i));
    const auto guess = static_cast<std::int64_t>(predicted.flat(i));
    if (truth == guess) continue;
    bp::io::Misclassified m{.index = i, .true_class = truth, .predicted = guess};
    if (image) {
      const bp::Tensor row = bp::narrow(test.features, i, 1);
      m.pixels.reserve(static_cast<std::size_t>(d));
      for (std::int64_t k = 0; k < d; ++k)
        m.pixels.push_back(std::round(std::clamp(row.flat(k), 0.0, 1.0) * 1000) / 1000);  // 3 digits suffice
      m.shape = pre.image_shape;
    }
    r.misclassified.push_back(std::move(m));
  }
  return r;
}

}  // namespace cli
