// The CSV reader is linear in its columns as in its rows: a table of 50,000 columns (100x the widest
// fixture, Fashion-MNIST's 785) reads in a time proportional to its bytes, measured as a ratio to a table of
// the same bytes in two columns, in the same test (a loaded machine slows both alike).
#include <gtest/gtest.h>

#include <algorithm>
#include <backprop/data.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <string>

#include "data/data_test_util.hpp"
#include "util/best_of_three.hpp"

namespace bp = backprop;

namespace {

using testutil::best_of_three;

}  // namespace

TEST(CsvScale, FiftyThousandColumnsReadInTimeLinearInTheBytes) {
  data_test::TempDir dir;
  constexpr int kColumns = 50'000, kRows = 20;
  std::string wide;
  for (int c = 0; c < kColumns; ++c) wide += "f" + std::to_string(c) + ",";
  wide += "label\n";
  for (int r = 0; r < kRows; ++r) {
    for (int c = 0; c < kColumns; ++c) wide += std::to_string((r + c) % 10) + ".5,";
    wide += r % 2 ? "yes\n" : "no\n";
  }
  std::string tall = "f0,label\n";
  for (int r = 0; tall.size() < wide.size(); ++r)
    tall += std::to_string(r % 10) + ".5," + (r % 2 ? "yes\n" : "no\n");
  data_test::write_file(dir.file("wide.csv"), wide);
  data_test::write_file(dir.file("tall.csv"), tall);

  bp::data::TensorDataset read;
  const double wide_s = best_of_three([&] { read = bp::data::read_csv(dir.file("wide.csv")); });
  ASSERT_EQ(read.features.shape(), (bp::Shape{kRows, kColumns}));
  ASSERT_EQ(read.feature_names.size(), static_cast<std::size_t>(kColumns));
  const double tall_s = best_of_three([&] { read = bp::data::read_csv(dir.file("tall.csv")); });
  // Per row the tall table does more (a label, a row of bookkeeping) than the wide one per cell, so linear
  // code reads the wide table faster; a reader quadratic in the columns would take minutes.
  std::printf("%zu bytes: %d columns in %g s, 2 columns in %g s\n", wide.size(), kColumns, wide_s, tall_s);
  EXPECT_LE(wide_s, 20 * tall_s) << wide.size() << " bytes: " << kColumns << " columns in " << wide_s
                                 << " s, 2 columns in " << tall_s << " s";
}
