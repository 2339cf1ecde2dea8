// config::fit_to_data: the defaults adapted to the size of the data, for the keys the user did not give.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <backprop/config.hpp>
#include <backprop/error.hpp>

namespace bp = backprop;
namespace cfg = backprop::config;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(FitToData, FashionMnistSizeChangesNothing) {
  cfg::Config c;
  const cfg::FittedDefaults f = cfg::fit_to_data(c, {.rows = 60000, .features = 784, .classes = 10}, {});
  EXPECT_TRUE(f.choices.empty());
  EXPECT_EQ(f.summary, "");
  EXPECT_EQ(cfg::to_toml(c), cfg::to_toml(cfg::Config{}));
  // The smallest table that keeps every default: 23,610 rows leave 21,249 to train, 167 batches of 128, and
  // 30 epochs of those are the 5,000 updates.
  cfg::Config edge;
  EXPECT_TRUE(cfg::fit_to_data(edge, {.rows = 23610, .features = 5, .classes = 2}, {}).choices.empty());
  cfg::Config below;
  EXPECT_THAT(cfg::fit_to_data(below, {.rows = 23609, .features = 5, .classes = 2}, {}).choices,
              ElementsAre("31 epochs (5146 updates)"));
}

TEST(FitToData, SmallTableTrainsOnEveryRowWithSmallBatchesForMoreEpochs) {
  cfg::Config c;
  const cfg::FittedDefaults f = cfg::fit_to_data(c, {.rows = 150, .features = 4, .classes = 3}, {});
  EXPECT_EQ(c.train.batch_size, 16);
  EXPECT_EQ(c.data.val_split, 0.0);
  EXPECT_EQ(c.train.epochs, 200);  // 5,000 / ceil(150 / 16) = 500, at most 200
  EXPECT_EQ(c.train.early_stopping, 0);
  EXPECT_EQ(f.summary,
            "defaults for 150 rows: batch 16, no validation split (all 150 rows train), 200 epochs (2000 "
            "updates)");
  EXPECT_NO_THROW(cfg::validate(c));
  // 1,000 rows are still a small table; 1,001 keep the validation split.
  cfg::Config small, more;
  cfg::fit_to_data(small, {.rows = 1000, .features = 4, .classes = 3}, {});
  cfg::fit_to_data(more, {.rows = 1001, .features = 4, .classes = 3}, {});
  EXPECT_EQ(small.data.val_split, 0.0);
  EXPECT_EQ(more.data.val_split, 0.1);
}

TEST(FitToData, MidSizeKeepsTheSplit) {
  cfg::Config c;
  const cfg::FittedDefaults f = cfg::fit_to_data(c, {.rows = 3000, .features = 10, .classes = 2}, {});
  EXPECT_EQ(c.train.batch_size, 64);  // 3000 / 32 = 93 -> 64
  EXPECT_EQ(c.data.val_split, 0.1);
  EXPECT_EQ(c.train.epochs, 117);  // 2,700 rows train: 43 batches; 5,000 / 43 -> 117
  EXPECT_EQ(c.train.early_stopping, 0);
  EXPECT_THAT(f.choices, ElementsAre("batch 64", "117 epochs (5031 updates)"));
  EXPECT_NO_THROW(cfg::validate(c));
}

TEST(FitToData, GivenKeysWin) {
  // The user's batch of 128 is larger than the table: the epochs count the one batch it makes.
  cfg::Config c;
  const cfg::FittedDefaults f =
      cfg::fit_to_data(c, {.rows = 100, .features = 3, .classes = 2}, {"train.batch_size", "optimizer.lr"});
  EXPECT_EQ(c.train.batch_size, 128);
  EXPECT_EQ(c.train.epochs, 200);
  EXPECT_EQ(c.data.val_split, 0.0);
  EXPECT_THAT(f.summary, HasSubstr("200 epochs (200 updates)"));

  // Given epochs and validation split stay; the batch is still fitted.
  cfg::Config d;
  d.train.epochs = 30;
  d.data.val_split = 0.2;
  cfg::fit_to_data(d, {.rows = 500, .features = 3, .classes = 2}, {"train.epochs", "data.val_split"});
  EXPECT_EQ(d.train.epochs, 30);
  EXPECT_EQ(d.data.val_split, 0.2);
  EXPECT_EQ(d.train.early_stopping, 0);
  EXPECT_EQ(d.train.batch_size, 16);

  // Given early stopping: the epochs are a maximum.
  cfg::Config e;
  e.data.val_split = 0.2;
  e.train.early_stopping = 5;
  const cfg::FittedDefaults fe = cfg::fit_to_data(e, {.rows = 500, .features = 3, .classes = 2},
                                                  {"data.val_split", "train.early_stopping"});
  EXPECT_EQ(e.train.epochs, 200);  // 400 rows train: 25 batches of 16
  EXPECT_EQ(e.train.early_stopping, 5);
  EXPECT_EQ(fe.summary, "defaults for 500 rows: batch 16, up to 200 epochs (5000 updates)");

  // Everything given (a run's own config.toml read back): nothing changes.
  std::vector<std::string> all;
  cfg::Config g = cfg::parse_toml(cfg::to_toml(cfg::Config{}), "config.toml", &all);
  EXPECT_TRUE(cfg::fit_to_data(g, {.rows = 150, .features = 4, .classes = 3}, all).choices.empty());
}

TEST(FitToData, FullBatchCountsOneUpdatePerEpoch) {
  cfg::Config c;
  c.train.batch_size = 0;
  const cfg::FittedDefaults f =
      cfg::fit_to_data(c, {.rows = 300, .features = 3, .classes = 0}, {"train.batch_size"});
  EXPECT_EQ(c.train.batch_size, 0);
  EXPECT_EQ(c.train.epochs, 200);
  EXPECT_THAT(f.summary, HasSubstr("200 epochs (200 updates)"));
}

TEST(FitToData, RejectsEmptyDataAndUnknownKeys) {
  cfg::Config c;
  // One row and a given split that leaves none to train: counted as one batch, not a division by zero.
  cfg::Config one;
  one.data.val_split = 0.9;
  cfg::fit_to_data(one, {.rows = 1, .features = 3, .classes = 2}, {"data.val_split"});
  EXPECT_EQ(one.train.epochs, 200);
  EXPECT_THROW(cfg::fit_to_data(c, {.rows = 0, .features = 3, .classes = 2}, {}), bp::ConfigError);
  try {
    cfg::fit_to_data(c, {.rows = 10, .features = 3, .classes = 2}, {"train.epoch"});
    FAIL() << "an unknown given key was accepted";
  } catch (const bp::ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("unknown key 'train.epoch'"));
  }
}

TEST(FitToData, ParseTomlListsTheKeysItSets) {
  std::vector<std::string> keys;
  const cfg::Config c = cfg::parse_toml("[train]\nepochs = 5\n[optimizer]\nlr = 0.01\n", "run.toml", &keys);
  EXPECT_EQ(c.train.epochs, 5);
  std::sort(keys.begin(), keys.end());  // in the order of the TOML table, not of the text
  EXPECT_THAT(keys, ElementsAre("optimizer.lr", "train.epochs"));
}

TEST(PresetDefaults, ImagePresetsTrainFifteenEpochsUnlessGiven) {
  cfg::Config c;
  c.model.arch = "cnn";
  const cfg::FittedDefaults f = cfg::preset_defaults(c, {}, true);
  EXPECT_EQ(c.train.epochs, 15);
  EXPECT_EQ(c.train.batch_size, 64);
  EXPECT_EQ(c.data.augment, "flip");
  EXPECT_EQ(f.summary, "defaults for the cnn preset: 15 epochs, batch 64, augment flip");
  cfg::Config lenet;
  lenet.model.arch = "lenet5";
  EXPECT_THAT(cfg::preset_defaults(lenet, {}, true).choices, ElementsAre("15 epochs"));
  EXPECT_EQ(lenet.train.batch_size, 128);
  EXPECT_EQ(lenet.data.augment, "");

  cfg::Config given;
  given.model.arch = "cnn";
  given.train.epochs = 40;
  given.train.batch_size = 128;
  given.data.augment = "crop";
  EXPECT_TRUE(cfg::preset_defaults(given, {"train.epochs", "train.batch_size", "data.augment"}, true)
                  .choices.empty());
  EXPECT_EQ(given.train.epochs, 40);
  EXPECT_EQ(given.train.batch_size, 128);
  EXPECT_EQ(given.data.augment, "crop");

  for (const char* arch : {"mlp", "custom"}) {
    cfg::Config other;
    other.model.arch = arch;
    EXPECT_EQ(cfg::preset_defaults(other, {}, true).summary, "") << arch;
    EXPECT_EQ(other.train.epochs, 30) << arch;
  }
  cfg::Config table;  // a table gets no image augmentation
  table.model.arch = "cnn";
  EXPECT_EQ(cfg::preset_defaults(table, {}, false).summary,
            "defaults for the cnn preset: 15 epochs, batch 64");
  EXPECT_EQ(table.data.augment, "");
  cfg::Config bad;
  bad.model.arch = "cnn";
  EXPECT_THROW(cfg::preset_defaults(bad, {"train.epoch"}, true), bp::ConfigError);
}
