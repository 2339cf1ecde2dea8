// backprop/data/csv.hpp — numeric tables from CSV files.
//
// One row per example; every column except the target is a numeric feature. The target column holds class
// labels (any text: "setosa", "3") for classification or numbers for regression. Understands a UTF-8 byte
// order mark, CRLF or LF line ends, quoted fields ("a,b" and "" for a quote), an optional header row. Blank
// lines are skipped. Anything else wrong is a FileError "file:line:column: what was found, what was expected"
// (column = 1-based field number, with the header name when there is one).
//
// Example:
//   auto iris = bp::data::read_csv("iris.csv", {.target = "species"});          // classification
//   auto houses = bp::data::read_csv("houses.csv", {.target = "price", .task = bp::data::Task::regression});
//   // reuse a trained model's label mapping on new data: unknown labels are an error
//   auto test = bp::data::read_csv("iris_test.csv", {.target = "species", .class_names = iris.class_names});
#pragma once

#include <backprop/data/dataset.hpp>
#include <string>
#include <vector>

namespace backprop::data {

struct CsvOptions {
  std::string target;                    // column name or 0-based index as text; empty = last column
  Task task = Task::classification;      // what the target column holds
  char delimiter = ',';                  // field separator (not '"', '\r' or '\n')
  int header = -1;                       // -1 auto, 0 no header, 1 first row is a header
  std::vector<std::string> class_names;  // if given, map labels with THIS mapping; unknown label -> error
  /// If given, the feature columns by header name, in this order (a trained model's): with a header row,
  /// only these columns are features, in this order, and every other column but the target is ignored (not
  /// parsed); a name the header lacks is an error naming it; an empty `target` is then the one column that
  /// is not a feature (an error when there are several). Without a header row the table must have exactly
  /// these many feature columns (plus the target), taken in file order. Empty: every column but the target.
  std::vector<std::string> features;
};

/// Reads a labelled table. features [N, D] f32 (D = columns - 1); targets [N]: i64 class indices
/// (classification) or f32 values (regression).
///
/// Target column: `target` is matched against the header names first, then read as a 0-based index;
/// empty means the last column.
///
/// Header auto-detection: the first row is a header when one of its cells outside the target column is not
/// a number, when `target` is not a number and names one of its cells, or when a cell is one of `features`.
/// The names of a header row must be unique. With header = 1 a numeric `target`
/// also matches a name first (header "0,1,2" with target "1" selects the column named "1").
///
/// Classification: labels are the target cells' text (surrounding spaces trimmed). Without class_names they
/// are sorted, numerically when every label is a number ("2" < "10"), else by bytes, and numbered in that
/// order, so the mapping does not depend on row order. Regression: the target cells must be finite numbers.
///
/// Throws FileError "file:line:column: ..." for: a row with a different number of fields than the first
/// (ragged); an empty cell; a cell that is not a number, is nan/inf or overflows float32; an empty label; an
/// unknown label (with class_names); an unterminated quote; text after a closing quote. FileError naming
/// the file for: cannot open; empty; header only; an HTML page or Git-LFS pointer; a target name or index
/// that matches no column; fewer than two columns; a name that appears more than once in the header (naming
/// it and its columns); with `features`: a feature the header lacks, a headerless table with another number
/// of columns (naming both counts), a target column that is also a feature. ValueError for a delimiter that is '"', CR, LF or NUL,
/// or a header value outside {-1, 0, 1}.
TensorDataset read_csv(const std::string& path, const CsvOptions& options = {});

/// Reads a table of features only (for predict): every column a number, except `drop_column` (a name or a
/// 0-based index as text, e.g. a label column to ignore) when given. Same parsing and errors as read_csv;
/// header auto-detection looks at every kept column. Returns [N, D] f32.
Tensor read_csv_features(const std::string& path, char delimiter = ',', int header = -1,
                         const std::string& drop_column = "");

/// Reads the columns named `columns` (header names, in this order) as features [N, columns.size()] f32,
/// ignoring every other column (it is not parsed): a model's inputs from a table that may hold more. A table
/// without a header row must have exactly columns.size() columns, taken in file order. Same parsing and
/// errors as read_csv with CsvOptions::features; ValueError when `columns` is empty.
Tensor read_csv_features(const std::string& path, const std::vector<std::string>& columns,
                         char delimiter = ',', int header = -1);

/// The fields of the file's first non-blank record (its header, or its first row of data), parsed as read_csv
/// parses (BOM, quotes, CRLF): to look at a table's columns before reading it. Throws FileError naming the file
/// when it cannot be read or is empty.
std::vector<std::string> read_csv_first_row(const std::string& path, char delimiter = ',');

/// The header names read_csv_features would keep, or empty when the file has no header.
std::vector<std::string> read_csv_feature_names(const std::string& path, char delimiter = ',',
                                                int header = -1, const std::string& drop_column = "");

}  // namespace backprop::data
