// --init-from MODEL: a new run that starts from a saved model's weights (warm start), distinct from --resume:
// the weights carry over, the run's counters, optimiser state and schedule start afresh.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/io/metrics.hpp>
#include <backprop/io/model_file.hpp>
#include <nlohmann/json.hpp>

#include "cli_test_util.hpp"

namespace bp = backprop;
using clitest::run;
using clitest::Scratch;
using ::testing::HasSubstr;

namespace {

double max_weight_difference(const bp::io::ModelFile& a, const bp::io::ModelFile& b) {
  double worst = 0.0;
  for (const auto& [name, t] : a.state) worst = std::max(worst, bp::max_abs_diff(t, b.state.at(name)));
  return worst;
}

}  // namespace

TEST(WarmStart, InitFromStartsANewRunFromTheSavedWeights) {
  Scratch s;
  clitest::write(s.path("train.csv"), clitest::blobs_csv(1, 40));
  const std::string common = "train --quiet --data " + s.path("train.csv") +
                             " --target species --layers 16 --dropout 0 --val-split 0 --batch-size 16 ";
  ASSERT_EQ(run(s, common + "--epochs 5 --out " + s.path("a")).code, 0);
  // One epoch at a learning rate too small to move the weights: the run ends where model a was.
  const auto r = run(s, common + "--epochs 1 --optimizer sgd --lr 1e-12 --seed 9 --init-from " +
                            s.path("a/model.safetensors") + " --out " + s.path("b"));
  ASSERT_EQ(r.code, 0) << r.err;
  const bp::io::ModelFile a = bp::io::load_model(s.path("a/model.safetensors"));
  const bp::io::ModelFile b = bp::io::load_model(s.path("b/model.safetensors"));
  EXPECT_LT(max_weight_difference(a, b), 1e-6);
  // Without --init-from the same run starts from its own initial weights, far from a's.
  ASSERT_EQ(run(s, common + "--epochs 1 --optimizer sgd --lr 1e-12 --seed 9 --out " + s.path("c")).code, 0);
  EXPECT_GT(max_weight_difference(a, bp::io::load_model(s.path("c/model.safetensors"))), 0.1);
  // A new run, not a continuation: its log starts at epoch 1 and its config names the model it started from.
  const bp::io::Metrics m = bp::io::read_metrics(s.path("b/metrics.jsonl"));
  ASSERT_EQ(m.epochs.size(), 1u);
  EXPECT_EQ(m.epochs[0].epoch, 1);
  EXPECT_THAT(clitest::slurp(s.path("b/config.toml")),
              HasSubstr("init_from = \"" + s.path("a/model.safetensors")));
}

TEST(WarmStart, AModelOfAnotherNetworkOrNoModelIsAClearError) {
  Scratch s;
  clitest::write(s.path("train.csv"), clitest::blobs_csv(1, 20));
  const std::string common = "train --quiet --data " + s.path("train.csv") + " --target species --epochs 1 ";
  ASSERT_EQ(run(s, common + "--layers 16 --out " + s.path("a")).code, 0);
  const auto other =
      run(s, common + "--layers 8 --init-from " + s.path("a/model.safetensors") + " --out " + s.path("b"));
  EXPECT_EQ(other.code, 2);
  EXPECT_THAT(other.err, HasSubstr("--init-from " + s.path("a/model.safetensors") +
                                   ": the model's network is 4-16-3 but this run builds 4-8-3"));
  const auto missing =
      run(s, common + "--layers 16 --init-from " + s.path("nope.safetensors") + " --out " + s.path("c"));
  EXPECT_EQ(missing.code, 3);
  EXPECT_THAT(missing.err, HasSubstr("--init-from: "));
  EXPECT_THAT(missing.err, HasSubstr("nope.safetensors"));
}
