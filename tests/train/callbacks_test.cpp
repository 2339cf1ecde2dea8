// The library's callbacks on a small run: ModelCheckpoint (every N epochs, after the last, the best model, the
// exact point of an interruption), MetricsLog (one record per epoch, the same numbers as the History) and
// ProgressBar (one line per epoch off a terminal).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <backprop/backprop.hpp>
#include <backprop/train/callbacks.hpp>
#include <cstdio>
#include <filesystem>

namespace bp = backprop;
namespace fs = std::filesystem;
using ::testing::HasSubstr;

namespace {

struct Folder {
  fs::path dir = fs::temp_directory_path() / ("bp_callbacks_" + std::to_string(::getpid()) + "_" +
                                              std::to_string(reinterpret_cast<std::uintptr_t>(this)));
  Folder() { fs::create_directories(dir); }
  ~Folder() { fs::remove_all(dir); }
  std::string path(const std::string& name) const { return (dir / name).string(); }
};

bp::data::TensorDataset points(std::int64_t n, std::uint64_t seed) {
  bp::Generator gen(seed);
  bp::data::TensorDataset d;
  d.features = bp::randn({n, 3}, gen);
  std::vector<double> y(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) y[static_cast<std::size_t>(i)] = d.features.at({i, 0}) > 0 ? 1 : 0;
  d.targets = bp::from_vector(y);
  d.task = bp::data::Task::classification;
  d.num_classes = 2;
  return d;
}

/// Sets the flag after update `at`.
struct StopAt : bp::train::Callback {
  std::atomic<bool>& flag;
  std::int64_t at;
  StopAt(std::atomic<bool>& f, std::int64_t a) : flag(f), at(a) {}
  void on_batch_end(const bp::train::StepInfo& info) override {
    if (info.step == at) flag = true;
  }
};

}  // namespace

TEST(Callbacks, CheckpointsMetricsAndProgressOfARun) {
  Folder f;
  const auto train = points(64, 1), val = points(32, 2);
  bp::io::ModelFile description{.architecture = {.inputs = 3, .hidden = {8}, .outputs = 2}};
  bp::Generator gen(3);
  auto net = bp::io::build_network(description.architecture, gen);
  bp::optim::SGD opt(net->parameters(), {.lr = 0.1});
  const bp::loss::CrossEntropy loss;
  bp::io::MetricsWriter writer(f.path("metrics.jsonl"));
  bp::train::MetricsLog metrics(writer);
  bp::train::ModelCheckpoint checkpoints(f.path("checkpoints"), description,
                                         {.every = 2, .keep = 0, .best_model = f.path("best.safetensors")});
  std::FILE* out = std::tmpfile();
  bp::train::ProgressBar progress(out, false);
  const auto h = bp::train::fit(
      *net, loss, opt, train,
      {.epochs = 5, .batch_size = 16, .validation = &val, .callbacks = {&metrics, &checkpoints, &progress}});
  // Epochs 2 and 4, and the last one.
  EXPECT_EQ(checkpoints.written(), 3);
  for (const char* name : {"epoch-0002.safetensors", "epoch-0004.safetensors", "epoch-0005.safetensors"})
    EXPECT_TRUE(fs::exists(f.dir / "checkpoints" / name)) << name;
  const bp::io::Checkpoint last = bp::io::load_checkpoint(bp::io::resolve_checkpoint(f.path("checkpoints")));
  EXPECT_EQ(last.trainer.epoch, 5);
  EXPECT_EQ(last.trainer.step, 20);
  EXPECT_EQ(last.trainer.early_stopping.best_epoch, h.best_epoch);
  for (const auto& [name, t] : net->state_dict())
    EXPECT_EQ(bp::max_abs_diff(last.trainer.model.at(name), t), 0.0);
  // The best model is the best epoch's: its validation loss is the History's lowest.
  auto best = bp::io::load_network(bp::io::load_model(f.path("best.safetensors")));
  double lowest = h.epochs[0].val_loss;
  for (const auto& m : h.epochs) lowest = std::min(lowest, m.val_loss);
  EXPECT_NEAR(bp::train::evaluate(*best, loss, val).loss, lowest, 1e-6);
  // The log holds the History's numbers.
  const bp::io::Metrics log = bp::io::read_metrics(f.path("metrics.jsonl"));
  ASSERT_EQ(log.epochs.size(), 5u);
  for (std::size_t e = 0; e < 5; ++e) EXPECT_EQ(log.epochs[e].val_loss, h.epochs[e].val_loss);
  // Off a terminal: one line per epoch.
  std::rewind(out);
  std::string text(4096, '\0');
  text.resize(std::fread(text.data(), 1, text.size(), out));
  std::fclose(out);
  EXPECT_EQ(std::count(text.begin(), text.end(), '\n'), 5);
  EXPECT_THAT(text, HasSubstr("epoch   5/5  loss "));
}

TEST(Callbacks, AnInterruptedRunIsCheckpointedAtTheExactUpdate) {
  Folder f;
  const auto train = points(64, 1);
  bp::io::ModelFile description{.architecture = {.inputs = 3, .hidden = {8}, .outputs = 2}};
  bp::Generator gen(3);
  auto net = bp::io::build_network(description.architecture, gen);
  bp::optim::SGD opt(net->parameters(), {.lr = 0.1});
  const bp::loss::CrossEntropy loss;
  bp::train::ModelCheckpoint checkpoints(f.path("checkpoints"), description, {.every = 0});
  std::atomic<bool> flag{false};
  StopAt stopper(flag, 6);
  const auto h =
      bp::train::fit(*net, loss, opt, train,
                     {.epochs = 5, .batch_size = 16, .callbacks = {&stopper, &checkpoints}, .stop = &flag});
  ASSERT_TRUE(h.interrupted);
  EXPECT_EQ(checkpoints.written(), 1);
  EXPECT_EQ(fs::path(checkpoints.last_path()).filename(), "epoch-0001-step-00000006.safetensors");
  const bp::io::Checkpoint c = bp::io::load_checkpoint(checkpoints.last_path());
  EXPECT_EQ(c.trainer.partial.batches, 2);
  EXPECT_EQ(c.trainer.partial.seen, 32);
  EXPECT_THAT([] { bp::train::ModelCheckpoint("x", {}, {.every = -1}); },
              testing::ThrowsMessage<bp::ValueError>(HasSubstr("every must be >= 0, got -1")));
}
