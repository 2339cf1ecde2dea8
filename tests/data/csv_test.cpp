// CSV reader: equivalent spellings of one table read alike; labels, targets and every error with line:column.
#include <backprop/data.hpp>
#include <chrono>
#include <functional>

#include "data/data_test_util.hpp"

namespace bpd = backprop::data;
using data_test::error_of;
using data_test::TempDir;
using data_test::write_file;
using ::testing::HasSubstr;

namespace {

const char* kClean =
    "sepal,petal,species\n"
    "5.1,1.4,setosa\n"
    "7.0,4.7,versicolor\n"
    "6.3,6.0,virginica\n"
    "4.9,1.5,setosa\n";

void expect_same(const bpd::TensorDataset& a, const bpd::TensorDataset& b) {
  ASSERT_EQ(a.features.shape(), b.features.shape());
  ASSERT_EQ(a.targets.shape(), b.targets.shape());
  EXPECT_EQ(backprop::max_abs_diff(a.features, b.features), 0.0);
  EXPECT_EQ(backprop::max_abs_diff(a.targets, b.targets), 0.0);
  EXPECT_EQ(a.class_names, b.class_names);
  EXPECT_EQ(a.feature_names, b.feature_names);
  EXPECT_EQ(a.num_classes, b.num_classes);
}

std::string csv_error(const TempDir& dir, const std::string& text, const bpd::CsvOptions& options = {}) {
  write_file(dir.file("e.csv"), text);
  return error_of<backprop::FileError>([&] { bpd::read_csv(dir.file("e.csv"), options); });
}

}  // namespace

TEST(Csv, ReadsFeaturesLabelsAndNames) {
  TempDir dir;
  write_file(dir.file("iris.csv"), std::string(kClean));
  const auto d = bpd::read_csv(dir.file("iris.csv"));
  ASSERT_EQ(d.features.shape(), (backprop::Shape{4, 2}));
  ASSERT_EQ(d.targets.shape(), (backprop::Shape{4}));
  EXPECT_EQ(d.features.dtype(), backprop::f32);
  EXPECT_EQ(d.feature_names, (std::vector<std::string>{"sepal", "petal"}));
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"setosa", "versicolor", "virginica"}));
  EXPECT_EQ(d.num_classes, 3);
  EXPECT_EQ(d.task, bpd::Task::classification);
  EXPECT_FLOAT_EQ(static_cast<float>(d.features.at({1, 1})), 4.7f);
  EXPECT_EQ(d.targets.to_vector(), (std::vector<double>{0, 1, 2, 0}));
}

TEST(Csv, BomCrlfQuotesAndBlankLinesEqualACleanFile) {
  TempDir dir;
  write_file(dir.file("clean.csv"), std::string(kClean));
  write_file(dir.file("messy.csv"), std::string("\xef\xbb\xbf"
                                                "\"sepal\",petal,\"species\"\r\n"
                                                "5.1, 1.4 ,\"setosa\"\r\n"
                                                "\r\n"
                                                "\"7.0\",+4.7,versicolor\r\n"
                                                "6.3,6.0,  \"virginica\"  \r\n"
                                                "4.9,1.5e0,setosa"));  // no final line end
  expect_same(bpd::read_csv(dir.file("clean.csv")), bpd::read_csv(dir.file("messy.csv")));
}

TEST(Csv, QuotedFieldsKeepDelimitersQuotesAndNewlines) {
  TempDir dir;
  write_file(dir.file("q.csv"), std::string("x,label\n"
                                            "1,\"a,b\"\n"
                                            "2,\"say \"\"hi\"\"\"\n"
                                            "3,\"two\nlines\"\n"
                                            "4,\"a,b\"\n"));
  const auto d = bpd::read_csv(dir.file("q.csv"));
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"a,b", "say \"hi\"", "two\nlines"}));
  EXPECT_EQ(d.targets.to_vector(), (std::vector<double>{0, 1, 2, 0}));
}

TEST(Csv, LabelMappingDoesNotDependOnRowOrder) {
  TempDir dir;
  write_file(dir.file("a.csv"), std::string("1,b\n2,c\n3,a\n"));
  write_file(dir.file("b.csv"), std::string("3,a\n1,b\n2,c\n"));
  const auto a = bpd::read_csv(dir.file("a.csv"));
  const auto b = bpd::read_csv(dir.file("b.csv"));
  EXPECT_EQ(a.class_names, b.class_names);
  EXPECT_EQ(a.class_names, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(a.targets.to_vector(), (std::vector<double>{1, 2, 0}));
}

TEST(Csv, NumericLabelsSortNumerically) {
  TempDir dir;
  write_file(dir.file("n.csv"), std::string("0.5,10\n0.1,2\n0.7,1\n0.2,2\n"));
  const auto d = bpd::read_csv(dir.file("n.csv"));
  EXPECT_TRUE(d.feature_names.empty());  // no header: every feature cell is a number
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"1", "2", "10"}));
  EXPECT_EQ(d.targets.to_vector(), (std::vector<double>{2, 1, 0, 1}));
}

TEST(Csv, GivenClassNamesAreUsedAndUnknownLabelsRejected) {
  TempDir dir;
  write_file(dir.file("t.csv"), std::string("x,y\n1,dog\n2,cat\n"));
  const auto d = bpd::read_csv(dir.file("t.csv"), {.class_names = {"dog", "cat", "bird"}});
  EXPECT_EQ(d.targets.to_vector(), (std::vector<double>{0, 1}));
  EXPECT_EQ(d.num_classes, 3);
  const std::string msg = csv_error(dir, "x,y\n1,dog\n2,fish\n", {.class_names = {"dog", "cat"}});
  EXPECT_THAT(msg, HasSubstr(dir.file("e.csv") + ":3:2: label 'fish' is not one of the 2 known classes"));
}

TEST(Csv, RegressionTargetByNameInAnyColumn) {
  TempDir dir;
  write_file(dir.file("r.csv"), std::string("rooms,price,area\n3,250.5,80\n5,410,120\n"));
  const auto d = bpd::read_csv(dir.file("r.csv"), {.target = "price", .task = bpd::Task::regression});
  EXPECT_EQ(d.task, bpd::Task::regression);
  EXPECT_EQ(d.feature_names, (std::vector<std::string>{"rooms", "area"}));
  EXPECT_EQ(d.targets.to_vector(), (std::vector<double>{250.5, 410}));
  EXPECT_EQ(d.features.to_vector(), (std::vector<double>{3, 80, 5, 120}));
  EXPECT_TRUE(d.class_names.empty());
  const auto by_index = bpd::read_csv(dir.file("r.csv"), {.target = "1", .task = bpd::Task::regression});
  expect_same(d, by_index);
}

TEST(Csv, HeaderDetectionAndOverrides) {
  TempDir dir;
  // Only the target column holds text: still no header.
  write_file(dir.file("h.csv"), std::string("1,2,x\n3,4,y\n"));
  EXPECT_EQ(bpd::read_csv(dir.file("h.csv")).size(), 2);
  // A numeric header row is only a header when told so.
  write_file(dir.file("n.csv"), std::string("10,20,30\n1,2,3\n4,5,6\n"));
  EXPECT_EQ(bpd::read_csv(dir.file("n.csv")).size(), 3);
  const auto forced = bpd::read_csv(dir.file("n.csv"), {.header = 1});
  EXPECT_EQ(forced.size(), 2);
  EXPECT_EQ(forced.feature_names, (std::vector<std::string>{"10", "20"}));
  // header = 0 on a file with a header: the names are data, and not numbers.
  EXPECT_THAT(csv_error(dir, kClean, {.header = 0}), HasSubstr(":1:1: 'sepal' in column 1 is not a number"));
}

TEST(Csv, SemicolonDelimiter) {
  TempDir dir;
  write_file(dir.file("s.csv"), std::string("a;b;c\n1.5;2;x\n3;1e-999;y\n"));
  const auto d = bpd::read_csv(dir.file("s.csv"), {.delimiter = ';'});
  EXPECT_EQ(d.features.to_vector(), (std::vector<double>{1.5, 2, 3, 0}));  // 1e-999 underflows to 0
}

TEST(Csv, ErrorsNameLineAndColumn) {
  TempDir dir;
  const std::string f = dir.file("e.csv");
  EXPECT_THAT(csv_error(dir, "a,b,c\n1,2,x\n3,4\n"),
              HasSubstr(f + ":3:3: row has 2 fields; expected 3 like line 1 (ragged rows)"));
  EXPECT_THAT(csv_error(dir, "a,b,c\n1,2,x\n3,4,y,9\n"), HasSubstr(f + ":3:4: row has 4 fields; expected 3"));
  EXPECT_THAT(csv_error(dir, "a,b,c\n1,,x\n"),
              HasSubstr(f + ":2:2: empty cell in column 'b'; expected a number"));
  EXPECT_THAT(csv_error(dir, "a,b,c\n1,2,x\n\n1,abc,y\n"),
              HasSubstr(f + ":4:2: 'abc' in column 'b' is not a number"));
  EXPECT_THAT(csv_error(dir, "a,b,c\n1,nan,x\n"),
              HasSubstr(f + ":2:2: 'nan' in column 'b' is not a finite number"));
  EXPECT_THAT(csv_error(dir, "a,b,c\n-inf,1,x\n"),
              HasSubstr(f + ":2:1: '-inf' in column 'a' is not a finite number"));
  EXPECT_THAT(csv_error(dir, "1,2,x\n1,2,\n"), HasSubstr(f + ":2:3: empty label in column 3"));
  EXPECT_THAT(csv_error(dir, "a,b\n1,2\n3,x\n", {.task = bpd::Task::regression}),
              HasSubstr(f + ":3:2: 'x' in column 'b' is not a number"));
  EXPECT_THAT(csv_error(dir, "a,b,c\n1,\"2,x\n3,4,y\n"), HasSubstr(f + ":2:2: unterminated quoted field"));
  EXPECT_THAT(csv_error(dir, "a,b,c\n1,\"2\"z,x\n"),
              HasSubstr(f + ":2:2: unexpected 'z' after the closing quote"));
  EXPECT_THAT(csv_error(dir, "a,b,c\n1e999,2,x\n"),
              HasSubstr(f + ":2:1: '1e999' in column 'a' is not a finite number"));
  EXPECT_THAT(csv_error(dir, "a,b,c\n1,-1e39,x\n"),
              HasSubstr(f + ":2:2: '-1e39' in column 'b' does not fit in float32"));
}

TEST(Csv, EmptyHeaderOnlyAndTooFewColumns) {
  TempDir dir;
  EXPECT_THAT(csv_error(dir, ""), HasSubstr("e.csv: is empty"));
  EXPECT_THAT(csv_error(dir, "\xef\xbb\xbf\r\n\r\n"), HasSubstr("e.csv: is empty"));
  EXPECT_THAT(csv_error(dir, "a,b,c\n"), HasSubstr("has a header row but no data rows"));
  EXPECT_THAT(csv_error(dir, "1\n2\n"), HasSubstr(":1: found 1 column; expected at least 2"));
  EXPECT_THAT(csv_error(dir, "<!DOCTYPE html><html></html>"), HasSubstr("is an HTML page"));
  const std::string text = "a,b\n1,2\n";
  write_file(dir.file("z.csv.gz"), data_test::gzip_bytes(data_test::Bytes(text.begin(), text.end())));
  EXPECT_THAT(error_of<backprop::FileError>([&] { bpd::read_csv(dir.file("z.csv.gz")); }),
              HasSubstr("z.csv.gz: is gzip-compressed; expected a plain text file"));
  EXPECT_THAT(error_of<backprop::FileError>([&] { bpd::read_csv(dir.file("absent.csv")); }),
              HasSubstr("absent.csv: cannot open: no such file"));
}

TEST(Csv, TargetThatNamesNoColumn) {
  TempDir dir;
  EXPECT_THAT(csv_error(dir, kClean, {.target = "colour"}),
              HasSubstr("no column named 'colour'; the first row holds 'sepal', 'petal', 'species'"));
  EXPECT_THAT(csv_error(dir, kClean, {.target = "3"}), HasSubstr("target column index 3 is out of range"));
}

TEST(Csv, BadOptionsAreValueErrors) {
  TempDir dir;
  write_file(dir.file("a.csv"), std::string(kClean));
  EXPECT_THAT(error_of<backprop::ValueError>([&] { bpd::read_csv(dir.file("a.csv"), {.delimiter = '"'}); }),
              HasSubstr("delimiter cannot be a quote"));
  EXPECT_THAT(error_of<backprop::ValueError>([&] { bpd::read_csv(dir.file("a.csv"), {.header = 2}); }),
              HasSubstr("header must be -1 (auto), 0 (no) or 1 (yes), got 2"));
}

TEST(CsvFeatures, AllColumnsOrAllButOne) {
  TempDir dir;
  write_file(dir.file("p.csv"), std::string("a,b,label\n1,2,x\n3,4,y\n"));
  const backprop::Tensor x = bpd::read_csv_features(dir.file("p.csv"), ',', -1, "label");
  EXPECT_EQ(x.shape(), (backprop::Shape{2, 2}));
  EXPECT_EQ(x.to_vector(), (std::vector<double>{1, 2, 3, 4}));
  EXPECT_EQ(bpd::read_csv_feature_names(dir.file("p.csv"), ',', -1, "label"),
            (std::vector<std::string>{"a", "b"}));
  // Without dropping the label column, its text is an error at its line and column.
  EXPECT_THAT(error_of<backprop::FileError>([&] { bpd::read_csv_features(dir.file("p.csv")); }),
              HasSubstr("p.csv:2:3: 'x' in column 'label' is not a number"));
  write_file(dir.file("n.csv"), std::string("1,2\n3,4\n"));
  EXPECT_EQ(bpd::read_csv_features(dir.file("n.csv")).shape(), (backprop::Shape{2, 2}));
  EXPECT_EQ(bpd::read_csv_features(dir.file("n.csv"), ',', -1, "0").to_vector(), (std::vector<double>{2, 4}));
}

TEST(Csv, FirstRowIsParsedAsTheReaderParsesIt) {
  TempDir dir;
  write_file(dir.file("t.csv"), std::string("\xef\xbb\xbf\r\n\"a, b\",\"say \"\"hi\"\"\", c \r\n1,2,3\r\n"));
  EXPECT_EQ(bpd::read_csv_first_row(dir.file("t.csv")),
            (std::vector<std::string>{"a, b", "say \"hi\"", "c"}));
  write_file(dir.file("empty.csv"), "\n\n");
  EXPECT_THAT(error_of<backprop::FileError>([&] { bpd::read_csv_first_row(dir.file("empty.csv")); }),
              HasSubstr("is empty"));
}

// A header names each column once: a repeated name is an error naming it and its columns (train, eval and
// predict all read through here), before any row is read. A data row may repeat values freely.
TEST(Csv, DuplicateHeaderNamesAreAnErrorNamingThemAndTheirColumns) {
  TempDir dir;
  EXPECT_THAT(csv_error(dir, "a,b,a,y\n1,2,3,x\n"),
              HasSubstr("e.csv:1: duplicate column names in the header: 'a' in columns 1 and 3"));
  EXPECT_THAT(csv_error(dir, "a,b,a,b,a,y\n1,2,3,4,5,x\n"),
              HasSubstr("'a' in columns 1, 3 and 5; 'b' in columns 2 and 4"));
  write_file(dir.file("e.csv"), std::string("\n\nx,y,x\n1,2,3\n"));
  EXPECT_THAT(error_of<backprop::FileError>([&] { bpd::read_csv_features(dir.file("e.csv")); }),
              HasSubstr("e.csv:3: duplicate column names in the header: 'x' in columns 1 and 3"));
  write_file(dir.file("n.csv"), std::string("1,1,1,x\n2,2,2,y\n"));
  EXPECT_EQ(bpd::read_csv(dir.file("n.csv")).size(), 2);
}

// CsvOptions::features picks a model's columns by name, in its order, from a table that may hold them in
// another order and hold more; the columns it does not name are not parsed.
TEST(CsvFeatures, SelectedByNameInTheGivenOrder) {
  TempDir dir;
  write_file(dir.file("t.csv"), std::string("note,c,species,a,b\nhi,3,x,1,2\nyo,6,y,4,5\n"));
  const bpd::TensorDataset d =
      bpd::read_csv(dir.file("t.csv"), {.target = "species", .features = {"a", "b", "c"}});
  EXPECT_EQ(d.features.to_vector(), (std::vector<double>{1, 2, 3, 4, 5, 6}));
  EXPECT_EQ(d.feature_names, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(d.class_names, (std::vector<std::string>{"x", "y"}));
  // Without a target name, the target is the one column besides the features; with two it is ambiguous.
  write_file(dir.file("u.csv"), std::string("c,species,a,b\n3,x,1,2\n"));
  EXPECT_EQ(bpd::read_csv(dir.file("u.csv"), {.features = {"a", "b", "c"}}).class_names,
            (std::vector<std::string>{"x"}));
  EXPECT_THAT(error_of<backprop::FileError>([&] {
                bpd::read_csv(dir.file("t.csv"), {.features = {"a", "b", "c"}});
              }),
              HasSubstr("t.csv:1: besides the feature columns the header holds 'note', 'species'"));
  // A feature the header lacks is named, with the header's names.
  EXPECT_THAT(error_of<backprop::FileError>([&] {
                bpd::read_csv(dir.file("t.csv"), {.target = "species", .features = {"a", "d", "c", "e"}});
              }),
              HasSubstr("t.csv:1: no column named 'd', 'e'; the feature columns are 'a', 'd', 'c', 'e'; "
                        "the header holds 'note', 'c', 'species', 'a', 'b'"));
  EXPECT_THAT(error_of<backprop::FileError>([&] {
                bpd::read_csv(dir.file("t.csv"), {.target = "a", .features = {"a", "b", "c"}});
              }),
              HasSubstr("column 'a' is both the target and a feature column"));
  EXPECT_THAT(error_of<backprop::ValueError>([&] {
                bpd::read_csv(dir.file("t.csv"), {.target = "species", .features = {"a", "b", "a"}});
              }),
              HasSubstr("the feature columns to read repeat a name"));
  // Features only (predict): the same selection; every other column is ignored.
  EXPECT_EQ(bpd::read_csv_features(dir.file("t.csv"), {"c", "a"}).to_vector(),
            (std::vector<double>{3, 1, 6, 4}));
}

// Without a header row, the columns are the features in file order, and their count must be the expected
// one (plus the target): a column too many or too few is refused naming both counts, never dropped.
TEST(CsvFeatures, WithoutAHeaderTheCountMustMatch) {
  TempDir dir;
  write_file(dir.file("h.csv"), std::string("1,2,3\n4,5,6\n"));
  EXPECT_EQ(bpd::read_csv_features(dir.file("h.csv"), {"a", "b", "c"}).to_vector(),
            (std::vector<double>{1, 2, 3, 4, 5, 6}));
  EXPECT_THAT(error_of<backprop::FileError>([&] {
                bpd::read_csv_features(dir.file("h.csv"), {"a", "b"});
              }),
              HasSubstr("h.csv:1: has 3 columns and no header row; expected 2 feature columns ('a', 'b', "
                        "in this order), or a header row naming them"));
  EXPECT_THAT(error_of<backprop::FileError>([&] {
                bpd::read_csv_features(dir.file("h.csv"), {"a", "b", "c", "d"});
              }),
              HasSubstr("has 3 columns and no header row; expected 4 feature columns"));
  write_file(dir.file("l.csv"), std::string("1,2,x\n4,5,y\n"));
  EXPECT_EQ(bpd::read_csv(dir.file("l.csv"), {.features = {"a", "b"}}).features.to_vector(),
            (std::vector<double>{1, 2, 4, 5}));
  EXPECT_THAT(error_of<backprop::FileError>([&] {
                bpd::read_csv(dir.file("l.csv"), {.features = {"a", "b", "c"}});
              }),
              HasSubstr("has 3 columns and no header row; expected 3 feature columns ('a', 'b', 'c', in "
                        "this order) and the target column"));
  EXPECT_THAT(error_of<backprop::ValueError>(
                  [&] { bpd::read_csv_features(dir.file("h.csv"), std::vector<std::string>{}); }),
              HasSubstr("needs at least one column name"));
}

// Choosing columns by name is linear in the number of columns: a table 40,000 columns wide, read with every
// column chosen in reverse order, takes about as long as reading it whole (a name-by-name search would make
// 8 * 10^8 string comparisons: about 25 times longer). The bound is a ratio of two reads in this test.
TEST(CsvFeatures, ChoosingColumnsByNameIsLinearInTheColumnCount) {
  TempDir dir;
  const int columns = 40000;
  std::string header, row;
  std::vector<std::string> names;
  for (int c = 0; c < columns; ++c) {
    names.push_back("feature_" + std::to_string(c));
    header += (c ? "," : "") + names.back();
    row += (c ? "," : "") + std::to_string(c % 10);
  }
  write_file(dir.file("wide.csv"), header + "\n" + row + "\n" + row + "\n");
  const std::vector<std::string> reversed(names.rbegin(), names.rend());
  auto seconds = [](const std::function<void()>& f) {
    double best = 1e9;
    for (int k = 0; k < 3; ++k) {
      const auto start = std::chrono::steady_clock::now();
      f();
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    return best;
  };
  backprop::Tensor chosen, whole;
  const double plain = seconds([&] { whole = bpd::read_csv_features(dir.file("wide.csv")); });
  const double by_name = seconds([&] { chosen = bpd::read_csv_features(dir.file("wide.csv"), reversed); });
  ASSERT_EQ(chosen.shape(), (backprop::Shape{2, columns}));
  EXPECT_EQ(chosen.at({1, 0}), whole.at({1, columns - 1}));
  EXPECT_LT(by_name, 10 * plain) << by_name << " s by name, " << plain << " s whole";
}
