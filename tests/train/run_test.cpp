// train::run_config / train::run (backprop/train/run.hpp): a run from a configuration into a run folder, its
// resume rules, a stop request, divergence and an `overwrite` run that does not finish; and StopOnSignals
// (backprop/train/signals.hpp).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <backprop/backprop.hpp>
#include <backprop/train/run.hpp>
#include <backprop/train/signals.hpp>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace bp = backprop;
namespace fs = std::filesystem;
using ::testing::HasSubstr;

namespace {

// A fresh folder for one test, removed afterwards.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() / ("backprop_run_" + std::to_string(::getpid()) + "_" + info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

 private:
  fs::path dir_;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// 150 rows of three separated classes in two features: "a,b,y" with labels k0, k1, k2.
std::string write_table(const TempDir& dir) {
  bp::Generator gen(7);
  std::string text = "a,b,y\n";
  for (int i = 0; i < 150; ++i) {
    const int c = i % 3;
    char row[96];
    std::snprintf(row, sizeof row, "%.4f,%.4f,k%d\n", c + 0.3 * gen.normal(), 2.0 * c + 0.3 * gen.normal(),
                  c);
    text += row;
  }
  const std::string path = dir.path("table.csv");
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

// The overrides of a small, quick run on `csv`, as the command line's flags give them.
std::vector<bp::train::Override> small_run(const std::string& csv) {
  return {{"data.source", csv, "--data"},
          {"data.target", "y", "--target"},
          {"model.layers", "8", "--layers"},
          {"train.epochs", "3", "--epochs"},
          {"run.checkpoint_every", "1", "--checkpoint-every"}};
}

// Everything written to a temporary FILE*, as text.
struct Captured {
  std::FILE* file = std::tmpfile();
  ~Captured() { std::fclose(file); }
  std::string text() const {
    std::fflush(file);
    std::rewind(file);
    std::string s;
    char buf[4096];
    for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, file)) > 0;) s.append(buf, n);
    return s;
  }
};

// True when two safetensors files hold the same tensors byte for byte.
bool same_weights(const std::string& a, const std::string& b) {
  const bp::io::NamedTensors x = bp::io::load_safetensors(a), y = bp::io::load_safetensors(b);
  if (x.tensors.size() != y.tensors.size()) return false;
  for (const auto& [name, t] : x.tensors) {
    if (!y.contains(name)) return false;
    const bp::Tensor& u = y.at(name);
    if (u.shape() != t.shape() || std::memcmp(u.raw_data(), t.raw_data(), t.nbytes()) != 0) return false;
  }
  return true;
}

}  // namespace

TEST(Run, ATableRunWritesTheRunFolderAndSaysWhatItTrains) {
  TempDir tmp;
  const std::string out = tmp.path("run");
  Captured log;
  const bp::train::RunResult r =
      bp::train::run(bp::train::run_config({.overrides = small_run(write_table(tmp))}),
                     {.out = out, .log = log.file, .notices = nullptr});
  EXPECT_EQ(r.end, bp::train::RunEnd::finished);
  EXPECT_EQ(r.run_dir, out);
  EXPECT_EQ(r.history.epochs_done, 3);
  for (const char* file :
       {"model.safetensors", "summary.json", "metrics.jsonl", "config.toml", "report.html"})
    EXPECT_TRUE(fs::exists(out + "/" + file)) << file;
  EXPECT_EQ(r.summary_json + "\n", slurp(out + "/summary.json"));  // as written
  EXPECT_EQ(nlohmann::json::parse(r.summary_json)["status"], "completed");
  EXPECT_THAT(r.summary_text, HasSubstr("trained 3 epochs"));
  const bp::io::ModelFile model = bp::io::load_model(out + "/model.safetensors");
  EXPECT_EQ(model.preprocessing.class_names, (std::vector<std::string>{"k0", "k1", "k2"}));
  EXPECT_EQ(bp::io::describe(model.architecture), "2-8-3");
  // The table's fitted defaults, then the network and data, then the run folder, then one line per epoch.
  const std::string said = log.text();
  EXPECT_THAT(said, HasSubstr("defaults for 150 rows"));
  EXPECT_THAT(said, HasSubstr("training 2-8-3 (relu, dropout 0.2; "));
  EXPECT_THAT(said, HasSubstr("run folder " + out + "\n"));
  EXPECT_THAT(said, HasSubstr("epoch   3/3"));
}

TEST(Run, ResumeMayChangeOnlyTheResumableKeys) {
  TempDir tmp;
  const std::string out = tmp.path("run");
  const bp::train::RunConfig first = bp::train::run_config({.overrides = small_run(write_table(tmp))});
  ASSERT_EQ(bp::train::run(first, {.out = out, .log = nullptr}).end, bp::train::RunEnd::finished);
  // The network is the checkpoint's: --layers may not change, with the message the command line gives.
  try {
    bp::train::run_config({.resume = out, .overrides = {{"model.layers", "16", "--layers"}}});
    FAIL() << "a changed architecture was accepted";
  } catch (const bp::ConfigError& e) {
    EXPECT_EQ(std::string(e.what()),
              "--layers cannot be changed when resuming: the run continues with the configuration in its "
              "checkpoint (model.layers = " +
                  bp::config::get(first.config, "model.layers") +
                  "); only --epochs, --checkpoint-every, --threads, --grad-flow and --detect-anomaly may "
                  "change");
  }
  // The same value is no change; --epochs is resumable.
  const bp::train::RunConfig more = bp::train::run_config(
      {.resume = out, .overrides = {{"model.layers", "8", "--layers"}, {"train.epochs", "5", "--epochs"}}});
  EXPECT_TRUE(more.resuming());
  EXPECT_EQ(more.checkpoint, out + "/checkpoints/epoch-0003.safetensors");
  EXPECT_EQ(more.config.train.epochs, 5);
  EXPECT_EQ(bp::train::resumable_keys().size(), 5u);
  EXPECT_THROW(bp::train::run_config({.config_file = tmp.path("x.toml"), .resume = out}), bp::ConfigError);
  // Resumed into its own folder (no --out): two more epochs.
  const bp::train::RunResult r = bp::train::run(more, {.log = nullptr});
  EXPECT_EQ(r.end, bp::train::RunEnd::finished);
  EXPECT_EQ(r.run_dir, out);
  EXPECT_EQ(r.history.epochs_done, 5);
  EXPECT_EQ(r.history.epochs.size(), 2u);
}

TEST(Run, AStopRequestSavesACheckpointAndTheResumedRunEqualsAStraightOne) {
  TempDir tmp;
  const std::vector<bp::train::Override> settings = small_run(write_table(tmp));
  const std::string out = tmp.path("stopped"), straight = tmp.path("straight");
  std::atomic<bool> stop{true};  // raised before the first update: the run stops after it
  Captured notices;
  const bp::train::RunResult r =
      bp::train::run(bp::train::run_config({.overrides = settings}),
                     {.out = out, .log = nullptr, .notices = notices.file, .stop = &stop});
  EXPECT_EQ(r.end, bp::train::RunEnd::interrupted);
  EXPECT_EQ(r.signal, 0);
  EXPECT_EQ(r.history.total_updates, 1);
  EXPECT_EQ(r.checkpoint, out + "/checkpoints/epoch-0000-step-00000001.safetensors");
  EXPECT_TRUE(fs::exists(r.checkpoint));
  EXPECT_FALSE(fs::exists(out + "/model.safetensors"));
  const nlohmann::json summary = nlohmann::json::parse(slurp(out + "/summary.json"));
  EXPECT_EQ(summary["status"], "interrupted");
  EXPECT_EQ(summary["interrupted"]["signal"], "a stop request");
  EXPECT_EQ(notices.text(), "interrupted by a stop request at epoch 1, step 1; saved " + r.checkpoint +
                                "; continue with: backprop train --resume " + out + "\n");

  const bp::train::RunResult resumed =
      bp::train::run(bp::train::run_config({.resume = out}), {.log = nullptr});
  EXPECT_EQ(resumed.end, bp::train::RunEnd::finished);
  ASSERT_EQ(
      bp::train::run(bp::train::run_config({.overrides = settings}), {.out = straight, .log = nullptr}).end,
      bp::train::RunEnd::finished);
  EXPECT_TRUE(same_weights(out + "/model.safetensors", straight + "/model.safetensors"));
}

TEST(Run, DivergenceIsAResultWithItsSummary) {
  TempDir tmp;
  std::vector<bp::train::Override> settings = small_run(write_table(tmp));
  settings.insert(settings.end(), {{"optimizer.name", "sgd", "--optimizer"},
                                   {"optimizer.lr", "1e6", "--lr"},
                                   {"optimizer.schedule", "none", "--schedule"},
                                   {"train.grad_reduction", "sum", "--grad-reduction"}});
  const std::string out = tmp.path("run");
  const bp::train::RunResult r =
      bp::train::run(bp::train::run_config({.overrides = settings}), {.out = out, .log = nullptr});
  ASSERT_EQ(r.end, bp::train::RunEnd::diverged);
  EXPECT_THAT(r.message, HasSubstr("diverged"));
  EXPECT_EQ(nlohmann::json::parse(slurp(out + "/summary.json"))["status"], "diverged");
  EXPECT_FALSE(fs::exists(out + "/model.safetensors"));
}

TEST(Run, AnOverwriteRunThatDoesNotFinishLeavesTheEarlierRun) {
  TempDir tmp;
  const std::vector<bp::train::Override> settings = small_run(write_table(tmp));
  const std::string out = tmp.path("run");
  ASSERT_EQ(bp::train::run(bp::train::run_config({.overrides = settings}), {.out = out, .log = nullptr}).end,
            bp::train::RunEnd::finished);
  const std::string model = slurp(out + "/model.safetensors");
  // Without overwrite a folder that holds a run is refused; with it, a stopped new run is staged beside it.
  EXPECT_THROW(bp::train::run(bp::train::run_config({.overrides = settings}), {.out = out, .log = nullptr}),
               bp::ConfigError);
  std::atomic<bool> stop{true};
  Captured notices;
  const bp::train::RunResult r =
      bp::train::run(bp::train::run_config({.overrides = settings}),
                     {.out = out, .overwrite = true, .log = nullptr, .notices = notices.file, .stop = &stop});
  EXPECT_EQ(r.end, bp::train::RunEnd::interrupted);
  EXPECT_NE(r.run_dir, out);
  EXPECT_EQ(slurp(out + "/model.safetensors"), model);
  EXPECT_THAT(notices.text(),
              HasSubstr("note: --overwrite: " + out +
                        " still holds the earlier run, unchanged; the interrupted new run is in " +
                        r.run_dir + "\n"));
}

TEST(Run, StopOnSignalsAndAStopFlagAreNotBothGiven) {
  std::atomic<bool> stop{false};
  EXPECT_THROW(bp::train::run({}, {.stop_on_signals = true, .stop = &stop}), bp::ValueError);
}

TEST(StopOnSignals, RecordsTheFirstSignalAndRestoresTheHandlers) {
  struct sigaction mine {
  }, now{};
  mine.sa_handler = SIG_IGN;
  sigemptyset(&mine.sa_mask);
  struct sigaction before_int {
  }, before_term{};
  sigaction(SIGINT, &mine, &before_int);
  sigaction(SIGTERM, &mine, &before_term);
  {
    bp::train::StopOnSignals signals;
    EXPECT_FALSE(signals.flag()->load());
    EXPECT_EQ(signals.name(), "a stop request");
    EXPECT_EQ(signals.exit_code(), 143);
    ::raise(SIGINT);  // handled: the process goes on
    ::raise(SIGTERM);
    EXPECT_TRUE(signals.flag()->load());
    EXPECT_EQ(signals.signal(), SIGINT);
    EXPECT_EQ(signals.name(), "SIGINT");
    EXPECT_EQ(signals.exit_code(), 130);
  }
  sigaction(SIGINT, nullptr, &now);
  EXPECT_EQ(now.sa_handler, SIG_IGN);
  sigaction(SIGTERM, nullptr, &now);
  EXPECT_EQ(now.sa_handler, SIG_IGN);
  {
    bp::train::StopOnSignals again;  // a new one starts clear
    EXPECT_FALSE(again.flag()->load());
    ::raise(SIGTERM);
    EXPECT_EQ(again.exit_code(), 143);
    EXPECT_EQ(again.name(), "SIGTERM");
  }
  sigaction(SIGINT, &before_int, nullptr);
  sigaction(SIGTERM, &before_term, nullptr);
  EXPECT_EQ(bp::train::stop_exit_code(SIGINT), 130);
  EXPECT_EQ(bp::train::stop_signal_name(0), "a stop request");
}
