// SIGTERM / SIGINT stop `backprop train` after the current update, save a checkpoint of exactly that point
// (mid-epoch), exit 143 / 130, and --resume ends bit-identical to an uninterrupted run; a second signal
// during that save is ignored. --detect-anomaly names the op that produced the first non-finite value.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>

#include <backprop/io/checkpoint.hpp>
#include <backprop/io/metrics.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli_test_util.hpp"

using clitest::Scratch;
using ::testing::HasSubstr;
namespace bp = backprop;
namespace fs = std::filesystem;

namespace {

// 3000 rows, batches of 10: 270 updates per epoch, with dropout (generator state), momentum and a step
// schedule, so that every piece of state a mid-epoch checkpoint holds matters. About 15 ms per epoch.
std::string recipe(const Scratch& s) {
  clitest::write(s.path("blobs.csv"), clitest::blobs_csv(21, 1000));
  return "train --data " + s.path("blobs.csv") +
         " --layers 32,16 --dropout 0.2 --batch-size 10 --optimizer momentum --lr 0.02 --schedule step:1:0.9 "
         "--threads 1 --seed 9 --grad-flow 7 --epochs 40 --quiet ";
}

int exit_code(int status) {
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
}

bool has_temporary(const fs::path& dir) {
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().filename().string().find(".tmp-") != std::string::npos) return true;
  return false;
}

// Starts the recipe, waits for two finished epochs, sends `sig`; with `again`, sends it a second time while
// the interrupt's checkpoint is being written: the test's preloaded library (tests/cli/shim/slow_save.cpp)
// holds that save's rename until the second signal is sent. Returns the exit code.
int interrupt(const Scratch& s, const std::string& args, const std::string& out, int sig, bool again) {
  std::vector<std::string> argv = clitest::words(args + "--out " + out);
  const std::string hold = s.path("hold");
  std::vector<std::string> env;
  if (again) env = clitest::save_shim_env({"HOLD_SAVE=" + hold});
  const pid_t pid = clitest::spawn(argv, s.path("run.out"), s.path("run.err"), env);
  EXPECT_GT(pid, 0);
  if (pid <= 0) return -1;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid, &status, WNOHANG) == pid) return exit_code(status);  // finished before the signal
    const std::string log = clitest::slurp(out + "/metrics.jsonl");
    std::size_t epochs = 0;
    for (std::size_t at = log.find("\"type\":\"epoch\""); at != std::string::npos;
         at = log.find("\"type\":\"epoch\"", at + 1))
      ++epochs;
    if (epochs >= 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  kill(pid, sig);
  if (again) {
    bool saving = false;
    while (!saving && std::chrono::steady_clock::now() < deadline && waitpid(pid, &status, WNOHANG) == 0) {
      saving = fs::exists(hold + ".held");
      if (!saving) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    EXPECT_TRUE(saving) << "the interrupt's checkpoint was never saved";
    EXPECT_TRUE(has_temporary(fs::path(out) / "checkpoints"))
        << "the save is under way: its temporary exists";
    if (saving) kill(pid, sig);
    clitest::write(hold + ".go", "");  // the save goes on
  }
  waitpid(pid, &status, 0);
  return exit_code(status);
}

// The interrupted run's checkpoint is mid-epoch and valid; resuming it gives the straight run's files.
void expect_resume_is_identical(const Scratch& s, const std::string& straight, const std::string& out,
                                const std::string& signal) {
  const std::string err = clitest::slurp(s.path("run.err"));
  EXPECT_THAT(err, HasSubstr("interrupted by " + signal + " at epoch "));
  EXPECT_THAT(err, HasSubstr("continue with: backprop train --resume " + out));
  const std::string checkpoint = bp::io::resolve_checkpoint(out);
  EXPECT_THAT(err, HasSubstr("saved " + checkpoint));
  const bp::io::Checkpoint ck = bp::io::load_checkpoint(checkpoint);
  EXPECT_GT(ck.trainer.partial.batches, 0) << "stopped at an epoch boundary";
  EXPECT_EQ(ck.trainer.epoch * 270 + ck.trainer.partial.batches, ck.trainer.step);
  EXPECT_FALSE(has_temporary(fs::path(out) / "checkpoints"));
  const auto summary = nlohmann::json::parse(clitest::slurp(out + "/summary.json"));
  EXPECT_EQ(summary["status"], "interrupted");
  EXPECT_EQ(summary["interrupted"]["signal"], signal);
  EXPECT_EQ(summary["interrupted"]["step"], ck.trainer.step);

  // Fewer epochs than the checkpoint is inside of cannot be resumed.
  const auto short_run =
      clitest::run(s, "train --quiet --resume " + out + " --epochs " + std::to_string(ck.trainer.epoch));
  EXPECT_EQ(short_run.code, 2);
  EXPECT_THAT(short_run.err, HasSubstr("stopped inside epoch " + std::to_string(ck.trainer.epoch + 1)));

  const auto r = clitest::run(s, "train --quiet --resume " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(clitest::same_tensors(straight + "/model.safetensors", out + "/model.safetensors"));
  const bp::io::Metrics a = bp::io::read_metrics(straight + "/metrics.jsonl");
  const bp::io::Metrics b = bp::io::read_metrics(out + "/metrics.jsonl");
  ASSERT_EQ(b.epochs.size(), a.epochs.size());
  for (std::size_t i = 0; i < a.epochs.size(); ++i) {
    EXPECT_EQ(b.epochs[i].train_loss, a.epochs[i].train_loss) << "epoch " << i + 1;
    EXPECT_EQ(b.epochs[i].train_accuracy, a.epochs[i].train_accuracy) << "epoch " << i + 1;
    EXPECT_EQ(b.epochs[i].val_loss, a.epochs[i].val_loss) << "epoch " << i + 1;
    EXPECT_EQ(b.epochs[i].updates, a.epochs[i].updates) << "epoch " << i + 1;
  }
  ASSERT_EQ(b.grad_flow.size(), a.grad_flow.size());
  for (std::size_t i = 0; i < a.grad_flow.size(); ++i) EXPECT_EQ(b.grad_flow[i].step, a.grad_flow[i].step);
  const auto done = nlohmann::json::parse(clitest::slurp(out + "/summary.json"));
  EXPECT_EQ(done["status"], "completed");
  EXPECT_EQ(done["updates"], 40 * 270);
}

}  // namespace

TEST(Signals, SigtermStopsAfterTheUpdateSavesAndExits143) {
  Scratch s;
  const std::string args = recipe(s);
  ASSERT_EQ(clitest::run(s, args + "--out " + s.path("straight")).code, 0);
  ASSERT_EQ(interrupt(s, args, s.path("term"), SIGTERM, false), 143) << clitest::slurp(s.path("run.err"));
  expect_resume_is_identical(s, s.path("straight"), s.path("term"), "SIGTERM");
}

TEST(Signals, SigintExits130AndASecondSignalDuringTheSaveIsIgnored) {
  Scratch s;
  const std::string args = recipe(s);
  ASSERT_EQ(clitest::run(s, args + "--out " + s.path("straight")).code, 0);
  ASSERT_EQ(interrupt(s, args, s.path("int"), SIGINT, true), 130) << clitest::slurp(s.path("run.err"));
  expect_resume_is_identical(s, s.path("straight"), s.path("int"), "SIGINT");
}

TEST(Signals, DetectAnomalyNamesTheOp) {
  Scratch s;
  clitest::write(s.path("blobs.csv"), clitest::blobs_csv(3, 20));
  const std::string args = "train --data " + s.path("blobs.csv") +
                           " --layers 8 --dropout 0 --optimizer sgd --lr 1e6 --schedule none --threads 1 "
                           "--epochs 3 --quiet ";
  // Without anomaly mode the loss check reports the step; with it, the op that made the first NaN/Inf.
  const auto plain = clitest::run(s, args + "--out " + s.path("plain"));
  EXPECT_EQ(plain.code, 4);
  EXPECT_THAT(plain.err, HasSubstr("training diverged"));
  EXPECT_THAT(plain.err, ::testing::Not(HasSubstr("anomaly")));
  const auto r = clitest::run(s, args + "--detect-anomaly --out " + s.path("anomaly"));
  EXPECT_EQ(r.code, 4);
  EXPECT_THAT(r.err, HasSubstr("anomaly: op '"));
  EXPECT_THAT(r.err, HasSubstr("produced a non-finite value"));
  const auto summary = nlohmann::json::parse(clitest::slurp(s.path("anomaly/summary.json")));
  EXPECT_EQ(summary["status"], "diverged");
  EXPECT_THAT(summary["message"].get<std::string>(), HasSubstr("anomaly: op '"));
  // The key is in the configuration the run saved.
  EXPECT_THAT(clitest::slurp(s.path("anomaly/config.toml")), HasSubstr("detect_anomaly = true"));
}
