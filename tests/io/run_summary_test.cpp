// io::RunSummary: summary.json's fields as a run goes, the model file's "training" text and the lines printed
// at the end of a run.
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/io/run_summary.hpp>
#include <cmath>

namespace bp = backprop;

namespace {

bool has(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

bp::io::RunSummary classifier() {
  return bp::io::RunSummary("runs/a", {.data_source = "iris.csv",
                                       .task = "classification",
                                       .train_examples = 120,
                                       .validation_examples = 15,
                                       .test_examples = 15,
                                       .network = "4-16-3",
                                       .activation = "relu",
                                       .parameters = 131,
                                       .optimizer = "adam",
                                       .lr = 0.001,
                                       .batch_size = 0,
                                       .seed = 7,
                                       .epochs_planned = 30});
}

bp::train::History two_epochs() {
  bp::train::History h;
  h.epochs.push_back({.epoch = 1, .train_loss = 0.9, .train_accuracy = 0.5});
  h.epochs.push_back(
      {.epoch = 2, .train_loss = 0.25, .train_accuracy = 0.875, .val_loss = 0.5, .val_accuracy = 0.8});
  h.epochs_done = 2;
  h.best_epoch = 2;
  h.total_updates = 2;
  h.stopped_early = true;
  return h;
}

}  // namespace

TEST(RunSummary, StartsRunningWithTheRunsDescription) {
  const std::string j = classifier().json_text();
  EXPECT_TRUE(has(j, R"("status": "running")")) << j;
  EXPECT_TRUE(has(j, R"("batch_size": "full")")) << j;
  EXPECT_TRUE(has(j, R"("source": "iris.csv")")) << j;
  EXPECT_TRUE(has(j, R"("train_examples": 120)")) << j;
  EXPECT_TRUE(has(j, R"("seed": 7)")) << j;
  EXPECT_TRUE(has(j, R"("run_dir": "runs/a")")) << j;
}

TEST(RunSummary, TextOfAFinishedClassifierRun) {
  bp::io::RunSummary s = classifier();
  s.history(two_epochs());
  bp::io::TestRecord t{.loss = 0.375,
                       .accuracy = 0.75,
                       .examples = 4,
                       .class_names = {"a", "b"},
                       .per_class_accuracy = {1.0, 0.5},
                       .confusion = {{2, 0}, {1, 1}}};
  s.test(t);
  s.finish(61);
  s.set_run_dir("runs/b");
  EXPECT_EQ(s.text(),
            "trained 2 epochs in 1:01 (stopped early)\n"
            "  train       loss 0.2500  accuracy 87.50%\n"
            "  validation  loss 0.5000  accuracy 80.00%\n"
            "  test        loss 0.3750  accuracy 75.00%  (4 examples)\n"
            "run folder runs/b: model.safetensors, metrics.jsonl, config.toml, summary.json, report.html\n");
  const std::string j = s.json_text();
  EXPECT_TRUE(has(j, R"("status": "stopped_early")")) << j;
  EXPECT_TRUE(has(j, R"("run_dir": "runs/b")")) << j;
  EXPECT_TRUE(has(j, R"("confusion": [)")) << j;
  EXPECT_TRUE(has(j, R"("val_accuracy": 0.8)")) << j;
  const std::string training = s.training_json();
  EXPECT_FALSE(has(training, "confusion")) << training;
  EXPECT_FALSE(has(training, "run_dir")) << training;
  EXPECT_TRUE(has(training, R"("per_class_accuracy":{"a":1.0,"b":0.5})")) << training;
}

TEST(RunSummary, ManyClassesKeepTheTopConfusionsOnly) {
  bp::io::RunSummary s = classifier();
  const std::size_t k = bp::io::kFullConfusionClasses + 1;
  bp::io::TestRecord t{.loss = 1, .accuracy = 0, .examples = 3};
  t.confusion.assign(k, std::vector<std::int64_t>(k, 0));
  t.confusion[3][7] = 3;
  s.test(t);
  const std::string j = s.json_text();
  EXPECT_FALSE(has(j, R"("confusion")")) << j;
  EXPECT_TRUE(has(j, R"("top_confusions")")) << j;
  EXPECT_TRUE(has(j, R"("true": "3")")) << j;
  EXPECT_TRUE(has(j, R"("predicted": "7")")) << j;
}

TEST(RunSummary, RegressionTestHasErrorsAndNoAccuracy) {
  bp::io::RunSummary s = classifier();
  s.test({.loss = 2.25, .examples = 10}, bp::train::RegressionMetrics{.rmse = 1.5, .mae = 1.25, .r2 = NAN});
  const std::string j = s.json_text();
  EXPECT_TRUE(has(j, R"("rmse": 1.5)")) << j;
  EXPECT_TRUE(has(j, R"("mae": 1.25)")) << j;
  EXPECT_TRUE(has(j, R"("r2": null)")) << j;
  EXPECT_FALSE(has(j, "accuracy")) << j;
  EXPECT_TRUE(has(s.text(), "  test        loss 2.2500  rmse 1.5000  (10 examples)\n")) << s.text();
}

TEST(RunSummary, DivergedAndInterrupted) {
  bp::io::RunSummary s = classifier();
  s.diverged("loss became NaN", 3);
  EXPECT_TRUE(has(s.json_text(), R"("status": "diverged")"));
  EXPECT_TRUE(has(s.json_text(), R"("message": "loss became NaN")"));
  s.interrupted("SIGINT", 2, 17, "runs/a/checkpoints/epoch-0002.safetensors", 4);
  const std::string j = s.json_text();
  EXPECT_TRUE(has(j, R"("status": "interrupted")")) << j;
  EXPECT_TRUE(has(j, R"("signal": "SIGINT")")) << j;
  EXPECT_TRUE(has(j, R"("step": 17)")) << j;
  const bp::io::RunSummary copy = s;  // a copy holds its own JSON
  s.finish(9);
  EXPECT_TRUE(has(copy.json_text(), R"("seconds": 4.0)")) << copy.json_text();
}
