// The run folder: paths, an earlier run in it (staged and swapped in by replace_run), clean-up before a run.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <backprop/error.hpp>
#include <backprop/io.hpp>
#include <backprop/io/metrics.hpp>
#include <backprop/io/report.hpp>
#include <backprop/io/run_folder.hpp>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <filesystem>

namespace backprop::io {

namespace fs = std::filesystem;

namespace {

void remove_file(const fs::path& p) {
  std::error_code ec;
  fs::remove(p, ec);
}

}  // namespace

bool same_path(const std::string& a, const std::string& b) {
  if (a.empty() || b.empty()) return false;
  std::error_code ec;
  if (fs::exists(a, ec) && fs::exists(b, ec)) return fs::equivalent(a, b, ec) && !ec;
  const fs::path ca = fs::weakly_canonical(a, ec);
  if (ec) return false;
  const fs::path cb = fs::weakly_canonical(b, ec);
  return !ec && ca == cb;
}

void check_run_folder(const std::string& dir, const std::vector<NamedInput>& inputs,
                      const std::string& flag) {
  for (const NamedInput& in : inputs) {
    BP_CHECK(!same_path(in.path, dir), ConfigError, flag, " ", dir, ": is also the input ", in.name, " ",
             in.path, "; choose another ", flag);
    for (const char* name :
         {"model.safetensors", "metrics.jsonl", "config.toml", "summary.json", "report.html"})
      BP_CHECK(!same_path(in.path, (fs::path(dir) / name).string()), ConfigError, flag, " ", dir,
               ": the run would overwrite its input ", in.name, " ", in.path, " (the run writes ", name,
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

std::string new_run_dir(const std::string& parent) {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
  const std::string base = (fs::path(parent) / stamp).string();
  std::string dir = base;
  std::error_code ec;
  for (int i = 2; fs::exists(dir, ec); ++i) dir = base + "-" + std::to_string(i);
  return dir;
}

std::vector<std::string> run_entries(const std::string& dir) {
  std::vector<std::string> found;
  std::error_code ec;
  for (const char* name : kRunFiles)
    if (fs::exists(fs::symlink_status(fs::path(dir) / name, ec))) found.emplace_back(name);
  return found;
}

std::string staging_dir(const std::string& dir, const std::string& label) {
  const fs::path target = named_path(dir);
  const fs::path parent = target.parent_path().empty() ? fs::path(".") : target.parent_path();
  BP_CHECK(!target.filename().empty(), FileError, label, " ", dir,
           ": replacing a run needs a folder with a name to stage the new run beside");
  BP_CHECK(::access(parent.c_str(), W_OK | X_OK) == 0, FileError, label, " ", dir,
           ": the new run is staged beside the old one, but ", parent.string(),
           " is not writable: ", std::strerror(errno));
  // The swap at the end renames within one file system: a run folder that is a mount point cannot take part.
  struct stat folder {
  }, above{};
  BP_CHECK(::stat(target.c_str(), &folder) == 0 && ::stat(parent.c_str(), &above) == 0 &&
               folder.st_dev == above.st_dev,
           FileError, label, " ", dir, ": the new run is staged beside the old one in ", parent.string(),
           ", but ", target.string(), " is another file system (a mount point); choose another folder");
  const std::string base = target.filename().string() + ".new-" + std::to_string(::getpid());
  std::error_code ec;
  fs::path outer = target.parent_path() / base;
  for (int i = 2; fs::exists(fs::symlink_status(outer, ec)); ++i)
    outer = target.parent_path() / (base + "-" + std::to_string(i));
  return (outer / target.filename()).string();
}

std::string replace_run(const std::string& staging, const std::string& run_dir, const std::string& label) {
  const std::string dir = named_path(run_dir).string();
  const fs::path outer = fs::path(staging).parent_path();
  fs::path old = staging;  // where the old run is once the new one is in place
  if (::renameat2(AT_FDCWD, staging.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE) != 0) {
    const int err = errno;
    BP_CHECK(err == EINVAL || err == ENOSYS || err == ENOTSUP, FileError,
             label + ": cannot move the new run ", staging, " into ", dir, ": ", std::strerror(err), "; ",
             dir, " still holds the earlier run");
    // No exchange on this file system: the old run goes aside first, so DIR is only missing while both runs
    // are beside it.
    old = outer / "previous";
    BP_CHECK(::rename(dir.c_str(), old.c_str()) == 0, FileError, label + ": cannot move the earlier run ",
             dir, " aside to ", old.string(), ": ", std::strerror(errno), "; the new run is in ", staging);
    if (::rename(staging.c_str(), dir.c_str()) != 0) {
      const int moved = errno;
      ::rename(old.c_str(), dir.c_str());
      throw FileError(label + ": cannot move the new run " + staging + " into " + dir + ": " +
                      std::strerror(moved) + "; " + dir + " still holds the earlier run");
    }
  }
  // The new run is in place. What the user kept in the old folder stays; the old run itself goes.
  fs::path left = carry_over(old, dir, run_owned);
  if (left.empty()) left = carry_over(old / "checkpoints", fs::path(dir) / "checkpoints", checkpoint_owned);
  if (!left.empty()) {
    return label + ": could not move " + left.string() + " back into " + dir +
           "; the earlier run is left in " + outer.string();
  }
  std::error_code ec;
  fs::remove_all(outer, ec);
  if (ec) return label + ": could not remove the earlier run in " + outer.string() + ": " + ec.message();
  return {};
}

// ---- RunFolder ---------------------------------------------------------------------------------------------

RunFolder::RunFolder(std::string dir, bool writes, std::string label)
    : dir_(std::move(dir)), writes_(writes), label_(std::move(label)) {
  if (!writes_) return;
  std::error_code ec;
  fs::create_directories(dir_, ec);
  BP_CHECK(!ec && fs::is_directory(dir_, ec), FileError, label_, " ", dir_, ": cannot create the run folder",
           ec ? ": " + ec.message() : std::string());
}

std::string RunFolder::model() const {
  return (fs::path(dir_) / "model.safetensors").string();
}
std::string RunFolder::metrics() const {
  return (fs::path(dir_) / "metrics.jsonl").string();
}
std::string RunFolder::config() const {
  return (fs::path(dir_) / "config.toml").string();
}
std::string RunFolder::summary() const {
  return (fs::path(dir_) / "summary.json").string();
}
std::string RunFolder::checkpoints() const {
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

void RunFolder::prepare_fresh() {
  if (!writes_) return;
  remove_stale_temporaries(dir_);
  remove_stale_temporaries(checkpoints());
}

void RunFolder::prepare_resume(std::int64_t epoch, std::int64_t step) {
  if (!writes_) return;
  for (const char* f : {"model.safetensors", "summary.json", "report.html"}) remove_file(fs::path(dir_) / f);
  remove_stale_temporaries(dir_);
  remove_stale_temporaries(checkpoints());
  io::truncate_metrics(metrics(), epoch, step);
}

void RunFolder::write_summary(const std::string& json_text) {
  if (!writes_) return;
  io::write_file_atomic(summary(), json_text + "\n");
}

void RunFolder::write_report() {
  if (writes_) io::write_report(dir_);
}

std::string RunFolder::try_report() {
  if (!writes_) return {};
  try {
    io::write_report(dir_);
  } catch (const Error& e) {
    return e.what();
  }
  return {};
}

}  // namespace backprop::io
