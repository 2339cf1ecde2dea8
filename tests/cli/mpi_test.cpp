// `mpirun -np 2 backprop train`: the same flags as one process give the same model (up to the order of
// floating-point sums), rank 0 alone writes the run folder, a 2-rank run resumes on 1 rank, --sync-batchnorm
// gives one process's batch statistics (BatchNorm1d of an MLP, BatchNorm2d of a CNN), and an error ends the
// job with the message and the exit code.
// Skipped when the tool was built without MPI.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spawn.h>

#include <algorithm>
#include <backprop/io.hpp>
#include <backprop/io/checkpoint.hpp>
#include <backprop/io/metrics.hpp>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>

#include "cli_test_util.hpp"
#include "util/require.hpp"

using clitest::Scratch;
using ::testing::HasSubstr;
namespace bp = backprop;
namespace fs = std::filesystem;

namespace {

#ifdef BACKPROP_MPIEXEC
const std::string kMpirun = std::string(BACKPROP_MPIEXEC) + " --allow-run-as-root --oversubscribe -np ";
#else
const std::string kMpirun;
#endif

// `mpirun -np K backprop ARGS`, captured like clitest::run. OMP_NUM_THREADS=1: two ranks share two cores.
clitest::Result mpirun(const Scratch& s, int ranks, const std::string& args) {
  return clitest::run_shell(s, "OMP_NUM_THREADS=1 " + kMpirun + std::to_string(ranks) + " " +
                                   clitest::quote(clitest::kCli) + " " + args);
}

// Largest |a - b| / max(max |b|, 1) over the tensors of two model files (same names and shapes required).
// The floor keeps tensors that are zero up to rounding (the bias of a Linear before batch norm, whose
// gradient is zero in exact arithmetic) from turning float32 rounding noise into a large relative error.
double relative_difference(const std::string& a, const std::string& b) {
  const bp::io::NamedTensors x = bp::io::load_safetensors(a), y = bp::io::load_safetensors(b);
  EXPECT_EQ(x.tensors.size(), y.tensors.size());
  double worst = 0;
  for (const auto& [name, t] : x.tensors) {
    if (!y.contains(name)) {
      ADD_FAILURE() << b << " lacks " << name;
      return INFINITY;
    }
    const std::vector<double> u = t.to_vector(), v = y.at(name).to_vector();
    EXPECT_EQ(u.size(), v.size()) << name;
    double diff = 0, scale = 0;
    for (std::size_t i = 0; i < std::min(u.size(), v.size()); ++i) {
      diff = std::max(diff, std::abs(u[i] - v[i]));
      scale = std::max(scale, std::abs(v[i]));
    }
    worst = std::max(worst, diff / std::max(scale, 1.0));
  }
  return worst;
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (std::size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// 150 rows of three classes (135 train after the validation split), a small network, momentum; batches of
// 20 leave a last batch of 15 rows, split 7 / 8 over two ranks.
std::string recipe(const Scratch& s) {
  clitest::write(s.path("blobs.csv"), clitest::blobs_csv(11, 50));
  clitest::write(s.path("test.csv"), clitest::blobs_csv(12, 20));
  return "train --data " + s.path("blobs.csv") + " --test-data " + s.path("test.csv") +
         " --layers 16,8 --dropout 0 --batch-size 20 --optimizer momentum --lr 0.05 --schedule none "
         "--threads 1 --seed 5 --grad-flow 0 ";
}

// Starts `mpirun -np K backprop ARGS` without waiting (through sh -c "exec ...", so the pid is mpirun's).
pid_t spawn_mpirun(const Scratch& s, int ranks, const std::string& args) {
  const std::string cmd = "OMP_NUM_THREADS=1 exec " + kMpirun + std::to_string(ranks) + " " +
                          clitest::quote(clitest::kCli) + " " + args + " >" +
                          clitest::quote(s.path("spawned.out")) + " 2>" +
                          clitest::quote(s.path("spawned.err")) + " </dev/null";
  std::string sh = "/bin/sh", c = "-c", line = cmd;
  char* argv[] = {sh.data(), c.data(), line.data(), nullptr};
  pid_t pid = -1;
  return posix_spawn(&pid, "/bin/sh", nullptr, nullptr, argv, ::environ) == 0 ? pid : -1;
}

#define SKIP_WITHOUT_MPI() \
  if (kMpirun.empty()) GTEST_SKIP() << "backprop was built without MPI (no backprop::dist)"

}  // namespace

TEST(MpiCli, TwoRanksTrainTheModelOfOneProcessAndOnlyRankZeroWrites) {
  SKIP_WITHOUT_MPI();
  Scratch s;
  const std::string args = recipe(s) + "--epochs 3 ";
  const auto one = clitest::run(s, args + "--out " + s.path("one"));
  ASSERT_EQ(one.code, 0) << one.err;
  const auto two = mpirun(s, 2, args + "--out " + s.path("two"));
  ASSERT_EQ(two.code, 0) << two.err;
  EXPECT_LE(relative_difference(s.path("two/model.safetensors"), s.path("one/model.safetensors")), 1e-5);
  // One printer: the banner and the final summary appear once.
  EXPECT_EQ(count(two.err, "training 4-16-8-3"), 1u) << two.err;
  EXPECT_THAT(two.err, HasSubstr("data parallel over 2 ranks: global batch 20"));
  EXPECT_EQ(count(two.out, "trained 3 epochs"), 1u) << two.out;
  // One writer: the metrics log holds each epoch once, and the folder holds what one process writes.
  const bp::io::Metrics m = bp::io::read_metrics(s.path("two/metrics.jsonl"));
  ASSERT_EQ(m.epochs.size(), 3u);
  EXPECT_EQ(m.epochs.back().epoch, 3);
  EXPECT_EQ(count(clitest::slurp(s.path("two/metrics.jsonl")), "\"type\":\"test\""), 1u);
  std::vector<std::string> a, b;
  for (const auto& e : fs::directory_iterator(s.path("one"))) a.push_back(e.path().filename().string());
  for (const auto& e : fs::directory_iterator(s.path("two"))) b.push_back(e.path().filename().string());
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  EXPECT_EQ(a, b);
  // The test metrics are global (dist::evaluate): the same examples as one process, nearly the same loss.
  const bp::io::Metrics m1 = bp::io::read_metrics(s.path("one/metrics.jsonl"));
  ASSERT_TRUE(m.test.has_value() && m1.test.has_value());
  EXPECT_EQ(m.test->examples, m1.test->examples);
  EXPECT_NEAR(m.test->loss, m1.test->loss, 1e-4 * std::abs(m1.test->loss) + 1e-6);
  EXPECT_NEAR(m.epochs.back().train_loss, m1.epochs.back().train_loss, 1e-5);
}

TEST(MpiCli, ATwoRankRunResumesOnOneProcess) {
  SKIP_WITHOUT_MPI();
  Scratch s;
  const std::string args = recipe(s);
  ASSERT_EQ(clitest::run(s, args + "--epochs 4 --out " + s.path("straight")).code, 0);
  const auto two = mpirun(s, 2, args + "--epochs 2 --checkpoint-every 1 --out " + s.path("split"));
  ASSERT_EQ(two.code, 0) << two.err;
  ASSERT_TRUE(fs::exists(s.path("split/checkpoints/epoch-0002.safetensors")));
  const auto rest = clitest::run(s, "train --quiet --resume " + s.path("split") + " --epochs 4");
  ASSERT_EQ(rest.code, 0) << rest.err;
  EXPECT_LE(relative_difference(s.path("split/model.safetensors"), s.path("straight/model.safetensors")),
            1e-5);
  EXPECT_EQ(bp::io::read_metrics(s.path("split/metrics.jsonl")).epochs.size(), 4u);
}

TEST(MpiCli, SyncBatchNormGivesTheStatisticsOfOneProcessAndLocalOnesDoNot) {
  SKIP_WITHOUT_MPI();
  Scratch s;
  const std::string args = recipe(s) + "--epochs 2 --batchnorm ";
  ASSERT_EQ(clitest::run(s, args + "--out " + s.path("one")).code, 0);
  const auto sync = mpirun(s, 2, args + "--sync-batchnorm --out " + s.path("sync"));
  ASSERT_EQ(sync.code, 0) << sync.err;
  EXPECT_THAT(sync.err, HasSubstr("synchronised batch norm"));
  const double sync_err =
      relative_difference(s.path("sync/model.safetensors"), s.path("one/model.safetensors"));
  std::printf("[ measured ] MLP, 2 ranks vs 1 process: sync batch norm %.3g\n", sync_err);
  EXPECT_LE(sync_err, 1e-5);
  const auto local = mpirun(s, 2, args + "--out " + s.path("local"));
  ASSERT_EQ(local.code, 0) << local.err;
  EXPECT_GT(relative_difference(s.path("local/model.safetensors"), s.path("one/model.safetensors")), 1e-4);
  // In one process the flag changes nothing: its batch is the global batch.
  ASSERT_EQ(clitest::run(s, args + "--sync-batchnorm --out " + s.path("one_sync")).code, 0);
  EXPECT_TRUE(clitest::same_tensors(s.path("one_sync/model.safetensors"), s.path("one/model.safetensors")));
}

TEST(MpiCli, ErrorsEndTheJobWithTheMessageAndTheExitCode) {
  SKIP_WITHOUT_MPI();
  Scratch s;
  // A bad value: every rank raises it; the job ends with exit code 2 and rank 0's message.
  const auto bad = mpirun(s, 2, recipe(s) + "--lr -1 --out " + s.path("bad"));
  EXPECT_EQ(bad.code, 2);
  EXPECT_THAT(bad.err, HasSubstr("backprop train: error: --lr"));
  // A file that does not exist: exit code 3.
  const auto missing = mpirun(s, 2, "train --data " + s.path("none.csv") + " --out " + s.path("m"));
  EXPECT_EQ(missing.code, 3);
  EXPECT_THAT(missing.err, HasSubstr("none.csv"));
  // A global batch that leaves a rank without rows is refused before training.
  const auto tiny = mpirun(s, 2, recipe(s) + "--batch-size 1 --out " + s.path("t"));
  EXPECT_EQ(tiny.code, 2);
  EXPECT_THAT(tiny.err, HasSubstr("is the global batch, split over 2 ranks"));
  // An error on rank 1 alone (its data file is missing) while rank 0 already waits in dist::fit's first
  // collective: rank 1 reports it, prefixed, and ends the job; nothing hangs. (MPMD launch: one command line
  // per rank.)
  const std::string good = recipe(s) + "--epochs 2 --out " + s.path("mpmd");
  const auto alone = mpirun(s, 1,
                            good + " : -np 1 " + clitest::quote(clitest::kCli) + " " +
                                std::regex_replace(good, std::regex("blobs\\.csv"), "missing.csv"));
  EXPECT_EQ(alone.code, 3);
  EXPECT_THAT(alone.err, HasSubstr("backprop train: rank 1: error: --data"));
  EXPECT_THAT(alone.err, HasSubstr("missing.csv"));
}

TEST(MpiCli, SigtermToMpirunStopsEveryRankAtTheSameUpdateAndTheRunResumes) {
  SKIP_WITHOUT_MPI();
  Scratch s;
  clitest::write(s.path("blobs.csv"), clitest::blobs_csv(31, 400));  // 1080 training rows, 108 batches
  // The step schedule does not depend on the number of epochs, so a run may be resumed with fewer epochs than
  // it was started with: the stopped run asks for far more than it can reach before the signal, whatever the
  // speed of the machine (OpenMPI 4.1 forwards SIGTERM about a second after mpirun receives it).
  const std::string recipe_args =
      "train --data " + s.path("blobs.csv") +
      " --layers 32,16 --dropout 0 --batch-size 10 --optimizer momentum --lr 0.02 "
      "--schedule step:1:0.9 --threads 1 --seed 3 --grad-flow 7 --quiet ";
  const pid_t pid = spawn_mpirun(s, 2, recipe_args + "--epochs 1000000 --out " + s.path("stopped"));
  ASSERT_GT(pid, 0);
  // Wait for two finished epochs, then signal mpirun, which forwards SIGTERM to every rank.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  int status = 0;
  bool exited = false;
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid, &status, WNOHANG) == pid) {
      exited = true;
      break;
    }
    if (count(clitest::slurp(s.path("stopped/metrics.jsonl")), "\"type\":\"epoch\"") >= 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_FALSE(exited) << "the run ended before the signal: " << clitest::slurp(s.path("spawned.err"));
  kill(pid, SIGTERM);
  waitpid(pid, &status, 0);
  const std::string err = clitest::slurp(s.path("spawned.err"));
  EXPECT_EQ(count(err, "interrupted by SIGTERM at epoch"), 1u)
      << "status " << status << ": " << err;  // rank 0 alone reports and saves
  const bp::io::Checkpoint ck = bp::io::load_checkpoint(bp::io::resolve_checkpoint(s.path("stopped")));
  EXPECT_EQ(ck.trainer.epoch * 108 + ck.trainer.partial.batches, ck.trainer.step);
  // Resumed on 2 ranks up to two epochs past the interrupted one: bit-identical to an uninterrupted 2-rank
  // run of that many epochs (same reduction order).
  const std::string epochs = std::to_string(ck.trainer.epoch + 2);
  ASSERT_EQ(mpirun(s, 2, recipe_args + "--epochs " + epochs + " --out " + s.path("straight")).code, 0);
  const auto r = mpirun(s, 2, "train --quiet --resume " + s.path("stopped") + " --epochs " + epochs);
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_TRUE(
      clitest::same_tensors(s.path("straight/model.safetensors"), s.path("stopped/model.safetensors")));
  EXPECT_EQ(bp::io::read_metrics(s.path("stopped/metrics.jsonl")).epochs.size(), ck.trainer.epoch + 2);
}

// A small CNN as layer tables, without dropout (each rank draws its own masks, so dropout alone would make two
// ranks differ from one process).
namespace {
const char* const kSmallCnn = R"([[model.layer]]
type = "conv2d"
out = 6
kernel = 3
padding = 1
bias = false
[[model.layer]]
type = "batchnorm"
[[model.layer]]
type = "relu"
[[model.layer]]
type = "maxpool2d"
kernel = 2
[[model.layer]]
type = "flatten"
[[model.layer]]
type = "dense"
)";
}  // namespace

TEST(MpiCli, CnnWithSyncBatchNormOnTwoRanksGivesTheModelOfOneProcess) {
  SKIP_WITHOUT_MPI();
  REQUIRE_INSTALLED(clitest::have_fashion(), "dataset-fashion-mnist", "Fashion-MNIST");
  Scratch s;
  clitest::write(s.path("cnn.toml"), kSmallCnn);
  // 300 images (270 train after the validation split), 2 epochs of global batches of 40: 14 updates; the last
  // batch of 30 splits 15 / 15.
  const std::string args =
      "train --config " + s.path("cnn.toml") +
      " --limit-train 300 --limit-test 100 --epochs 2 --batch-size 40 --optimizer momentum "
      "--lr 0.05 --schedule none --threads 1 --seed 5 --grad-flow 0 --quiet ";
  ASSERT_EQ(clitest::run(s, args + "--out " + s.path("one")).code, 0);
  const auto sync = mpirun(s, 2, args + "--sync-batchnorm --out " + s.path("sync"));
  ASSERT_EQ(sync.code, 0) << sync.err;
  const auto local = mpirun(s, 2, args + "--out " + s.path("local"));
  ASSERT_EQ(local.code, 0) << local.err;
  // float32 sums in another order (per-rank partial sums, then the all-reduce): ~1e-7 relative per sum,
  // grown over 14 momentum steps through batch statistics of 15-20 images per rank; measured 5.7e-6, so the
  // bound is 1e-4, while per-rank statistics give a different function (measured 0.36).
  const double sync_err =
      relative_difference(s.path("sync/model.safetensors"), s.path("one/model.safetensors"));
  const double local_err =
      relative_difference(s.path("local/model.safetensors"), s.path("one/model.safetensors"));
  std::printf("[ measured ] CNN, 2 ranks vs 1 process: sync batch norm %.3g, local statistics %.3g\n",
              sync_err, local_err);
  EXPECT_LE(sync_err, 1e-4);
  EXPECT_GT(local_err, 1e-2);  // each rank normalised by its own 20 images' statistics
  // The model file holds plain BatchNorm2d layers: eval and info read it without MPI, and eval reproduces the
  // run's test accuracy.
  const auto info = clitest::run(s, "info " + s.path("sync/model.safetensors"));
  ASSERT_EQ(info.code, 0) << info.err;
  EXPECT_THAT(info.out, HasSubstr("(2) BatchNorm2d(6, "));
  EXPECT_THAT(info.out, ::testing::Not(HasSubstr("SyncBatchNorm2d(")));
  const auto e = clitest::run(
      s, "eval --model " + s.path("sync/model.safetensors") + " --data fashion-mnist --limit 100 --json");
  ASSERT_EQ(e.code, 0) << e.all();
  const auto summary = nlohmann::json::parse(clitest::slurp(s.path("sync/summary.json")));
  EXPECT_DOUBLE_EQ(nlohmann::json::parse(e.out)["accuracy"].get<double>(),
                   summary["test"]["accuracy"].get<double>());
}

TEST(MpiCli, ArchCnnWithSyncBatchNormRunsEndToEndAndEvalReadsTheModel) {
  SKIP_WITHOUT_MPI();
  REQUIRE_INSTALLED(clitest::have_fashion(), "dataset-fashion-mnist", "Fashion-MNIST");
  Scratch s;
  const auto r = mpirun(s, 2,
                        "train --arch cnn --sync-batchnorm --limit-train 200 --limit-test 100 --epochs 1 "
                        "--batch-size 50 --threads 1 --seed 2 --out " +
                            s.path("run"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.err, HasSubstr("data parallel over 2 ranks: global batch 50, synchronised batch norm"));
  EXPECT_TRUE(fs::exists(s.path("run/report.html")));
  const auto e = clitest::run(
      s, "eval --model " + s.path("run/model.safetensors") + " --data fashion-mnist --limit 100");
  ASSERT_EQ(e.code, 0) << e.all();
  EXPECT_THAT(e.out, HasSubstr("accuracy"));
  // lenet5 has no batch-norm layer to synchronise: a usage error on every rank, reported once.
  const auto lenet =
      mpirun(s, 2, "train --arch lenet5 --sync-batchnorm --limit-train 100 --out " + s.path("l"));
  EXPECT_EQ(lenet.code, 2);
  EXPECT_THAT(lenet.err, HasSubstr("needs a batch-norm layer to synchronise"));
}
