// Checkpoints and --resume: an interrupted run, resumed, ends with exactly the weights of an uninterrupted
// one.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <backprop/io/metrics.hpp>
#include <chrono>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli_test_util.hpp"
#include "util/require.hpp"

extern char** environ;

using clitest::run;
using clitest::Scratch;
using ::testing::HasSubstr;
namespace fs = std::filesystem;
namespace bp = backprop;

namespace {

// Small enough to be quick, with dropout (its generators must be restored), momentum (optimiser state) and a
// step schedule (scheduler state). 1 thread: quick on a busy machine.
const std::string kRun =
    "--limit-test 200 --layers 48,24 --dropout 0.3 --batch-size 20 --optimizer momentum --lr 0.05 "
    "--schedule step:1:0.8 --grad-flow 25 --threads 1 --seed 7 --quiet ";

// Starts `backprop train ARGS` without waiting; returns its pid.
pid_t spawn(const std::vector<std::string>& args) {
  std::vector<std::string> all = {clitest::kCli, "train"};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

}  // namespace

TEST(Resume, TwoEpochsThenTwoMoreEqualFourStraight) {
  REQUIRE_INSTALLED(clitest::have_fashion(), "dataset-fashion-mnist",
                    std::string("Fashion-MNIST under ") + clitest::kFashionDir);
  Scratch s;
  ASSERT_EQ(run(s, "train " + kRun + "--limit-train 1200 --epochs 4 --out " + s.path("straight")).code, 0);
  ASSERT_EQ(
      run(s, "train " + kRun + "--limit-train 1200 --epochs 2 --checkpoint-every 1 --out " + s.path("split"))
          .code,
      0);
  const auto r = run(s, "train --quiet --resume " + s.path("split") + " --epochs 4");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(clitest::same_tensors(s.path("straight/model.safetensors"), s.path("split/model.safetensors")));
  // The log reads as one run: epochs 1..4 once each, gradient-flow steps continuing across the resume.
  const bp::io::Metrics a = bp::io::read_metrics(s.path("straight/metrics.jsonl"));
  const bp::io::Metrics b = bp::io::read_metrics(s.path("split/metrics.jsonl"));
  ASSERT_EQ(b.epochs.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(b.epochs[i].epoch, static_cast<std::int64_t>(i + 1));
    EXPECT_EQ(b.epochs[i].train_loss, a.epochs[i].train_loss) << "epoch " << i + 1;
    EXPECT_EQ(b.epochs[i].lr, a.epochs[i].lr) << "epoch " << i + 1;
  }
  const auto summary = nlohmann::json::parse(clitest::slurp(s.path("split/summary.json")));
  EXPECT_EQ(summary["updates"], 4 * 54);  // 1080 examples / 20 = 54 updates per epoch
  EXPECT_EQ(summary["epochs_run"], 4);
  ASSERT_FALSE(b.grad_flow.empty());
  EXPECT_GT(b.grad_flow.back().step, 54 * 2);  // 1080 examples / 20 = 54 updates per epoch
}

TEST(Resume, ChangingTheRecipeIsRefused) {
  REQUIRE_INSTALLED(clitest::have_fashion(), "dataset-fashion-mnist",
                    std::string("Fashion-MNIST under ") + clitest::kFashionDir);
  Scratch s;
  ASSERT_EQ(
      run(s, "train " + kRun + "--limit-train 1200 --epochs 1 --checkpoint-every 1 --out " + s.path("r"))
          .code,
      0);
  const auto r = run(s, "train --resume " + s.path("r") + " --lr 0.5");
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--lr cannot be changed when resuming"));
  const auto c = run(s, "train --resume " + s.path("r") + " --config x.toml");
  EXPECT_EQ(c.code, 2);
  // A model file is not a checkpoint.
  const auto m = run(s, "train --resume " + s.path("r/model.safetensors"));
  EXPECT_EQ(m.code, 3);
  EXPECT_THAT(m.err, HasSubstr("is a model, not a checkpoint"));
}

TEST(Resume, KilledRunsResumeToTheSameWeights) {
  REQUIRE_INSTALLED(clitest::have_fashion(), "dataset-fashion-mnist",
                    std::string("Fashion-MNIST under ") + clitest::kFashionDir);
  Scratch s;
  // More examples than kRun, so that an epoch lasts long enough for the kill to land inside the run.
  const std::string args = kRun + "--limit-train 20000 --epochs 4 --checkpoint-every 1 ";

  ASSERT_EQ(run(s, "train " + args + "--out " + s.path("straight")).code, 0);
  bp::Generator gen(2024);
  int interrupted = 0;  // trials whose run was killed before it finished
  // Kill after the first, second and third checkpoint appears, plus a random delay into the next epoch.
  for (int trial = 1; trial <= 3; ++trial) {
    const std::string out = s.path("killed" + std::to_string(trial));
    std::vector<std::string> argv = split(args);
    argv.push_back("--out");
    argv.push_back(out);
    const pid_t pid = spawn(argv);
    ASSERT_GT(pid, 0);
    char wanted[40];
    std::snprintf(wanted, sizeof wanted, "checkpoints/epoch-%04d.safetensors", trial);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
    int status = 0;
    bool exited = false;
    // The checkpoint file appears first and `latest` is written after it: a kill in between leaves a run
    // with nothing to resume the first time, so wait for both.
    const auto saved = [&] {
      return fs::exists(fs::path(out) / wanted) && fs::exists(fs::path(out) / "checkpoints" / "latest");
    };
    while (!saved() && std::chrono::steady_clock::now() < deadline) {
      if (waitpid(pid, &status, WNOHANG) == pid) {
        exited = true;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    // A short random delay: well inside the next epoch even on a fast, quiet machine.
    std::this_thread::sleep_for(std::chrono::milliseconds(static_cast<int>(gen.below(40))));
    if (!exited) {
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      exited = !(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    }
    if (!exited && !fs::exists(out + "/summary.json")) ++interrupted;
    const auto r = run(s, "train --quiet --resume " + out);
    ASSERT_EQ(r.code, 0) << "trial " << trial << ": " << r.err;
    EXPECT_TRUE(clitest::same_tensors(s.path("straight/model.safetensors"), out + "/model.safetensors"))
        << "trial " << trial;
    const bp::io::Metrics m = bp::io::read_metrics(out + "/metrics.jsonl");
    ASSERT_EQ(m.epochs.size(), 4u) << "trial " << trial;
    EXPECT_EQ(m.epochs.back().epoch, 4);
  }
  EXPECT_GE(interrupted, 1) << "every run finished before it could be killed";
}
