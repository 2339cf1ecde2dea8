// SIGKILL at random moments, many times: whatever the moment — mid-update, mid-save, between a checkpoint
// and its `latest` pointer — the newest complete checkpoint validates, no temporary file is ever taken for a
// checkpoint, and a resumed run ends bit-identical to one that was never killed.
//
// Saves are made frequent (a checkpoint every epoch of 9 updates) and slow (the test's preloaded library,
// tests/cli/shim/slow_save.cpp, holds each temporary file 15 ms before its rename), so a good share of the
// kills land inside a save; the test counts them by the temporary files they leave behind. The kill times
// come from a seeded generator. Four trials in five wait for the run's first checkpoint and are killed at a
// random point of what follows it (drawn over the straight run's tail), so they test resuming however slow
// the start-up is on a loaded machine; the fifth is killed anywhere in the run, start-up included.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <backprop/io/checkpoint.hpp>
#include <backprop/io/metrics.hpp>
#include <chrono>
#include <thread>

#include "cli_test_util.hpp"

using clitest::Scratch;
namespace bp = backprop;
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

const std::vector<std::string> kSlowSaves = clitest::save_shim_env({"SLOW_SAVE_MS=15"});

std::vector<fs::path> files_matching(const fs::path& dir, const std::string& part) {
  std::vector<fs::path> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.path().filename().string().find(part) != std::string::npos) out.push_back(e.path());
  return out;
}

// Milliseconds from now until `out`/checkpoints/latest exists, polled every millisecond while `pid` runs;
// -1 if the process ends first (it is not reaped here).
double wait_for_first_checkpoint(pid_t pid, const std::string& out) {
  const auto start = Clock::now();
  const fs::path latest = fs::path(out) / "checkpoints" / "latest";
  for (;;) {
    if (fs::exists(latest)) return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    siginfo_t info{};
    if (waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOHANG | WNOWAIT) == 0 && info.si_pid == pid)
      return fs::exists(latest) ? 0.0 : -1.0;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

}  // namespace

TEST(KillTest, FiftyKillsAtRandomMomentsLoseNothing) {
  Scratch s;
  clitest::write(s.path("blobs.csv"), clitest::blobs_csv(5, 40));  // 108 training rows: 9 batches of 12
  const std::string args =
      "train --data " + s.path("blobs.csv") +
      " --layers 16 --dropout 0.3 --val-split 0.1 --batch-size 12 --optimizer momentum --lr 0.05 "
      "--schedule step:2:0.8 --threads 1 --seed 4 --grad-flow 5 --epochs 8 "
      "--checkpoint-every 1 --quiet ";

  // The uninterrupted run, timed with the same slow saves: when its first checkpoint appeared and when it
  // ended.
  const auto t0 = Clock::now();
  const pid_t straight = clitest::spawn(clitest::words(args + "--out " + s.path("straight")), s.path("s.out"),
                                        s.path("s.err"), kSlowSaves);
  ASSERT_GT(straight, 0);
  const double first_ms = wait_for_first_checkpoint(straight, s.path("straight"));
  int status = 0;
  waitpid(straight, &status, 0);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << clitest::slurp(s.path("s.err"));
  ASSERT_GE(first_ms, 0.0) << "the straight run wrote no checkpoint";
  double length_ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
  double tail_ms = std::max(length_ms - first_ms, 1.0);

  constexpr int kTrials = 50;
  bp::Generator gen(20261126);
  int killed = 0, during_save = 0, no_checkpoint_yet = 0, resumed = 0, resumed_after_save_kill = 0;
  for (int trial = 0; trial < kTrials; ++trial) {
    const std::string out = s.path("trial" + std::to_string(trial));
    const pid_t pid =
        clitest::spawn(clitest::words(args + "--out " + out), s.path("t.out"), s.path("t.err"), kSlowSaves);
    ASSERT_GT(pid, 0);
    const bool anywhere = trial % 5 == 3;
    const double fraction = anywhere ? gen.uniform(0.05, 1.0) : gen.uniform(0.0, 1.0);
    double wait_ms = fraction * length_ms;
    if (!anywhere) {
      if (wait_for_first_checkpoint(pid, out) < 0)
        wait_ms = 0;  // it ended (or failed) first: checked below
      else
        wait_ms = fraction * tail_ms;
    }
    std::this_thread::sleep_for(std::chrono::duration<double, std::milli>(wait_ms));
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) {
      ++killed;
    } else {  // it finished first: the straight run was timed on a busier machine; draw from a shorter span
      ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
          << "trial " << trial << ": " << clitest::slurp(s.path("t.err"));
      if (anywhere)
        length_ms = std::min(length_ms, wait_ms);
      else
        tail_ms = std::max(std::min(tail_ms, wait_ms), 1.0);
    }

    const fs::path dir = fs::path(out) / "checkpoints";
    const bool mid_save = !files_matching(dir, ".tmp-").empty() || !files_matching(out, ".tmp-").empty();
    during_save += mid_save;
    // Every complete checkpoint validates (checksum, shapes, metadata); `latest` names one of them.
    for (const fs::path& f : files_matching(dir, ".safetensors")) {
      if (f.filename().string().find(".tmp-") != std::string::npos) continue;
      EXPECT_NO_THROW(bp::io::load_checkpoint(f.string())) << "trial " << trial << ": " << f;
    }
    if (!fs::exists(dir / "latest")) {
      ++no_checkpoint_yet;
      continue;
    }
    std::string newest;
    ASSERT_NO_THROW(newest = bp::io::resolve_checkpoint(out)) << "trial " << trial;
    EXPECT_EQ(newest.find(".tmp-"), std::string::npos) << "trial " << trial;
    bp::io::Checkpoint ck;
    ASSERT_NO_THROW(ck = bp::io::load_checkpoint(newest)) << "trial " << trial;
    EXPECT_EQ(ck.trainer.step, ck.trainer.epoch * 9) << "trial " << trial;

    // Every fifth trial, and the first eight killed inside a save, continue and must match the straight run.
    if (trial % 5 != 0 && !(mid_save && resumed_after_save_kill < 8)) continue;
    resumed_after_save_kill += mid_save;
    const auto r = clitest::run(s, "train --quiet --resume " + out);
    ASSERT_EQ(r.code, 0) << "trial " << trial << ": " << r.err;
    EXPECT_TRUE(clitest::same_tensors(s.path("straight/model.safetensors"), out + "/model.safetensors"))
        << "trial " << trial;
    EXPECT_EQ(bp::io::read_metrics(out + "/metrics.jsonl").epochs.size(), 8u) << "trial " << trial;
    EXPECT_TRUE(files_matching(dir, ".tmp-").empty()) << "trial " << trial << ": stale temporaries kept";
    ++resumed;
    fs::remove_all(out);
  }
  std::printf(
      "[ kill test ] %d trials over a %.0f ms run (as last drawn): %d killed, %d inside a save, %d before "
      "the first checkpoint, %d resumed to identical weights (%d of them killed inside a save)\n",
      kTrials, length_ms, killed, during_save, no_checkpoint_yet, resumed, resumed_after_save_kill);
  EXPECT_GE(killed, kTrials * 8 / 10);
  EXPECT_GE(during_save, 5) << "too few kills landed inside a save to test it";
  EXPECT_GE(resumed, 10);
  EXPECT_GE(resumed_after_save_kill, 3);
}
