// `backprop train --augment`: image augmentation of the training batches, and its usage errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli_test_util.hpp"
#include "util/require.hpp"

using clitest::run;
using clitest::Scratch;
using ::testing::HasSubstr;

namespace {

const std::string kRun =
    "train --limit-train 600 --limit-test 200 --layers 16 --epochs 1 --batch-size 50 "
    "--threads 1 --seed 3 --quiet ";

}  // namespace

TEST(CliAugment, TrainsDeterministicallyAndChangesOnlyTraining) {
  REQUIRE_INSTALLED(clitest::have_fashion(), "dataset-fashion-mnist", "Fashion-MNIST");
  Scratch s;
  ASSERT_EQ(run(s, kRun + "--out " + s.path("plain")).code, 0);
  const auto a = run(s, kRun + "--augment crop,flip,erase --out " + s.path("a"));
  ASSERT_EQ(a.code, 0) << a.all();
  ASSERT_EQ(run(s, kRun + "--augment crop,flip,erase --out " + s.path("b")).code, 0);
  // The same seed gives the same run; the augmented batches give other weights than the plain ones.
  EXPECT_TRUE(clitest::same_tensors(s.path("a/model.safetensors"), s.path("b/model.safetensors")));
  EXPECT_FALSE(clitest::same_tensors(s.path("a/model.safetensors"), s.path("plain/model.safetensors")));
  EXPECT_THAT(clitest::slurp(s.path("a/config.toml")), HasSubstr("augment = \"crop,flip,erase\""));
  // Evaluation is never augmented: `eval` of the saved model on the test images gives the run's test figures.
  const auto summary = nlohmann::json::parse(clitest::slurp(s.path("a/summary.json")));
  const auto e =
      run(s, "eval --model " + s.path("a/model.safetensors") + " --data fashion-mnist --limit 200 --json");
  ASSERT_EQ(e.code, 0) << e.all();
  const auto eval = nlohmann::json::parse(e.out);
  EXPECT_DOUBLE_EQ(eval["accuracy"].get<double>(), summary["test"]["accuracy"].get<double>());
}

TEST(CliAugment, UnknownNameAndTableDataAreUsageErrors) {
  Scratch s;
  const auto unknown = run(s, kRun + "--augment crop,rotate --out " + s.path("x"));
  EXPECT_EQ(unknown.code, 2) << unknown.all();
  EXPECT_THAT(unknown.err, HasSubstr("--augment"));
  EXPECT_THAT(unknown.err, HasSubstr("'rotate'"));
  EXPECT_THAT(unknown.err, HasSubstr("crop, flip, erase"));

  clitest::write(s.path("c.toml"), "[data]\naugment = \"blur\"\n");
  const auto in_file = run(s, kRun + "--config " + s.path("c.toml") + " --out " + s.path("y"));
  EXPECT_EQ(in_file.code, 2) << in_file.all();
  EXPECT_THAT(in_file.err, HasSubstr("'blur'"));

  clitest::write(s.path("t.csv"), clitest::blobs_csv(1, 20));
  const auto table =
      run(s, "train --data " + s.path("t.csv") + " --epochs 1 --quiet --augment flip --out " + s.path("z"));
  EXPECT_EQ(table.code, 2) << table.all();
  EXPECT_THAT(table.err, HasSubstr("needs image data"));
}
