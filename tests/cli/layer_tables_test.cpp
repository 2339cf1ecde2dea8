// Networks as layer tables from the command line: `[[model.layer]]` in a --config file and the presets of
// --arch train, save a model file that eval, predict and info read without code, and resume; the dense keys
// of --arch mlp are refused with a layer list.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/io/model_file.hpp>
#include <nlohmann/json.hpp>

#include "cli_test_util.hpp"

namespace bp = backprop;
using clitest::run;
using clitest::Scratch;
using ::testing::HasSubstr;

namespace {

constexpr const char* kNet = R"([[model.layer]]
type = "dense"
out = 16

[[model.layer]]
type = "batchnorm"

[[model.layer]]
type = "tanh"

[[model.layer]]
type = "dense"
)";

}  // namespace

TEST(LayerTablesCli, ALayerListTrainsAndItsModelIsReadWithoutCode) {
  Scratch s;
  clitest::write(s.path("train.csv"), clitest::blobs_csv(1, 40));
  clitest::write(s.path("net.toml"), kNet);
  const std::string common = "train --quiet --data " + s.path("train.csv") +
                             " --target species --val-split 0 --batch-size 16 --config " + s.path("net.toml");
  const auto r = run(s, common + " --out " + s.path("a"));
  ASSERT_EQ(r.code, 0) << r.err;
  const nlohmann::json summary = nlohmann::json::parse(clitest::slurp(s.path("a/summary.json")));
  EXPECT_EQ(summary["network"], "custom (4 layers)");
  EXPECT_GT(summary["final"]["train_accuracy"].get<double>(), 0.9);  // the blobs are separable
  // The run folder's config.toml holds the tables: it repeats the run.
  EXPECT_THAT(clitest::slurp(s.path("a/config.toml")), HasSubstr("[[model.layer]]\ntype = \"batchnorm\""));

  const auto info = run(s, "info " + s.path("a/model.safetensors"));
  ASSERT_EQ(info.code, 0) << info.err;
  EXPECT_THAT(info.out, HasSubstr("BatchNorm1d"));
  EXPECT_THAT(info.out, HasSubstr("network     custom (4 layers)"));
  const auto eval =
      run(s, "eval --model " + s.path("a/model.safetensors") + " --data " + s.path("train.csv") + " --json");
  ASSERT_EQ(eval.code, 0) << eval.err;
  EXPECT_NEAR(nlohmann::json::parse(eval.out)["accuracy"].get<double>(),
              summary["final"]["train_accuracy"].get<double>(), 0.1);
  const auto predict = run(s, "predict --model " + s.path("a/model.safetensors") + " --input " +
                                  s.path("train.csv") + " --output " + s.path("p.csv"));
  ASSERT_EQ(predict.code, 0) << predict.err;

  // --resume continues the same network.
  const auto again = run(s, common + " --epochs 2 --checkpoint-every 1 --out " + s.path("b"));
  ASSERT_EQ(again.code, 0) << again.err;
  const auto resumed = run(s, "train --quiet --resume " + s.path("b") + " --epochs 3");
  EXPECT_EQ(resumed.code, 0) << resumed.err;
}

TEST(LayerTablesCli, MistakesAreUsageErrorsNamingTheLayer) {
  Scratch s;
  clitest::write(s.path("train.csv"), clitest::blobs_csv(1, 20));
  const std::string common = "train --quiet --data " + s.path("train.csv") + " --target species --epochs 1 ";
  clitest::write(s.path("net.toml"), kNet);
  const auto dense_flag = run(s, common + "--config " + s.path("net.toml") + " --dropout 0.3");
  EXPECT_EQ(dense_flag.code, 2);
  EXPECT_THAT(dense_flag.err,
              HasSubstr("model.dropout (--dropout) describes the dense layers of --arch mlp"));
  clitest::write(s.path("bad.toml"), "[[model.layer]]\ntype = \"dense\"\nout = 0\n");
  const auto bad = run(s, common + "--config " + s.path("bad.toml"));
  EXPECT_EQ(bad.code, 2);
  EXPECT_THAT(bad.err, HasSubstr("model.layer #1 (dense): out must be an integer >= 1, got 0"));
  // An image preset on a table: the first convolution has no image to work on.
  const auto image_on_table = run(s, common + "--arch lenet5");
  EXPECT_EQ(image_on_table.code, 2);
  EXPECT_THAT(image_on_table.err, HasSubstr("model.layer #1 (conv2d)"));
  const auto unknown = run(s, common + "--arch resnet");
  EXPECT_EQ(unknown.code, 2);
  EXPECT_THAT(unknown.err, HasSubstr("--arch: expected one of: mlp, lenet5, cnn, custom"));
}
