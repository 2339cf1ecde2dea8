// DataLoader, subsets, the train/validation split and the Standardizer.
#include <algorithm>
#include <backprop/data.hpp>
#include <backprop/threads.hpp>
#include <numeric>
#include <set>

#include "data/data_test_util.hpp"
#include "kernels/row_pool.hpp"

namespace bp = backprop;
namespace bpd = backprop::data;
using data_test::error_of;
using ::testing::HasSubstr;

namespace {

// Row i has features [i, 1000 + i] and target i % classes, so any row can be traced back to its index.
bpd::TensorDataset numbered(std::int64_t n, std::int64_t classes = 3) {
  std::vector<double> x, y;
  for (std::int64_t i = 0; i < n; ++i) {
    x.push_back(static_cast<double>(i));
    x.push_back(1000.0 + static_cast<double>(i));
    y.push_back(static_cast<double>(i % classes));
  }
  bpd::TensorDataset d;
  d.features = bp::from_vector(x, {n, 2});
  d.targets = bp::from_vector(y, {n});
  d.num_classes = classes;
  for (std::int64_t c = 0; c < classes; ++c)
    d.class_names.push_back(std::string("c").append(std::to_string(c)));
  d.feature_names = {"id", "id_plus_1000"};
  return d;
}

// The row indices an epoch visits, in order, read back from the batches' features.
std::vector<std::int64_t> visited(const bpd::DataLoader& loader) {
  std::vector<std::int64_t> rows;
  for (const bpd::Batch& b : loader) {
    for (std::int64_t r = 0; r < b.features.size(0); ++r) {
      const auto i = static_cast<std::int64_t>(b.features.at({r, 0}));
      EXPECT_EQ(b.features.at({r, 1}), 1000.0 + static_cast<double>(i)) << "a row's features were split up";
      EXPECT_EQ(b.targets.at({r}), static_cast<double>(i % 3)) << "row " << i << " got another row's target";
      rows.push_back(i);
    }
  }
  return rows;
}

std::vector<std::int64_t> iota(std::int64_t n) {
  std::vector<std::int64_t> v(static_cast<std::size_t>(n));
  std::iota(v.begin(), v.end(), 0);
  return v;
}

}  // namespace

TEST(DataLoader, BatchCountsWithAndWithoutDropLast) {
  const auto d = numbered(10);
  bpd::DataLoader keep(d, {.batch_size = 3});
  EXPECT_EQ(keep.num_batches(), 4);
  EXPECT_EQ(keep.batch(3).features.shape(), (bp::Shape{1, 2}));
  EXPECT_EQ(keep.batch(0).targets.shape(), (bp::Shape{3}));
  bpd::DataLoader drop(d, {.batch_size = 3, .drop_last = true});
  EXPECT_EQ(drop.num_batches(), 3);
  EXPECT_EQ(visited(drop).size(), 9u);
  EXPECT_EQ(bpd::DataLoader(d, {.batch_size = 5, .drop_last = true}).num_batches(), 2);
  EXPECT_EQ(bpd::DataLoader(d, {.batch_size = 64}).num_batches(), 1);
  EXPECT_EQ(bpd::DataLoader(d, {.batch_size = 64, .drop_last = true}).num_batches(), 0);
  std::int64_t count = 0;
  for (const bpd::Batch& b : keep) count += b.features.size(0) > 0 ? 1 : 0;
  EXPECT_EQ(count, keep.num_batches());
}

TEST(DataLoader, EveryRowExactlyOncePerEpoch) {
  const auto d = numbered(103);
  bpd::DataLoader loader(d, {.batch_size = 8, .seed = 5});
  for (std::int64_t epoch = 0; epoch < 4; ++epoch) {
    loader.set_epoch(epoch);
    std::vector<std::int64_t> rows = visited(loader);
    EXPECT_NE(rows, iota(103)) << "epoch " << epoch << " was not shuffled";
    std::sort(rows.begin(), rows.end());
    EXPECT_EQ(rows, iota(103)) << "epoch " << epoch;
  }
}

TEST(DataLoader, SameSeedSameOrderDifferentEpochsDiffer) {
  const auto d = numbered(50);
  bpd::DataLoader a(d, {.batch_size = 7, .seed = 11});
  bpd::DataLoader b(d, {.batch_size = 7, .seed = 11});
  EXPECT_EQ(visited(a), visited(b));
  a.set_epoch(1);
  EXPECT_NE(a.order(), b.order());
  // Epoch 3's order depends on (seed, 3) alone, not on the epochs visited before.
  a.set_epoch(3);
  bpd::DataLoader fresh(d, {.batch_size = 7, .seed = 11});
  fresh.set_epoch(2);
  fresh.set_epoch(3);
  EXPECT_EQ(a.order(), fresh.order());
  bpd::DataLoader other_seed(d, {.batch_size = 7, .seed = 12});
  EXPECT_NE(other_seed.order(), b.order());
}

TEST(DataLoader, WithoutShuffleRowsComeInOrder) {
  bpd::DataLoader loader(numbered(20), {.batch_size = 6, .shuffle = false});
  loader.set_epoch(5);
  EXPECT_EQ(visited(loader), iota(20));
}

TEST(DataLoader, KeepsDtypeAndTrailingDimensions) {
  bpd::TensorDataset d;
  bp::Generator gen(3);
  d.features = bp::randn({9, 2, 3}, gen, bp::f64);
  d.targets = bp::randn({9, 4}, gen);
  d.task = bpd::Task::regression;
  bpd::DataLoader loader(d, {.batch_size = 4, .shuffle = false});
  const bpd::Batch b = loader.batch(2);
  EXPECT_EQ(b.features.shape(), (bp::Shape{1, 2, 3}));
  EXPECT_EQ(b.features.dtype(), bp::f64);
  EXPECT_EQ(b.targets.shape(), (bp::Shape{1, 4}));
  EXPECT_EQ(b.features.at({0, 1, 2}), d.features.at({8, 1, 2}));
  EXPECT_EQ(b.targets.at({0, 3}), d.targets.at({8, 3}));
}

TEST(DataLoader, Errors) {
  const auto d = numbered(5);
  EXPECT_THAT(error_of<bp::ValueError>([&] { bpd::DataLoader(d, {.batch_size = 0}); }),
              HasSubstr("batch_size must be >= 1, got 0"));
  bpd::DataLoader loader(d, {.batch_size = 2});
  EXPECT_THAT(error_of<bp::IndexError>([&] { loader.batch(3); }), HasSubstr("batch 3 is outside [0, 3)"));
  EXPECT_THAT(error_of<bp::ValueError>([&] { loader.set_epoch(-1); }), HasSubstr("epoch must be >= 0"));
  bpd::TensorDataset bad = d;
  bad.targets = bp::zeros({4});
  EXPECT_THAT(error_of<bp::ShapeError>([&] { bpd::DataLoader(bad, {}); }),
              HasSubstr("features [5, 2] and targets [4] must have the same number of rows"));
}

TEST(Dataset, SubsetAndHeadCopyRowsAndKeepMetadata) {
  const auto d = numbered(10);
  auto s = d.subset({7, 2, 7});
  EXPECT_EQ(s.size(), 3);
  EXPECT_EQ(s.num_features(), 2);
  EXPECT_EQ(s.features.to_vector(), (std::vector<double>{7, 1007, 2, 1002, 7, 1007}));
  EXPECT_EQ(s.targets.to_vector(), (std::vector<double>{1, 2, 1}));
  EXPECT_EQ(s.class_names, d.class_names);
  EXPECT_EQ(s.feature_names, d.feature_names);
  EXPECT_EQ(s.num_classes, 3);
  s.features.set({0, 0}, -1.0);  // a copy: the original is untouched
  EXPECT_EQ(d.features.at({7, 0}), 7.0);
  EXPECT_EQ(d.head(4).size(), 4);
  EXPECT_EQ(d.head(40).size(), 10);
  EXPECT_THAT(error_of<bp::IndexError>([&] {
                d.subset({1, 10});
              }),
              HasSubstr("index 10 (entry 1) is outside [0, 10)"));
  bpd::TensorDataset bare{.features = bp::zeros({3, 2}), .targets = bp::zeros({3})};  // num_classes not set
  EXPECT_EQ(bare.head(2).size(), 2);
  EXPECT_THAT(error_of<bp::ValueError>([&] { bare.validate(); }), HasSubstr("needs num_classes >= 1"));
  bare.targets = bp::zeros({2});
  EXPECT_THAT(error_of<bp::ShapeError>([&] { bare.head(1); }),
              HasSubstr("subset: features [3, 2] and targets [2] disagree on the number of rows"));
  bpd::TensorDataset wrong = d;
  wrong.targets = bp::full({10}, 3.0);
  EXPECT_THAT(error_of<bp::ValueError>([&] { wrong.validate("train"); }),
              HasSubstr("train: target 3 in row 0 is not a class index in [0, 3)"));
}

TEST(Split, SizesDisjointCompleteAndSeeded) {
  const auto d = numbered(101);
  const auto [train, valid] = bpd::train_validation_split(d, 0.2, 9);
  EXPECT_EQ(valid.size(), 20);  // round(101 * 0.2) = 20
  EXPECT_EQ(train.size(), 81);
  std::set<double> seen;
  for (double v : train.features.to_vector())
    if (v < 1000) seen.insert(v);
  for (double v : valid.features.to_vector()) {
    if (v < 1000) {
      EXPECT_TRUE(seen.insert(v).second) << "row " << v << " is in both parts";
    }
  }
  EXPECT_EQ(seen.size(), 101u);
  EXPECT_EQ(train.class_names, d.class_names);
  const auto again = bpd::train_validation_split(d, 0.2, 9);
  EXPECT_EQ(again.second.features.to_vector(), valid.features.to_vector());
  const auto other = bpd::train_validation_split(d, 0.2, 10);
  EXPECT_NE(other.second.features.to_vector(), valid.features.to_vector());
  EXPECT_EQ(bpd::train_validation_split(d, 0.0, 1).second.size(), 0);
  EXPECT_THAT(error_of<bp::ValueError>([&] { bpd::train_validation_split(d, 1.0, 1); }),
              HasSubstr("validation_fraction must be in [0, 1), got 1"));
}

TEST(Standardizer, UsesTrainingStatisticsOnly) {
  bp::Generator gen(21);
  const bp::Tensor train = bp::randn({200, 3}, gen, bp::f32, 5.0, 2.0);
  const bp::Tensor test = bp::randn({50, 3}, gen, bp::f32, -3.0, 0.5);
  const auto st = bpd::Standardizer::fit(train);
  ASSERT_TRUE(st.fitted());
  ASSERT_EQ(st.mean.shape(), (bp::Shape{3}));
  const bp::Tensor z = st.transform(train);
  for (std::int64_t j = 0; j < 3; ++j) {
    double m = 0, v = 0;
    for (std::int64_t i = 0; i < 200; ++i) m += z.at({i, j});
    m /= 200;
    for (std::int64_t i = 0; i < 200; ++i) v += (z.at({i, j}) - m) * (z.at({i, j}) - m);
    EXPECT_NEAR(m, 0.0, 1e-5) << "feature " << j;
    EXPECT_NEAR(std::sqrt(v / 200), 1.0, 1e-5) << "feature " << j;
  }
  // The test set is scaled with the training mean and std (its own mean is far from the training mean).
  const bp::Tensor zt = st.transform(test);
  for (std::int64_t i = 0; i < 50; i += 7)
    for (std::int64_t j = 0; j < 3; ++j)
      EXPECT_NEAR(zt.at({i, j}), (test.at({i, j}) - st.mean.at({j})) / st.std.at({j}), 1e-5);
  double test_mean = 0;
  for (std::int64_t i = 0; i < 50; ++i) test_mean += zt.at({i, 0}) / 50;
  EXPECT_LT(test_mean, -2.0) << "a transform fitted on the test set would give a mean near 0";
  EXPECT_LT(bp::max_abs_diff(st.inverse_transform(zt), test), 1e-5);
}

TEST(Standardizer, ConstantFeatureAndErrors) {
  const bp::Tensor x = bp::tensor({{0.1, 7}, {0.1, 9}, {0.1, 11}});
  const auto st = bpd::Standardizer::fit(x);
  EXPECT_EQ(st.std.at({0}), 1.0);
  EXPECT_EQ(st.transform(x).at({2, 0}), 0.0);
  EXPECT_NEAR(st.transform(x).at({2, 1}), std::sqrt(1.5), 1e-6);
  EXPECT_THAT(error_of<bp::ValueError>([&] { bpd::Standardizer{}.transform(x); }), HasSubstr("not fitted"));
  EXPECT_THAT(error_of<bp::ShapeError>([&] {
                st.transform(bp::zeros({2, 3}));
              }),
              HasSubstr("fitted on 2 features, got features [2, 3]"));
  EXPECT_THAT(error_of<bp::ShapeError>([&] {
                bpd::Standardizer::fit(bp::zeros({0, 3}));
              }),
              HasSubstr("needs at least one row"));
}

// A gather large enough to be shared among threads (rows of 3 KiB, 96 KiB to 1.5 MiB in all) copies every row
// where a single memcpy per row would (the largest is split into pieces), and an index outside the rows is
// refused before anything is copied.
TEST(GatherRows, LargeGathersEqualRowByRowCopies) {
  bp::set_num_threads(2);
  bp::Generator gen(4);
  const bp::Tensor source = bp::randn({300, 784}, gen);
  const std::vector<double> values = source.to_vector();
  for (std::int64_t count : {32, 43, 512}) {
    std::vector<std::int64_t> rows(count);
    for (std::int64_t k = 0; k < count; ++k) rows[k] = (k * 37 + 11) % 300;
    const bp::kernels::ChunkCounts before = bp::kernels::chunk_counts();
    const std::vector<double> got = bpd::gather_rows(source, rows).to_vector();
    const bp::kernels::ChunkCounts after = bp::kernels::chunk_counts();
    if (count == 512 && bp::kernels::usable_cpus() >= 2) {
      EXPECT_GE(after.by_callers + after.by_helpers - before.by_callers - before.by_helpers, 2u);
    }
    ASSERT_EQ(got.size(), static_cast<std::size_t>(count * 784));
    for (std::int64_t k = 0; k < count; ++k)
      for (std::int64_t j = 0; j < 784; j += 13)
        ASSERT_EQ(got[k * 784 + j], values[rows[k] * 784 + j]) << "row " << k << " column " << j;
    rows[count - 1] = 300;
    EXPECT_THAT(error_of<bp::IndexError>([&] { bpd::gather_rows(source, rows); }),
                HasSubstr("index 300 (entry " + std::to_string(count - 1) + ") is outside [0, 300)"));
  }
}
