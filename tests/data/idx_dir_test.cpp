// MNIST-format directories built by the tests, and the real Fashion-MNIST files when they are installed.
#include <algorithm>
#include <backprop/data.hpp>
#include <filesystem>

#include "data/data_test_util.hpp"
#include "util/require.hpp"

namespace bpd = backprop::data;
using data_test::Bytes;
using data_test::error_of;
using data_test::gzip_bytes;
using data_test::idx_bytes;
using data_test::TempDir;
using data_test::write_file;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

// n images of 3x2 pixels whose pixels are (7 * i + j) % 256, and labels i % 10.
void write_small_dir(const TempDir& dir, const std::string& prefix, std::uint32_t n, bool gz,
                     std::uint32_t n_labels = 0, int bad_label_at = -1) {
  Bytes px(n * 6), lb(n_labels ? n_labels : n);
  for (std::uint32_t i = 0; i < n; ++i)
    for (std::uint32_t j = 0; j < 6; ++j) px[i * 6 + j] = static_cast<std::uint8_t>((7 * i + j) % 256);
  for (std::size_t i = 0; i < lb.size(); ++i) lb[i] = static_cast<std::uint8_t>(i % 10);
  if (bad_label_at >= 0) lb[static_cast<std::size_t>(bad_label_at)] = 10;
  const Bytes images = idx_bytes({n, 3, 2}, px);
  const Bytes labels = idx_bytes({static_cast<std::uint32_t>(lb.size())}, lb);
  const std::string suffix = gz ? ".gz" : "";
  write_file(dir.file(prefix + "-images-idx3-ubyte" + suffix), gz ? gzip_bytes(images) : images);
  write_file(dir.file(prefix + "-labels-idx1-ubyte" + suffix), gz ? gzip_bytes(labels) : labels);
}

}  // namespace

TEST(IdxDir, LoadsFeaturesScaledAndLabels) {
  TempDir dir;
  write_small_dir(dir, "train", 12, true);
  write_small_dir(dir, "t10k", 5, false);
  const bpd::TensorDataset train = bpd::load_idx_dir(dir.path().string(), bpd::Split::train);
  // Images [N, rows, cols] keep their shape, with one channel.
  ASSERT_EQ(train.features.shape(), (backprop::Shape{12, 1, 3, 2}));
  ASSERT_EQ(train.targets.shape(), (backprop::Shape{12}));
  EXPECT_EQ(train.num_features(), 6);
  EXPECT_EQ(train.num_classes, 10);
  EXPECT_EQ(train.class_names.front(), "0");
  EXPECT_EQ(train.task, bpd::Task::classification);
  for (std::int64_t i = 0; i < 12; ++i) {
    EXPECT_EQ(train.targets.at({i}), static_cast<double>(i % 10));
    for (std::int64_t j = 0; j < 6; ++j)
      EXPECT_FLOAT_EQ(static_cast<float>(train.features.at({i, 0, j / 2, j % 2})),
                      static_cast<float>((7 * i + j) % 256) / 255.0f);
  }
  EXPECT_EQ(bpd::load_idx_dir(dir.path().string(), bpd::Split::test).size(), 5);
  const auto few = bpd::load_idx_dir(dir.path().string(), bpd::Split::train, 3,
                                     {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"});
  EXPECT_EQ(few.size(), 3);
  EXPECT_EQ(few.class_names[2], "c");
  EXPECT_TRUE(backprop::allclose(few.features, train.head(3).features));
}

TEST(IdxDir, ImageShapeFollowsTheFilesDimensions) {
  // [N, A, B, C] files keep their shape; [N, D] files stay rows.
  for (const std::vector<std::uint32_t>& dims :
       {std::vector<std::uint32_t>{4, 2, 3, 2}, std::vector<std::uint32_t>{4, 12}}) {
    TempDir dir;
    write_file(dir.file("train-images-idx3-ubyte"), idx_bytes(dims, Bytes(48, 7)));
    write_file(dir.file("train-labels-idx1-ubyte"), idx_bytes({4}, Bytes{0, 1, 2, 3}));
    const bpd::TensorDataset d = bpd::load_idx_dir(dir.path().string(), bpd::Split::train);
    backprop::Shape expected(dims.begin(), dims.end());
    EXPECT_EQ(d.features.shape(), expected);
    EXPECT_EQ(d.num_features(), 12);
    EXPECT_EQ(d.flattened().features.shape(), (backprop::Shape{4, 12}));
  }
}

TEST(IdxDir, MissingDirectoryAndFiles) {
  TempDir dir;
  const std::string missing = (dir.path() / "absent").string();
  EXPECT_THAT(error_of<backprop::FileError>([&] { bpd::load_idx_dir(missing, bpd::Split::train); }),
              HasSubstr("no such directory"));
  const std::string msg =
      error_of<backprop::FileError>([&] { bpd::load_idx_dir(dir.path().string(), bpd::Split::test); });
  EXPECT_THAT(msg, HasSubstr("no test images file; tried t10k-images-idx3-ubyte, t10k-images-idx3-ubyte.gz"));
}

TEST(IdxDir, MissingFashionMnistSaysHowToInstallIt) {
  TempDir dir;
  for (const std::string& where : {(dir.path() / "absent").string(), dir.path().string()}) {
    const std::string msg =
        error_of<backprop::FileError>([&] { bpd::FashionMNIST::load(where, bpd::Split::train); });
    EXPECT_THAT(msg, HasSubstr(where + ": no "));
    EXPECT_THAT(msg, HasSubstr("Debian package dataset-fashion-mnist"));
    EXPECT_THAT(msg, HasSubstr("scripts/install-deps"));
  }
  // Images without labels: the missing labels file gets the same advice.
  write_small_dir(dir, "t10k", 4, false);
  std::filesystem::remove(dir.file("t10k-labels-idx1-ubyte"));
  const std::string msg =
      error_of<backprop::FileError>([&] { bpd::FashionMNIST::load(dir.path().string(), bpd::Split::test); });
  EXPECT_THAT(msg, HasSubstr("no test labels file"));
  EXPECT_THAT(msg, HasSubstr("dataset-fashion-mnist"));
  // Any other IDX directory is not Fashion-MNIST: no package advice.
  EXPECT_THAT(
      error_of<backprop::FileError>([&] { bpd::load_idx_dir(dir.path().string(), bpd::Split::train); }),
      Not(HasSubstr("dataset-fashion-mnist")));
}

TEST(IdxDir, LabelCountMismatch) {
  TempDir dir;
  write_small_dir(dir, "train", 12, true, /*n_labels=*/11);
  const std::string msg =
      error_of<backprop::FileError>([&] { bpd::load_idx_dir(dir.path().string(), bpd::Split::train, 5); });
  EXPECT_THAT(msg, HasSubstr("train-images-idx3-ubyte.gz holds 12 images"));
  EXPECT_THAT(msg, HasSubstr("train-labels-idx1-ubyte.gz holds 11 labels"));
  EXPECT_THAT(msg, HasSubstr("byte offset 4"));
}

TEST(IdxDir, LabelOutOfRange) {
  TempDir dir;
  write_small_dir(dir, "train", 12, false, 0, /*bad_label_at=*/7);
  const std::string msg =
      error_of<backprop::FileError>([&] { bpd::load_idx_dir(dir.path().string(), bpd::Split::train); });
  EXPECT_THAT(msg, HasSubstr("train-labels-idx1-ubyte: label 10 of example 7 at byte offset 15"));
  EXPECT_THAT(msg, HasSubstr("expected 0 to 9"));
  // Only the first 5 examples are read with a limit, so the bad label is not reached.
  EXPECT_EQ(bpd::load_idx_dir(dir.path().string(), bpd::Split::train, 5).size(), 5);
}

// ---- the real Fashion-MNIST files -------------------------------------------------------------------------

namespace {
bool have_fashion() {
  return std::filesystem::exists(std::string(bpd::FashionMNIST::default_dir) + "/t10k-images-idx3-ubyte.gz");
}
}  // namespace

TEST(FashionMNIST, FullTestSet) {
  REQUIRE_INSTALLED(have_fashion(), "dataset-fashion-mnist",
                    std::string("Fashion-MNIST under ") + bpd::FashionMNIST::default_dir);
  const bpd::TensorDataset test = bpd::FashionMNIST::load(bpd::FashionMNIST::default_dir, bpd::Split::test);
  ASSERT_EQ(test.features.shape(), (backprop::Shape{10000, 1, 28, 28}));
  ASSERT_EQ(test.targets.shape(), (backprop::Shape{10000}));
  EXPECT_EQ(test.features.dtype(), backprop::f32);
  EXPECT_EQ(test.num_classes, 10);
  EXPECT_EQ(test.class_names, bpd::FashionMNIST::class_names());
  EXPECT_EQ(test.class_names[0], "T-shirt/top");
  EXPECT_EQ(test.class_names[9], "Ankle boot");
  const float* x = test.features.data<float>();
  const auto [lo, hi] = std::minmax_element(x, x + test.features.numel());
  EXPECT_EQ(*lo, 0.0f);
  EXPECT_EQ(*hi, 1.0f);
  std::vector<int> per_class(10, 0);
  for (std::int64_t i = 0; i < test.size(); ++i) {
    const double y = test.targets.at({i});
    ASSERT_TRUE(y >= 0 && y <= 9 && y == static_cast<int>(y)) << "row " << i << " label " << y;
    ++per_class[static_cast<int>(y)];
  }
  for (int c = 0; c < 10; ++c) EXPECT_EQ(per_class[c], 1000) << "class " << c;
  EXPECT_NO_THROW(test.validate());
  // A limited read returns exactly the head of the full read.
  const auto first = bpd::FashionMNIST::load(bpd::FashionMNIST::default_dir, bpd::Split::test, 1000);
  EXPECT_EQ(backprop::max_abs_diff(first.features, test.head(1000).features), 0.0);
  EXPECT_EQ(backprop::max_abs_diff(first.targets, test.head(1000).targets), 0.0);
}

TEST(FashionMNIST, FirstThousandTrainingExamples) {
  REQUIRE_INSTALLED(have_fashion(), "dataset-fashion-mnist",
                    std::string("Fashion-MNIST under ") + bpd::FashionMNIST::default_dir);
  const auto train = bpd::FashionMNIST::load(bpd::FashionMNIST::default_dir, bpd::Split::train, 1000);
  ASSERT_EQ(train.features.shape(), (backprop::Shape{1000, 1, 28, 28}));
  // The MLP path's rows: the same elements, flattened (shared, not copied).
  const bpd::TensorDataset rows = train.flattened();
  ASSERT_EQ(rows.features.shape(), (backprop::Shape{1000, 784}));
  EXPECT_EQ(rows.features.raw_data(), train.features.raw_data());
  EXPECT_EQ(rows.class_names, train.class_names);
  ASSERT_EQ(train.targets.shape(), (backprop::Shape{1000}));
  std::vector<int> per_class(10, 0);
  for (std::int64_t i = 0; i < train.size(); ++i) ++per_class[static_cast<int>(train.targets.at({i}))];
  for (int c = 0; c < 10; ++c)
    EXPECT_GT(per_class[c], 50) << "class " << c << " nearly absent from 1000 examples";
  double mean = 0;
  for (std::int64_t k = 0; k < train.features.numel(); ++k) mean += train.features.flat(k);
  mean /= static_cast<double>(train.features.numel());
  EXPECT_GT(mean, 0.2);  // clothing on a black background: a mean pixel near 0.29
  EXPECT_LT(mean, 0.4);
}
