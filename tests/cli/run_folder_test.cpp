// A run folder that holds a run is never emptied before a new run has succeeded: `train --out DIR` onto it is
// refused (exit 2) unless --overwrite is given, and then the new run is staged beside DIR and replaces the old
// one only once it has finished; a diverged, interrupted or failed new run leaves DIR byte for byte as it
// was. Reports and summaries stay bounded for any class count, and a report that cannot be written is an
// error.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/resource.h>

#include <chrono>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli_test_util.hpp"

using clitest::Scratch;
using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// Every file under `dir` with its bytes, and every folder (as "path/"): equal snapshots are equal trees.
std::map<std::string, std::string> snapshot(const fs::path& dir) {
  std::map<std::string, std::string> files;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    const std::string rel = fs::relative(e.path(), dir).string();
    if (e.is_directory())
      files[rel + "/"] = "";
    else
      files[rel] = clitest::slurp(e.path().string());
  }
  return files;
}

// The folders beside `dir` that a staged run made (DIR.new-PID...).
std::vector<fs::path> staged_beside(const fs::path& dir) {
  std::vector<fs::path> found;
  for (const auto& e : fs::directory_iterator(dir.parent_path()))
    if (e.path().filename().string().rfind(dir.filename().string() + ".new-", 0) == 0)
      found.push_back(e.path());
  return found;
}

// 3 classes of 4 features, 300 rows; seconds of training for 1000 epochs, a few milliseconds per epoch.
std::string recipe(const Scratch& s) {
  if (!fs::exists(s.path("blobs.csv"))) clitest::write(s.path("blobs.csv"), clitest::blobs_csv(5, 100));
  return "train --data " + s.path("blobs.csv") + " --threads 1 --quiet --checkpoint-every 1 ";
}

// An earlier run in `dir` (2 epochs, checkpoints), and files of the user's own beside its files.
std::map<std::string, std::string> earlier_run(const Scratch& s, const std::string& dir) {
  const auto r = clitest::run(s, recipe(s) + "--layers 8 --epochs 2 --seed 1 --out " + dir);
  EXPECT_EQ(r.code, 0) << r.err;
  clitest::write(dir + "/notes.txt", "the user's notes\n");
  clitest::write(dir + "/checkpoints/README", "the user's file among the checkpoints\n");
  return snapshot(dir);
}

int exit_code(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

// `backprop ARGS` unable to write a file past `bytes` (RLIMIT_FSIZE, with SIGXFSZ ignored so that such a
// write fails with EFBIG instead of killing the process), as a full disk would stop it.
clitest::Result run_with_file_limit(const Scratch& s, const std::string& args, rlim_t bytes) {
  const std::string out = s.path("limited.out"), err = s.path("limited.err");
  const std::string command = clitest::quote(clitest::kCli) + " " + args + " >" + clitest::quote(out) +
                              " 2>" + clitest::quote(err) + " </dev/null";
  const pid_t pid = ::fork();
  if (pid == 0) {
    const rlimit limit{bytes, bytes};
    ::setrlimit(RLIMIT_FSIZE, &limit);
    ::signal(SIGXFSZ, SIG_IGN);
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    ::_exit(127);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  return {.code = exit_code(status), .out = clitest::slurp(out), .err = clitest::slurp(err)};
}

}  // namespace

TEST(RunFolder, ARunIsRefusedBeforeTheDataIsRead) {
  Scratch s;
  const std::string dir = s.path("run");
  const auto before = earlier_run(s, dir);
  // The data does not exist: the refusal comes first, so the data is never read.
  const auto r = clitest::run(s, "train --quiet --data " + s.path("missing.csv") + " --out " + dir);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("--out " + dir + ": the folder already holds a run"));
  EXPECT_THAT(r.err, HasSubstr("--resume " + dir));
  EXPECT_THAT(r.err, HasSubstr("another --out"));
  EXPECT_THAT(r.err, HasSubstr("--overwrite"));
  EXPECT_THAT(r.err, Not(HasSubstr("missing.csv")));
  EXPECT_EQ(snapshot(dir), before);
  // Any one file or folder of a run is enough.
  for (const char* name :
       {"model.safetensors", "metrics.jsonl", "summary.json", "config.toml", "report.html", "checkpoints"}) {
    const std::string one = s.path(std::string("only-") + name);
    fs::create_directories(one);
    if (std::string(name) == "checkpoints")
      fs::create_directories(one + "/checkpoints");
    else
      clitest::write(one + "/" + name, "x");
    const auto again = clitest::run(s, recipe(s) + "--epochs 1 --out " + one);
    EXPECT_EQ(again.code, 2) << name;
    EXPECT_THAT(again.err, HasSubstr("already holds a run (" + std::string(name) + ")"));
  }
  // Resuming the run in its own folder is not a new run.
  EXPECT_EQ(clitest::run(s, "train --quiet --resume " + dir + " --epochs 3").code, 0);
}

TEST(RunFolder, AnEmptyFolderOrOneOfOtherFilesIsUsedAsItIs) {
  Scratch s;
  fs::create_directories(s.path("empty"));
  EXPECT_EQ(clitest::run(s, recipe(s) + "--epochs 1 --out " + s.path("empty")).code, 0);
  EXPECT_TRUE(fs::exists(s.path("empty/model.safetensors")));
  fs::create_directories(s.path("mine/data"));
  clitest::write(s.path("mine/notes.txt"), "keep me");
  clitest::write(s.path("mine/data/table.csv"), "a,b\n1,2\n");
  const auto r = clitest::run(s, recipe(s) + "--epochs 1 --out " + s.path("mine"));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(fs::exists(s.path("mine/model.safetensors")));
  EXPECT_EQ(clitest::slurp(s.path("mine/notes.txt")), "keep me");
  EXPECT_EQ(clitest::slurp(s.path("mine/data/table.csv")), "a,b\n1,2\n");
}

TEST(RunFolder, OverwriteReplacesTheRunOnceTheNewOneHasFinished) {
  Scratch s;
  const std::string dir = s.path("run");
  const auto before = earlier_run(s, dir);
  const auto r =
      clitest::run(s, recipe(s) + "--layers 5 --epochs 1 --seed 2 --overwrite --json --out " + dir);
  ASSERT_EQ(r.code, 0) << r.err;
  // The new run, whole, in DIR: one epoch, its own network; none of the old run's files are left.
  const json summary = json::parse(clitest::slurp(dir + "/summary.json"));
  EXPECT_EQ(summary["status"], "completed");
  EXPECT_EQ(summary["epochs_run"], 1);
  EXPECT_EQ(summary["network"], "4-5-3");
  EXPECT_EQ(summary["run_dir"], dir);
  EXPECT_EQ(json::parse(r.out)["run_dir"], dir);
  EXPECT_THAT(clitest::slurp(dir + "/config.toml"), HasSubstr("layers = [5]"));
  EXPECT_NE(clitest::slurp(dir + "/model.safetensors"), before.at("model.safetensors"));
  EXPECT_TRUE(fs::exists(dir + "/checkpoints/epoch-0001.safetensors"));
  EXPECT_FALSE(fs::exists(dir + "/checkpoints/epoch-0002.safetensors"));
  EXPECT_EQ(clitest::slurp(dir + "/checkpoints/latest"), "epoch-0001.safetensors\n");
  EXPECT_THAT(clitest::slurp(dir + "/report.html"), HasSubstr("<title>"));
  EXPECT_THAT(clitest::slurp(dir + "/report.html"), HasSubstr("run</"));  // the title is the folder's name
  EXPECT_THAT(clitest::slurp(dir + "/report.html"), Not(HasSubstr(".new-")));
  // The user's own files stay; no staging folder is left.
  EXPECT_EQ(clitest::slurp(dir + "/notes.txt"), before.at("notes.txt"));
  EXPECT_EQ(clitest::slurp(dir + "/checkpoints/README"), before.at("checkpoints/README"));
  EXPECT_TRUE(staged_beside(dir).empty());
  // A folder without a run and --overwrite: used as it is.
  EXPECT_EQ(clitest::run(s, recipe(s) + "--epochs 1 --overwrite --out " + s.path("fresh")).code, 0);
  EXPECT_TRUE(staged_beside(s.path("fresh")).empty());
}

TEST(RunFolder, OverwriteThatDivergesLeavesTheOldRun) {
  Scratch s;
  const std::string dir = s.path("run");
  const auto before = earlier_run(s, dir);
  const auto r = clitest::run(
      s,
      recipe(s) + "--layers 8 --optimizer sgd --lr 1e30 --schedule none --epochs 3 --overwrite --out " + dir);
  EXPECT_EQ(r.code, 4) << r.err;
  EXPECT_THAT(r.err, HasSubstr("training diverged"));
  EXPECT_EQ(snapshot(dir), before);
  const std::vector<fs::path> staged = staged_beside(dir);
  ASSERT_EQ(staged.size(), 1u);
  const fs::path staging = staged[0] / "run";
  EXPECT_THAT(r.err, HasSubstr(dir + " still holds the earlier run, unchanged; the new run's files are in " +
                               staging.string()));
  EXPECT_EQ(json::parse(clitest::slurp((staging / "summary.json").string()))["status"], "diverged");
}

TEST(RunFolder, OverwriteThatIsInterruptedLeavesTheOldRunAndResumesInItsStaging) {
  Scratch s;
  const std::string dir = s.path("run");
  const auto before = earlier_run(s, dir);
  const pid_t pid = clitest::spawn(
      clitest::words(recipe(s) + "--layers 8 --batch-size 10 --epochs 1000 --overwrite --out " + dir),
      s.path("run.out"), s.path("run.err"));
  ASSERT_GT(pid, 0);
  // Wait for the staged run's first epoch, then interrupt it.
  fs::path staging;
  int status = 0;
  bool finished = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid, &status, WNOHANG) == pid) {
      finished = true;
      break;
    }
    const std::vector<fs::path> staged = staged_beside(dir);
    if (!staged.empty() &&
        clitest::slurp((staged[0] / "run" / "metrics.jsonl").string()).find("\"type\":\"epoch\"") !=
            std::string::npos) {
      staging = staged[0] / "run";
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_FALSE(finished) << "the run ended before it was interrupted: " << clitest::slurp(s.path("run.err"));
  ASSERT_FALSE(staging.empty()) << "no staged epoch within 60 s";
  kill(pid, SIGINT);
  waitpid(pid, &status, 0);
  const std::string err = clitest::slurp(s.path("run.err"));
  EXPECT_EQ(exit_code(status), 130) << err;
  EXPECT_EQ(snapshot(dir), before);
  EXPECT_THAT(err, HasSubstr("continue with: backprop train --resume " + staging.string()));
  EXPECT_THAT(err, HasSubstr(dir + " still holds the earlier run, unchanged; the interrupted new run is in " +
                             staging.string()));
  // The staged run continues where it stopped, in its own folder; DIR is still the old run.
  const auto resumed = clitest::run(s, "train --quiet --resume " + staging.string() + " --epochs 3");
  EXPECT_EQ(resumed.code, 0) << resumed.err;
  EXPECT_EQ(json::parse(clitest::slurp((staging / "summary.json").string()))["status"], "completed");
  EXPECT_EQ(snapshot(dir), before);
}

// The report is the last file a run writes. With the largest file the run may write below the report's size
// and above every other file's, only the report cannot be written.
TEST(RunFolder, AReportThatCannotBeWrittenIsAnErrorAndOverwriteKeepsTheOldRun) {
  Scratch s;
  const std::string args = recipe(s) + "--layers 8 --epochs 2 --seed 3 ";
  ASSERT_EQ(clitest::run(s, args + "--out " + s.path("reference")).code, 0);
  std::uintmax_t others = 0;
  for (const auto& e : fs::recursive_directory_iterator(s.path("reference")))
    if (e.is_regular_file() && e.path().filename() != "report.html") others = std::max(others, e.file_size());
  const std::uintmax_t report = fs::file_size(s.path("reference/report.html"));
  ASSERT_GT(report, others + 4096) << "the report should be the largest file of this run";
  const rlim_t limit = others + 1024;

  const auto fresh = run_with_file_limit(s, args + "--out " + s.path("fresh"), limit);
  EXPECT_EQ(fresh.code, 3) << fresh.err;
  EXPECT_THAT(fresh.err, HasSubstr("report.html"));
  EXPECT_THAT(fresh.err, HasSubstr("write the report again with: backprop report " + s.path("fresh")));
  EXPECT_TRUE(fs::exists(s.path("fresh/model.safetensors")));
  EXPECT_FALSE(fs::exists(s.path("fresh/report.html")));

  const std::string dir = s.path("run");
  const auto before = earlier_run(s, dir);
  const auto r = run_with_file_limit(s, args + "--overwrite --out " + dir, limit);
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_EQ(snapshot(dir), before);
  ASSERT_EQ(staged_beside(dir).size(), 1u);
  EXPECT_THAT(r.err, HasSubstr("the new run's files are in " + (staged_beside(dir)[0] / "run").string()));
}

// A file system that fills up while the new run saves: exit 3, and the old run is whole. Needs a tmpfs
// mount (root); skipped where mounting is refused.
TEST(RunFolder, AFullDiskDuringAnOverwriteKeepsTheOldRun) {
  Scratch s;
  const std::string disk = s.path("disk");
  fs::create_directories(disk);
  if (::mount("tmpfs", disk.c_str(), "tmpfs", 0, "size=2m") != 0)
    GTEST_SKIP() << "cannot mount a tmpfs here: " << std::strerror(errno);
  struct Unmount {
    std::string path;
    ~Unmount() { ::umount2(path.c_str(), MNT_DETACH); }
  } unmount{disk};
  const std::string dir = disk + "/run";
  const auto before = earlier_run(s, dir);
  // Fill the disk to within 64 KiB; the new run's network alone takes about 1 MB.
  const fs::space_info space = fs::space(disk);
  clitest::write(disk + "/filler", std::string(space.available - 64 * 1024, '\0'));
  const auto r = clitest::run(s, recipe(s) + "--layers 20000 --epochs 1 --overwrite --out " + dir);
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_THAT(r.err, HasSubstr("No space left on device"));
  EXPECT_THAT(r.err, HasSubstr(dir + " still holds the earlier run, unchanged"));
  EXPECT_EQ(snapshot(dir), before);
}

// Thousands of classes: the confusion matrix becomes its largest cells, so the summary and the report stay
// small, and both are complete.
TEST(RunFolder, ThousandsOfClassesKeepTheReportAndSummarySmall) {
  Scratch s;
  constexpr int kClasses = 2000;
  std::string train = "x,y,label\n", test = "x,y,label\n";
  for (int c = 0; c < kClasses; ++c) {
    for (int k = 0; k < 2; ++k)
      train += std::to_string(c % 37) + "," + std::to_string(k) + ",class" + std::to_string(c) + "\n";
    test += std::to_string(c % 37) + ",1,class" + std::to_string(c) + "\n";
  }
  clitest::write(s.path("train.csv"), train);
  clitest::write(s.path("test.csv"), test);
  const std::string dir = s.path("many");
  const auto r = clitest::run(s, "train --quiet --data " + s.path("train.csv") + " --test-data " +
                                     s.path("test.csv") + " --layers 8 --epochs 1 --threads 1 --out " + dir);
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string report = clitest::slurp(dir + "/report.html");
  const std::string summary_text = clitest::slurp(dir + "/summary.json");
  // Sizes first: a failure message quoting a page of hundreds of MB would be no use.
  ASSERT_LT(report.size(), 4u << 20);
  ASSERT_LT(summary_text.size(), 4u << 20);
  EXPECT_TRUE(report.ends_with("</html>\n"));
  EXPECT_THAT(report, HasSubstr("2000 classes, more than 50"));
  EXPECT_THAT(report, HasSubstr("Largest confusions"));
  EXPECT_THAT(report, HasSubstr("Accuracy per class"));
  const json summary = json::parse(summary_text);
  const json& t = summary["test"];
  EXPECT_FALSE(t.contains("confusion"));
  ASSERT_TRUE(t.contains("top_confusions"));
  EXPECT_GT(t["top_confusions"].size(), 0u);
  EXPECT_LE(t["top_confusions"].size(), 100u);
  for (const json& c : t["top_confusions"]) {
    EXPECT_THAT(c["true"].get<std::string>(), HasSubstr("class"));
    EXPECT_NE(c["true"], c["predicted"]);
    EXPECT_GT(c["count"].get<int>(), 0);
  }
  EXPECT_EQ(t["per_class_accuracy"].size(), static_cast<std::size_t>(kClasses));
  EXPECT_EQ(t["class_names"].size(), static_cast<std::size_t>(kClasses));
  // The run's metrics log holds the same top confusions, and `backprop report` rebuilds the same page.
  EXPECT_LT(fs::file_size(dir + "/metrics.jsonl"), 1u << 20);
  fs::remove(dir + "/report.html");
  EXPECT_EQ(clitest::run(s, "report --quiet " + dir).code, 0);
  EXPECT_EQ(clitest::slurp(dir + "/report.html"), report);
}
