// Data sets named by a configuration (load_training_data) and new data read for a saved model
// (load_eval_data, load_predict_inputs), on small files whose statistics are worked out by hand.
#include <backprop/data/source.hpp>
#include <backprop/ops.hpp>
#include <cmath>

#include "data/data_test_util.hpp"

namespace bp = backprop;
namespace bpd = backprop::data;
using data_test::Bytes;
using data_test::error_of;
using data_test::idx_bytes;
using data_test::TempDir;
using data_test::write_file;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

namespace {

// Four rows: a = 1, 2, 3, 4 (mean 2.5, population std sqrt(1.25)); b = 10 a; labels x, y, x, y.
const char* const kTable = "a,b,label\n1,10,x\n2,20,y\n3,30,x\n4,40,y\n";

bp::config::Config table_config(const TempDir& dir) {
  write_file(dir.file("train.csv"), std::string(kTable));
  bp::config::Config cfg;
  cfg.data.source = dir.file("train.csv");
  cfg.data.target = "label";
  cfg.data.val_split = 0;
  return cfg;
}

// The mean of column j of rows [N, D].
double column_mean(const bp::Tensor& x, std::int64_t j) {
  double s = 0;
  for (std::int64_t i = 0; i < x.size(0); ++i) s += x.at({i, j});
  return s / static_cast<double>(x.size(0));
}

// n images of 3x2 pixels, pixel j of image i = 10 i + j; labels i % 3.
void write_idx(const TempDir& dir, const std::string& prefix, std::uint32_t n) {
  Bytes px(n * 6), lb(n);
  for (std::uint32_t i = 0; i < n; ++i) {
    for (std::uint32_t j = 0; j < 6; ++j) px[i * 6 + j] = static_cast<std::uint8_t>(10 * i + j);
    lb[i] = static_cast<std::uint8_t>(i % 3);
  }
  write_file(dir.file(prefix + "-images-idx3-ubyte"), idx_bytes({n, 3, 2}, px));
  write_file(dir.file(prefix + "-labels-idx1-ubyte"), idx_bytes({n}, lb));
}

// The model file a run on `data` would save: its preprocessing and an MLP's input and output sizes.
bp::io::ModelFile model_of(const bpd::TrainingData& data, std::int64_t outputs) {
  return {.architecture = {.inputs = data.train.num_features(), .hidden = {4}, .outputs = outputs},
          .preprocessing = data.preprocessing};
}

}  // namespace

TEST(LoadTrainingData, StandardizesTheTableWithItsOwnStatistics) {
  TempDir dir;
  const bpd::TrainingData data = bpd::load_training_data(table_config(dir));
  EXPECT_EQ(data.name, dir.file("train.csv"));
  EXPECT_EQ(data.train.size(), 4);
  EXPECT_EQ(data.validation.size(), 0);
  EXPECT_EQ(data.test.size(), 0);
  EXPECT_EQ(data.image.height, 0);
  const bp::io::Preprocessing& pre = data.preprocessing;
  EXPECT_EQ(pre.input, "table");
  EXPECT_EQ(pre.task, "classification");
  EXPECT_EQ(pre.target, "label");
  EXPECT_THAT(pre.feature_names, ElementsAre("a", "b"));
  EXPECT_THAT(pre.class_names, ElementsAre("x", "y"));
  EXPECT_FLOAT_EQ(pre.mean.at({0}), 2.5f);
  EXPECT_FLOAT_EQ(pre.mean.at({1}), 25.0f);
  EXPECT_FLOAT_EQ(pre.std.at({0}), std::sqrt(1.25f));
  // a = 1 -> (1 - 2.5) / sqrt(1.25); the labels x, y, x, y -> 0, 1, 0, 1.
  EXPECT_NEAR(data.train.features.at({0, 0}), -1.5 / std::sqrt(1.25), 1e-6);
  EXPECT_NEAR(data.train.features.at({3, 1}), 1.5 / std::sqrt(1.25), 1e-6);
  EXPECT_EQ(data.train.targets.at({1}), 1);
  EXPECT_EQ(data.train.targets.at({2}), 0);
}

TEST(LoadTrainingData, FitsTheStandardisationOnTheTrainingSplitOnly) {
  TempDir dir;
  // The last row is far from the others: statistics that saw it would not centre the training rows.
  write_file(dir.file("train.csv"), std::string("a,label\n1,x\n2,y\n3,x\n100,y\n"));
  bp::config::Config cfg;
  cfg.data.source = dir.file("train.csv");
  cfg.data.val_split = 0.25;
  const bpd::TrainingData data = bpd::load_training_data(cfg);
  ASSERT_EQ(data.train.size(), 3);
  ASSERT_EQ(data.validation.size(), 1);
  EXPECT_NEAR(column_mean(data.train.features, 0), 0.0, 1e-6);
  EXPECT_GT(std::abs(data.validation.features.at({0, 0})), 1e-3);
}

TEST(LoadTrainingData, StandardizesTheTestFileWithTheTrainingStatistics) {
  TempDir dir;
  bp::config::Config cfg = table_config(dir);
  // Columns in another order, and a label the training file has.
  write_file(dir.file("test.csv"), std::string("b,a,label\n50,5,y\n"));
  cfg.data.test = dir.file("test.csv");
  const bpd::TrainingData data = bpd::load_training_data(cfg);
  ASSERT_EQ(data.test.size(), 1);
  EXPECT_NEAR(data.test.features.at({0, 0}), 2.5 / std::sqrt(1.25), 1e-6);
  EXPECT_NEAR(data.test.features.at({0, 1}), 25.0 / std::sqrt(125.0), 1e-6);
  EXPECT_EQ(data.test.targets.at({0}), 1);
}

TEST(LoadTrainingData, RegressionTargetsAreAColumn) {
  TempDir dir;
  write_file(dir.file("r.csv"), std::string("x,y\n1,2.5\n2,4.5\n3,6.5\n"));
  bp::config::Config cfg;
  cfg.data.source = dir.file("r.csv");
  cfg.data.task = "regression";
  cfg.data.standardize = false;
  const bpd::TrainingData data = bpd::load_training_data(cfg);
  EXPECT_EQ(data.train.targets.shape(), (bp::Shape{3, 1}));
  EXPECT_FLOAT_EQ(data.train.targets.at({2, 0}), 6.5f);
  EXPECT_FLOAT_EQ(data.train.features.at({1, 0}), 2.0f);
  EXPECT_FALSE(data.preprocessing.mean.defined());
  EXPECT_EQ(data.preprocessing.task, "regression");
}

TEST(LoadTrainingData, ReadsAnIdxDirectoryAsRowsOfScaledPixels) {
  TempDir dir;
  write_idx(dir, "train", 6);
  write_idx(dir, "t10k", 2);
  bp::config::Config cfg;
  cfg.data.source = dir.path().string();
  cfg.data.limit_train = 5;
  cfg.data.val_split = 0;
  const bpd::TrainingData data = bpd::load_training_data(cfg);
  EXPECT_EQ(data.train.features.shape(), (bp::Shape{5, 6}));
  EXPECT_EQ(data.test.features.shape(), (bp::Shape{2, 6}));
  EXPECT_EQ(data.image.height, 3);
  EXPECT_EQ(data.image.width, 2);
  EXPECT_EQ(data.preprocessing.input, "image");
  EXPECT_DOUBLE_EQ(data.preprocessing.pixel_scale, 1.0 / 255.0);
  // Pixel 5 of image 4 is 45: 45 / 255.
  EXPECT_FLOAT_EQ(data.train.features.at({4, 5}), 45.0f / 255.0f);
  EXPECT_EQ(data.train.targets.at({4}), 1);
  EXPECT_EQ(data.nbytes(), (5 * 6 + 2 * 6) * 4u + (5 + 2) * 8u);
}

TEST(LoadTrainingData, RefusesSourcesItCannotUse) {
  TempDir dir;
  bp::config::Config cfg;
  cfg.data.source = dir.file("missing.csv");
  EXPECT_THAT(error_of<bp::FileError>([&] { bpd::load_training_data(cfg); }),
              HasSubstr("does not exist (expected fashion-mnist, a directory of IDX files, or a .csv file)"));
  cfg.data.source = "fashion-mnst";
  EXPECT_THAT(error_of<bp::ConfigError>([&] { bpd::load_training_data(cfg); }),
              HasSubstr("did you mean 'fashion-mnist'?"));
  cfg = table_config(dir);
  cfg.data.augment = "flip";
  EXPECT_THAT(error_of<bp::ConfigError>([&] { bpd::load_training_data(cfg); }), HasSubstr("is a table"));
  write_idx(dir, "train", 2);
  write_idx(dir, "t10k", 2);
  cfg = {};
  cfg.data.source = dir.path().string();
  cfg.data.task = "regression";
  EXPECT_THAT(error_of<bp::ConfigError>([&] { bpd::load_training_data(cfg); }),
              HasSubstr("needs a CSV file"));
}

TEST(LoadEvalData, ReadsTheModelsColumnsByNameAndNamesTheOthers) {
  TempDir dir;
  const bp::io::ModelFile model = model_of(bpd::load_training_data(table_config(dir)), 2);
  write_file(dir.file("eval.csv"), std::string("id,b,label,a\n7,40,y,4\n8,10,x,1\n9,20,y,2\n"));
  const bpd::ModelData read = bpd::load_eval_data(model, dir.file("eval.csv"), {.limit = 2});
  EXPECT_THAT(read.ignored_columns, ElementsAre("id"));
  ASSERT_EQ(read.data.features.shape(), (bp::Shape{2, 2}));
  // In the model's order (a, b), standardised with the training statistics; labels by the model's mapping.
  EXPECT_NEAR(read.data.features.at({0, 0}), 1.5 / std::sqrt(1.25), 1e-6);
  EXPECT_NEAR(read.data.features.at({1, 1}), -15.0 / std::sqrt(125.0), 1e-6);
  EXPECT_EQ(read.data.targets.at({0}), 1);
  EXPECT_EQ(read.data.targets.at({1}), 0);
}

TEST(LoadEvalData, RefusesDataThatDoesNotFitTheModel) {
  TempDir dir;
  const bpd::TrainingData data = bpd::load_training_data(table_config(dir));
  write_file(dir.file("unknown.csv"), std::string("a,b,label\n1,2,z\n"));
  EXPECT_THAT(
      error_of<bp::FileError>([&] { bpd::load_eval_data(model_of(data, 2), dir.file("unknown.csv")); }),
      HasSubstr("label 'z' is not one of the 2 known classes"));
  write_idx(dir, "train", 2);
  write_idx(dir, "t10k", 2);
  const std::string msg = error_of<bp::FileError>(
      [&] { bpd::load_eval_data(model_of(data, 2), dir.path().string(), {.origin = "images"}); });
  EXPECT_THAT(msg, HasSubstr("images " + dir.path().string() +
                             ": the model takes 2 features (columns 'a', 'b'), the data has 6 (1x6 images)"));
}

TEST(LoadPredictInputs, ReadsFeaturesAndIgnoresTheOtherColumns) {
  TempDir dir;
  const bp::io::ModelFile model = model_of(bpd::load_training_data(table_config(dir)), 2);
  write_file(dir.file("new.csv"), std::string("label,a,note,b\nx,2.5,hello,25\nx,4,bye,10\n"));
  const bpd::ModelInputs in = bpd::load_predict_inputs(model, dir.file("new.csv"));
  EXPECT_THAT(in.ignored_columns, ElementsAre("label", "note"));
  ASSERT_EQ(in.features.shape(), (bp::Shape{2, 2}));
  EXPECT_NEAR(in.features.at({0, 0}), 0.0, 1e-6);  // the training mean maps to 0
  EXPECT_NEAR(in.features.at({1, 1}), -15.0 / std::sqrt(125.0), 1e-6);
  EXPECT_THAT(error_of<bp::FileError>([&] { bpd::load_predict_inputs(model, dir.file("none.csv")); }),
              HasSubstr("--input " + dir.file("none.csv") + ": no such file"));
}

TEST(LoadPredictInputs, ScalesIdxImagesByThePixelScale) {
  TempDir dir;
  write_idx(dir, "train", 3);
  write_idx(dir, "t10k", 2);
  bp::config::Config cfg;
  cfg.data.source = dir.path().string();
  const bp::io::ModelFile model = model_of(bpd::load_training_data(cfg), 3);
  const bpd::ModelInputs in = bpd::load_predict_inputs(model, dir.file("t10k-images-idx3-ubyte"), 1);
  ASSERT_EQ(in.features.shape(), (bp::Shape{1, 6}));
  EXPECT_FLOAT_EQ(in.features.at({0, 3}), 3.0f / 255.0f);
  EXPECT_TRUE(in.ignored_columns.empty());
}
