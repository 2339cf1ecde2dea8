// Mid-epoch checkpoints (an interrupted run): the partial epoch's sums and the early-stopping count come back
// bit for bit, checkpoints written before those fields existed still load, damaged fields are named, and the
// pruning of old checkpoints orders mid-epoch files between the epochs they sit between.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/io/checkpoint.hpp>
#include <backprop/io/metrics.hpp>
#include <nlohmann/json.hpp>

#include "cli_test_util.hpp"

namespace bp = backprop;
namespace fs = std::filesystem;
using ::testing::HasSubstr;

namespace {

bp::io::Checkpoint tiny_checkpoint() {
  bp::Generator gen(3);
  bp::io::Checkpoint c;
  c.model.architecture = {.inputs = 2, .hidden = {3}, .outputs = 2, .activation = "relu"};
  c.model.preprocessing.task = "classification";
  c.model.preprocessing.input = "table";
  c.model.preprocessing.class_names = {"a", "b"};
  c.trainer.model = bp::io::build_network(c.model.architecture, gen)->state_dict();
  return c;
}

// Rewrites the "checkpoint" metadata of a file through `edit` (the checksum is recomputed by the writer).
void edit_metadata(const std::string& path, const std::function<void(nlohmann::json&)>& edit) {
  bp::io::NamedTensors file = bp::io::load_safetensors(path);
  nlohmann::json meta = nlohmann::json::parse(file.metadata.at("checkpoint"));
  edit(meta);
  file.metadata["checkpoint"] = meta.dump();
  file.metadata.erase(bp::io::kChecksumKey);
  bp::io::save_safetensors(path, file);
}

std::string file_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const bp::FileError& e) {
    return e.what();
  }
  return "no FileError";
}

}  // namespace

TEST(MidEpochCheckpoint, PartialEpochAndEarlyStoppingRoundTripBitForBit) {
  clitest::Scratch s;
  bp::io::Checkpoint c = tiny_checkpoint();
  c.trainer.epoch = 4;
  c.trainer.step = 4 * 50 + 17;
  c.trainer.early_stopping.best_val_loss = 0.3;
  c.trainer.early_stopping.best_epoch = 2;
  c.trainer.early_stopping.since_best = 2;
  c.trainer.partial = {.batches = 17,
                       .loss_sum = 0.1 + 0.2,
                       .correct = 1.0 / 3.0,
                       .seen = 170,
                       .updates = 17,
                       .seconds = 1e-3 / 7};
  const std::string path = bp::io::write_checkpoint(s.path("ck"), c);
  EXPECT_EQ(fs::path(path).filename(), "epoch-0004-step-00000217.safetensors");
  EXPECT_EQ(clitest::slurp(s.path("ck/latest")), "epoch-0004-step-00000217.safetensors\n");
  const bp::io::Checkpoint back = bp::io::load_checkpoint(bp::io::resolve_checkpoint(s.path("ck")));
  EXPECT_EQ(back.trainer.early_stopping.since_best, 2);
  EXPECT_EQ(back.trainer.partial.batches, 17);
  EXPECT_EQ(back.trainer.partial.loss_sum, 0.1 + 0.2);  // exactly: stored as the bits of the double
  EXPECT_EQ(back.trainer.partial.correct, 1.0 / 3.0);
  EXPECT_EQ(back.trainer.partial.seen, 170);
  EXPECT_EQ(back.trainer.partial.updates, 17);
  EXPECT_EQ(back.trainer.partial.seconds, 1e-3 / 7);
}

TEST(MidEpochCheckpoint, OldCheckpointsWithoutTheNewFieldsLoadAtAnEpochBoundary) {
  clitest::Scratch s;
  bp::io::Checkpoint c = tiny_checkpoint();
  c.trainer.epoch = 3;
  c.trainer.early_stopping.since_best = 1;
  const std::string path = bp::io::write_checkpoint(s.path("ck"), c);
  edit_metadata(path, [](nlohmann::json& m) { m.erase("since_best"); });
  const bp::io::Checkpoint back = bp::io::load_checkpoint(path);
  EXPECT_EQ(back.trainer.epoch, 3);
  EXPECT_EQ(back.trainer.early_stopping.since_best, 0);
  EXPECT_EQ(back.trainer.partial.batches, 0);
}

TEST(MidEpochCheckpoint, DamagedPartialFieldsAreNamed) {
  clitest::Scratch s;
  bp::io::Checkpoint c = tiny_checkpoint();
  c.trainer.partial = {.batches = 2, .loss_sum = 1.5, .correct = 3, .seen = 20, .updates = 2, .seconds = 0.5};
  const std::string path = bp::io::write_checkpoint(s.path("ck"), c);
  edit_metadata(path, [](nlohmann::json& m) { m["partial"]["seen"] = -4; });
  EXPECT_THAT(file_error([&] { bp::io::load_checkpoint(path); }),
              HasSubstr("checkpoint field \"partial.seen\" must be an integer >= 0, got -4"));
  edit_metadata(path, [](nlohmann::json& m) {
    m["partial"]["seen"] = 20;
    m["partial"]["loss_sum"] = 1.5;  // a number where the bits of a double are expected
  });
  EXPECT_THAT(file_error([&] { bp::io::load_checkpoint(path); }), HasSubstr("partial.loss_sum"));
  edit_metadata(path, [](nlohmann::json& m) { m["partial"] = "half"; });
  EXPECT_THAT(file_error([&] { bp::io::load_checkpoint(path); }),
              HasSubstr("checkpoint field \"partial\" must be an object"));
}

TEST(MidEpochCheckpoint, PruningOrdersMidEpochFilesBetweenTheirEpochs) {
  clitest::Scratch s;
  bp::io::Checkpoint c = tiny_checkpoint();
  c.trainer.epoch = 1;
  bp::io::write_checkpoint(s.path("ck"), c, 2);
  c.trainer.epoch = 2;
  bp::io::write_checkpoint(s.path("ck"), c, 2);
  c.trainer.step = 25;
  c.trainer.partial = {.batches = 5, .seen = 50, .updates = 5};
  bp::io::write_checkpoint(s.path("ck"), c, 2);  // within epoch 3: newer than epoch 2, older than epoch 3
  EXPECT_FALSE(fs::exists(s.path("ck/epoch-0001.safetensors")));
  EXPECT_TRUE(fs::exists(s.path("ck/epoch-0002.safetensors")));
  c.trainer.epoch = 3;
  c.trainer.step = 30;
  c.trainer.partial = {};
  bp::io::write_checkpoint(s.path("ck"), c, 2);
  EXPECT_FALSE(fs::exists(s.path("ck/epoch-0002.safetensors")));
  EXPECT_TRUE(fs::exists(s.path("ck/epoch-0002-step-00000025.safetensors")));
  EXPECT_EQ(bp::io::resolve_checkpoint(s.path("ck")), s.path("ck/epoch-0003.safetensors"));
}

TEST(MidEpochCheckpoint, EarlyStoppingAcrossAResumeRestoresTheBestEpochSavedBeforeIt) {
  clitest::Scratch s;
  // Noisy classes and a large network: the validation loss turns up after a few epochs.
  bp::Generator gen(7);
  std::string csv = "a,b,c,d,y\n";
  for (int i = 0; i < 300; ++i) {
    const int c = i % 3;
    csv += std::to_string(c + 2 * gen.normal()) + "," + std::to_string(2 * c + 4 * gen.normal()) + "," +
           std::to_string(gen.normal()) + "," + std::to_string(gen.normal()) + ",k" + std::to_string(c) +
           "\n";
  }
  clitest::write(s.path("noisy.csv"), csv);
  const std::string args =
      "train --data " + s.path("noisy.csv") +
      " --layers 64,64 --dropout 0 --batch-size 10 --optimizer adam --lr 0.01 --schedule none "
      "--threads 1 --seed 5 --grad-flow 0 --early-stopping 3 --val-split 0.3 --quiet ";
  ASSERT_EQ(clitest::run(s, args + "--epochs 60 --out " + s.path("straight")).code, 0);
  const auto straight = nlohmann::json::parse(clitest::slurp(s.path("straight/summary.json")));
  ASSERT_EQ(straight["status"], "stopped_early");
  const int stop = straight["epochs_run"], best = straight["best_epoch"];
  ASSERT_LT(best, stop - 1);  // the best epoch lies before the point where the split run is resumed
  // The same run cut one epoch before it stops, then resumed: the best weights come from the checkpoint.
  ASSERT_EQ(clitest::run(s, args + "--epochs " + std::to_string(stop - 1) + " --checkpoint-every 1 --out " +
                                s.path("split"))
                .code,
            0);
  const bp::io::Checkpoint ck = bp::io::load_checkpoint(bp::io::resolve_checkpoint(s.path("split")));
  EXPECT_EQ(ck.trainer.early_stopping.best_epoch, best);
  EXPECT_FALSE(ck.trainer.best_state.empty());
  const auto r = clitest::run(s, "train --quiet --resume " + s.path("split") + " --epochs 60");
  ASSERT_EQ(r.code, 0) << r.err;
  const auto resumed = nlohmann::json::parse(clitest::slurp(s.path("split/summary.json")));
  EXPECT_EQ(resumed["status"], "stopped_early");
  EXPECT_EQ(resumed["best_epoch"], best);
  EXPECT_TRUE(clitest::same_tensors(s.path("straight/model.safetensors"), s.path("split/model.safetensors")));
}

// A run folder written by the first checkpoint format (before the Trainer): tests/cli/data/checkpoint_v1 holds
// the training table and the run after 2 of its epochs (dropout, early stopping, no schedule). Resumed to 6
// epochs it must end where a straight 6-epoch run ends: to rounding, because the fixture was written by a build
// with other instructions (-march=native); within one build a resume is bit-identical (Resume.*, KillTest).
TEST(CheckpointCompat, ACheckpointOfTheFirstFormatResumesToTheStraightRun) {
  clitest::Scratch s;
  fs::copy(std::string(BACKPROP_SOURCE_DIR) + "/tests/cli/data/checkpoint_v1", s.dir(),
           fs::copy_options::recursive);
  // The run's config names its data as train.csv, relative to where it was started.
  const auto in_scratch = [&](const std::string& args) {
    return clitest::run_shell(
        s, "cd " + clitest::quote(s.dir().string()) + " && " + clitest::quote(clitest::kCli) + " " + args);
  };
  const bp::io::Checkpoint old = bp::io::load_checkpoint(s.path("run/checkpoints/epoch-0002.safetensors"));
  EXPECT_EQ(old.trainer.epoch, 2);
  EXPECT_EQ(old.trainer.generators.size(), 2u);  // two Dropout layers
  const auto resumed_run = in_scratch("train --quiet --resume run --epochs 6");
  ASSERT_EQ(resumed_run.code, 0) << resumed_run.err;
  const auto straight_run = in_scratch(
      "train --quiet --data train.csv --target species --layers 16,8 --dropout 0.2 --val-split 0.2 "
      "--early-stopping 3 --epochs 6 --batch-size 16 --seed 3 --schedule none --out straight");
  ASSERT_EQ(straight_run.code, 0) << straight_run.err;
  const bp::io::ModelFile resumed_model = bp::io::load_model(s.path("run/model.safetensors"));
  const bp::io::ModelFile straight_model = bp::io::load_model(s.path("straight/model.safetensors"));
  ASSERT_EQ(resumed_model.state.size(), straight_model.state.size());
  for (const auto& [name, t] : straight_model.state)
    EXPECT_LT(bp::max_abs_diff(resumed_model.state.at(name), t), 1e-6) << name;
  const bp::io::Metrics resumed = bp::io::read_metrics(s.path("run/metrics.jsonl"));
  const bp::io::Metrics straight = bp::io::read_metrics(s.path("straight/metrics.jsonl"));
  ASSERT_EQ(resumed.epochs.size(), 6u);
  ASSERT_EQ(straight.epochs.size(), 6u);
  for (std::size_t e = 0; e < resumed.epochs.size(); ++e)
    EXPECT_NEAR(resumed.epochs[e].val_loss, straight.epochs[e].val_loss, 1e-6) << "epoch " << e + 1;
}
