// CSV reader: a small RFC 4180 tokenizer and the table -> TensorDataset conversion.
#include <algorithm>
#include <backprop/data/csv.hpp>
#include <charconv>
#include <cmath>
#include <limits>
#include <map>
#include <optional>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

#include "data/byte_source.hpp"

namespace backprop::data {
namespace {

struct Cell {
  std::string text;
  std::int64_t line = 0;  // where the field starts (a quoted field may span lines)
  bool quoted = false;
};

// Splits text into records of fields. Handles a UTF-8 BOM, LF / CRLF / CR line ends, quoted fields with ""
// escapes and embedded delimiters or newlines. Spaces around unquoted fields are trimmed. Blank lines are
// skipped.
class Tokenizer {
 public:
  Tokenizer(std::string text, char delimiter, std::string path)
      : text_(std::move(text)), delim_(delimiter), path_(std::move(path)) {
    if (std::string_view(text_).starts_with("\xef\xbb\xbf")) pos_ = 3;
  }

  /// Fills `row` with the next non-blank record; false at the end of the text.
  bool next(std::vector<Cell>& row) {
    while (pos_ < text_.size()) {
      row.clear();
      record_line_ = line_;
      bool end_of_record = false;
      while (!end_of_record) {
        field_ = static_cast<std::int64_t>(row.size()) + 1;
        row.push_back(field());
        end_of_record = pos_ >= text_.size() || text_[pos_] != delim_;
        if (!end_of_record) ++pos_;  // the delimiter
      }
      end_line();
      const bool blank = row.size() == 1 && !row[0].quoted && row[0].text.empty();
      if (!blank) return true;
    }
    return false;
  }

  std::int64_t record_line() const { return record_line_; }

 private:
  bool is_space(char c) const { return (c == ' ' || c == '\t') && c != delim_; }
  bool at_line_end() const { return pos_ >= text_.size() || text_[pos_] == '\n' || text_[pos_] == '\r'; }

  void end_line() {
    if (pos_ >= text_.size()) return;
    if (text_[pos_] == '\r') ++pos_;
    if (pos_ < text_.size() && text_[pos_] == '\n') ++pos_;
    ++line_;
  }

  Cell field() {
    Cell cell;
    cell.line = line_;
    std::size_t start = pos_;
    while (pos_ < text_.size() && is_space(text_[pos_])) ++pos_;
    if (pos_ < text_.size() && text_[pos_] == '"') {
      cell.quoted = true;
      const std::int64_t open_line = line_;
      ++pos_;
      for (;;) {
        BP_CHECK(pos_ < text_.size(), FileError, path_, ":", open_line, ":", field_,
                 ": unterminated quoted field", " (the file ends inside quotes); expected a closing \"");
        const char c = text_[pos_++];
        if (c == '"') {
          if (pos_ < text_.size() && text_[pos_] == '"') {
            cell.text += '"';
            ++pos_;
            continue;
          }
          break;
        }
        if (c == '\n' || (c == '\r' && (pos_ >= text_.size() || text_[pos_] != '\n'))) ++line_;
        cell.text += c;
      }
      while (pos_ < text_.size() && is_space(text_[pos_])) ++pos_;
      BP_CHECK(at_line_end() || text_[pos_] == delim_, FileError, path_, ":", line_, ":", field_,
               ": unexpected '", text_[pos_], "' after the closing quote; expected the delimiter '", delim_,
               "' or the end of the line");
    } else {
      while (!at_line_end() && text_[pos_] != delim_) ++pos_;
      std::size_t stop = pos_;
      while (start < stop && is_space(text_[start])) ++start;
      while (stop > start && is_space(text_[stop - 1])) --stop;
      cell.text.assign(text_, start, stop - start);
    }
    return cell;
  }

  std::string text_;
  char delim_;
  std::string path_;
  std::size_t pos_ = 0;
  std::int64_t line_ = 1;
  std::int64_t record_line_ = 1;
  std::int64_t field_ = 1;  // 1-based number of the field being read, for messages
};

// A number as C would print it: optional sign, digits, '.', exponent; "nan"/"inf" parse but are not finite.
// A value beyond double's range becomes +-inf (then reported as not finite); one too small becomes 0.
std::optional<double> parse_number(std::string_view s) {
  if (s.starts_with('+')) s.remove_prefix(1);
  if (s.empty()) return std::nullopt;
  double v = 0.0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (end != s.data() + s.size()) return std::nullopt;
  if (ec == std::errc::result_out_of_range) {
    // Too small when the exponent is negative, or (no exponent) when there is no integer part: 0.000...01.
    const std::size_t e = s.find_first_of("eE");
    const std::string_view digits = s.substr(s.starts_with('-') ? 1 : 0);
    const bool underflow =
        e != s.npos ? s.substr(e + 1).starts_with('-') : digits.starts_with('0') || digits.starts_with('.');
    if (underflow) return 0.0;
    return s.starts_with('-') ? -std::numeric_limits<double>::infinity()
                              : std::numeric_limits<double>::infinity();
  }
  if (ec != std::errc()) return std::nullopt;
  return v;
}

std::optional<std::int64_t> parse_index(const std::string& s) {
  if (s.empty() || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  std::int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return v;
}

// What read_table should do with the special column (the target, or a dropped column).
enum class Special { target_label, target_number, drop };

struct Table {
  std::vector<float> features;  // row-major [n, d]
  std::vector<std::string> labels;
  std::vector<std::int64_t> label_lines;
  std::vector<float> values;  // regression targets
  std::vector<std::string> feature_names;
  std::int64_t n = 0, d = 0;
  std::int64_t special_col = -1;  // 0-based, -1 none
};

struct Reader {
  std::string path;
  std::vector<std::string> names;  // header, if any

  std::string where(const Cell& c, std::int64_t col) const {
    std::string s = path + ":" + std::to_string(c.line) + ":" + std::to_string(col + 1) + ": ";
    return s;
  }
  std::string column_label(std::int64_t col) const {
    return names.empty() ? "column " + std::to_string(col + 1)
                         : "column '" + names[static_cast<std::size_t>(col)] + "'";
  }
  double number(const Cell& c, std::int64_t col) const {
    BP_CHECK(!c.text.empty(), FileError, where(c, col), "empty cell in ", column_label(col),
             "; expected a number");
    const auto v = parse_number(c.text);
    BP_CHECK(v.has_value(), FileError, where(c, col), "'", c.text, "' in ", column_label(col),
             " is not a number");
    BP_CHECK(std::isfinite(*v), FileError, where(c, col), "'", c.text, "' in ", column_label(col),
             " is not a finite number; expected a finite value (fill or drop missing data first)");
    BP_CHECK(std::abs(*v) <= std::numeric_limits<float>::max(), FileError, where(c, col), "'", c.text,
             "' in ", column_label(col), " does not fit in float32");
    return *v;
  }
};

// 'a', 'b', 'c' (the first `most` of them, then "and N more").
std::string quoted_list(const std::vector<std::string>& names, std::size_t most = 20) {
  std::string s;
  for (std::size_t i = 0; i < names.size() && i < most; ++i) s += (i ? ", '" : "'") + names[i] + "'";
  if (names.size() > most) s += " and " + std::to_string(names.size() - most) + " more";
  return s;
}

// Throws FileError naming every header name that appears more than once, with its 1-based columns.
void check_unique(const std::string& path, std::int64_t line, const std::vector<std::string>& names) {
  std::map<std::string, std::vector<std::size_t>> columns;
  std::vector<std::string> order;  // names in order of first appearance
  for (std::size_t c = 0; c < names.size(); ++c) {
    std::vector<std::size_t>& at = columns[names[c]];
    if (at.empty()) order.push_back(names[c]);
    at.push_back(c + 1);
  }
  std::string dups;
  for (const std::string& name : order) {
    const std::vector<std::size_t>& at = columns[name];
    if (at.size() < 2) continue;
    dups += (dups.empty() ? "'" : "; '") + name + "' in columns ";
    for (std::size_t k = 0; k < at.size(); ++k)
      dups += (k == 0 ? "" : k + 1 == at.size() ? " and " : ", ") + std::to_string(at[k]);
  }
  BP_CHECK(dups.empty(), FileError, path, ":", line, ": duplicate column names in the header: ", dups,
           "; every column needs its own name");
}

// `select`: when not empty, the feature columns by header name, in this order (see CsvOptions::features).
Table read_table(const std::string& path, char delim, int header, const std::string& special_spec,
                 Special mode, const std::vector<std::string>& select = {}) {
  BP_CHECK(delim != '"' && delim != '\n' && delim != '\r' && delim != '\0', ValueError, path,
           ": the delimiter cannot be a quote, a line end or NUL");
  BP_CHECK(header >= -1 && header <= 1, ValueError, path,
           ": header must be -1 (auto), 0 (no) or 1 (yes), got ", header);
  std::string text = detail::read_text_file(path);
  {
    const std::string kind = detail::describe_wrong_file(reinterpret_cast<const unsigned char*>(text.data()),
                                                         std::min<std::size_t>(text.size(), 512));
    BP_CHECK(kind.empty(), FileError, path, ": is ", kind, "; expected a CSV table");
  }
  Tokenizer tok(std::move(text), delim, path);
  std::vector<Cell> first;
  BP_CHECK(tok.next(first), FileError, path, ": is empty; expected a CSV table (a header row is optional)");
  const auto ncols = static_cast<std::int64_t>(first.size());
  const std::int64_t first_line = tok.record_line();
  const bool needs_target = mode == Special::target_label || mode == Special::target_number;
  BP_CHECK(!needs_target || ncols >= 2, FileError, path, ":", first_line, ": found ", ncols,
           " column; expected at least 2 (features and a target)");

  // Resolve the special column: a header name first, then a 0-based index, default last (for the target).
  Table t;
  bool named = false;
  if (!special_spec.empty() && header != 0) {
    // In auto mode only a cell that is not a number can be a column name: with "3,0,1" as the first row, a
    // target "0" is the index 0, not the column whose first value happens to be 0.
    for (std::int64_t c = 0; c < ncols; ++c)
      if (first[static_cast<std::size_t>(c)].text == special_spec &&
          (header == 1 || !parse_number(special_spec))) {
        t.special_col = c;
        named = true;
        break;
      }
  }
  if (t.special_col < 0 && !special_spec.empty()) {
    const auto idx = parse_index(special_spec);
    if (idx) {
      BP_CHECK(*idx < ncols, FileError, path, ": ", needs_target ? "target" : "dropped", " column index ",
               *idx, " is out of range; the file has ", ncols, " columns (0 to ", ncols - 1, ")");
      t.special_col = *idx;
    } else {
      std::vector<std::string> have;
      for (const Cell& c : first) have.push_back(c.text);
      BP_CHECK(false, FileError, path, ": no column named '", special_spec, "'",
               header == 0 ? " (reading without a header row)" : "", "; the first row holds ",
               quoted_list(have));
    }
  }

  // Hashed, so that matching names stays linear in the number of columns.
  const std::unordered_set<std::string> selected(select.begin(), select.end());
  BP_CHECK(selected.size() == select.size(), ValueError, path,
           ": the feature columns to read repeat a name; each must be given once");
  bool has_header = header == 1 || named;
  if (header == -1 && !has_header) {
    // A data row's only text may be its label, in the target column (by default the last).
    const std::int64_t label_col = t.special_col >= 0 ? t.special_col : needs_target ? ncols - 1 : -1;
    for (std::int64_t c = 0; c < ncols; ++c) {
      const Cell& cell = first[static_cast<std::size_t>(c)];
      if (c != label_col && !cell.text.empty() && !parse_number(cell.text)) has_header = true;
      if (selected.count(cell.text) != 0) has_header = true;
    }
  }

  Reader r{path, {}};
  if (has_header) {
    for (const Cell& c : first) r.names.push_back(c.text);
    check_unique(path, first_line, r.names);
  }
  // The feature index of each column, or -1 (the special column, or a column not selected).
  std::vector<std::int64_t> slot(static_cast<std::size_t>(ncols), -1);
  if (!select.empty() && has_header) {
    std::unordered_map<std::string, std::size_t> column;  // header names are unique (check_unique)
    for (std::size_t c = 0; c < r.names.size(); ++c) column.emplace(r.names[c], c);
    std::vector<std::string> missing;
    for (std::size_t k = 0; k < select.size(); ++k) {
      const auto it = column.find(select[k]);
      if (it == column.end())
        missing.push_back(select[k]);
      else
        slot[it->second] = static_cast<std::int64_t>(k);
    }
    BP_CHECK(missing.empty(), FileError, path, ":", first_line, ": no column named ", quoted_list(missing),
             "; the feature columns are ", quoted_list(select), "; the header holds ", quoted_list(r.names));
    if (t.special_col < 0 && needs_target) {  // the target: the one column that is not a feature
      std::vector<std::string> others;
      for (std::int64_t c = 0; c < ncols; ++c)
        if (slot[static_cast<std::size_t>(c)] < 0) {
          others.push_back(r.names[static_cast<std::size_t>(c)]);
          t.special_col = c;
        }
      BP_CHECK(!others.empty(), FileError, path, ":", first_line,
               ": no target column: every column is a feature (", quoted_list(select),
               "); add the target column");
      BP_CHECK(others.size() == 1, FileError, path, ":", first_line,
               ": besides the feature columns the header holds ", quoted_list(others),
               "; name the target column (CsvOptions::target; --target on the command line)");
    }
    BP_CHECK(t.special_col < 0 || slot[static_cast<std::size_t>(t.special_col)] < 0, FileError, path, ":",
             first_line, ": column '", r.names[static_cast<std::size_t>(t.special_col)],
             "' is both the target and a feature column");
    t.feature_names = select;
  } else {
    if (t.special_col < 0 && needs_target) t.special_col = ncols - 1;
    const std::int64_t kept = ncols - (t.special_col >= 0 ? 1 : 0);
    BP_CHECK(select.empty() || kept == static_cast<std::int64_t>(select.size()), FileError, path, ":",
             first_line, ": has ", ncols, " columns and no header row; expected ", select.size(),
             " feature columns (", quoted_list(select), ", in this order)",
             t.special_col >= 0 ? " and the target column" : "", ", or a header row naming them");
    std::int64_t k = 0;
    for (std::int64_t c = 0; c < ncols; ++c)
      if (c != t.special_col) {
        slot[static_cast<std::size_t>(c)] = k++;
        if (has_header) t.feature_names.push_back(r.names[static_cast<std::size_t>(c)]);
      }
  }
  t.d = static_cast<std::int64_t>(
      std::count_if(slot.begin(), slot.end(), [](std::int64_t k) { return k >= 0; }));
  BP_CHECK(t.d >= 1, FileError, path, ":", first_line, ": no feature columns left after removing column ",
           t.special_col + 1, "; expected at least one numeric column");

  std::vector<Cell> row;
  std::vector<float> values(static_cast<std::size_t>(t.d));
  auto take = [&](const std::vector<Cell>& cells, std::int64_t line) {
    BP_CHECK(static_cast<std::int64_t>(cells.size()) == ncols, FileError, path, ":", line, ":",
             std::min<std::int64_t>(static_cast<std::int64_t>(cells.size()), ncols) + 1, ": row has ",
             cells.size(), " fields; expected ", ncols, " like line ", first_line, " (ragged rows)");
    for (std::int64_t c = 0; c < ncols; ++c) {
      const Cell& cell = cells[static_cast<std::size_t>(c)];
      const std::int64_t k = slot[static_cast<std::size_t>(c)];
      if (k >= 0) {
        values[static_cast<std::size_t>(k)] = static_cast<float>(r.number(cell, c));
      } else if (c != t.special_col) {
        continue;  // a column that is not selected: not read
      } else if (mode == Special::target_number) {
        t.values.push_back(static_cast<float>(r.number(cell, c)));
      } else if (mode == Special::target_label) {
        BP_CHECK(!cell.text.empty(), FileError, r.where(cell, c), "empty label in ", r.column_label(c),
                 "; expected a class label");
        t.labels.push_back(cell.text);
        t.label_lines.push_back(cell.line);
      }
    }
    t.features.insert(t.features.end(), values.begin(), values.end());
    ++t.n;
  };
  if (!has_header) take(first, first_line);
  while (tok.next(row)) take(row, tok.record_line());
  BP_CHECK(t.n > 0, FileError, path, ": has a header row but no data rows; expected at least one example");
  return t;
}

}  // namespace

TensorDataset read_csv(const std::string& path, const CsvOptions& options) {
  const bool classify = options.task == Task::classification;
  Table t = read_table(path, options.delimiter, options.header, options.target,
                       classify ? Special::target_label : Special::target_number, options.features);
  TensorDataset out;
  out.task = options.task;
  out.feature_names = std::move(t.feature_names);
  out.features = from_vector(t.features, {t.n, t.d});
  if (!classify) {
    out.targets = from_vector(t.values, {t.n});
    return out;
  }
  std::vector<std::string> names = options.class_names;
  if (names.empty()) {
    names = t.labels;
    std::sort(names.begin(), names.end());
    names.erase(std::unique(names.begin(), names.end()), names.end());
    const bool numeric = std::all_of(names.begin(), names.end(), [](const std::string& s) {
      const auto v = parse_number(s);
      return v && std::isfinite(*v);
    });
    // Sorted numerically when every label is a number ("2" before "10"), else by bytes: the mapping depends
    // only on the set of labels, not on the order rows appear in.
    if (numeric)
      std::stable_sort(names.begin(), names.end(), [](const std::string& a, const std::string& b) {
        return *parse_number(a) < *parse_number(b);
      });
  }
  std::map<std::string, std::int64_t> index;
  for (std::size_t k = 0; k < names.size(); ++k) index.emplace(names[k], static_cast<std::int64_t>(k));
  out.targets = Tensor({t.n}, i64);
  std::int64_t* y = out.targets.data<std::int64_t>();
  for (std::size_t i = 0; i < t.labels.size(); ++i) {
    const auto it = index.find(t.labels[i]);
    if (it == index.end()) {
      std::string known;
      for (std::size_t k = 0; k < names.size() && k < 20; ++k) known += (k ? ", '" : "'") + names[k] + "'";
      if (names.size() > 20) known += ", ...";
      BP_CHECK(false, FileError, path, ":", t.label_lines[i], ":", t.special_col + 1, ": label '",
               t.labels[i], "' is not one of the ", names.size(), " known classes (", known, ")");
    }
    y[i] = it->second;
  }
  out.num_classes = static_cast<std::int64_t>(names.size());
  out.class_names = std::move(names);
  return out;
}

std::vector<std::string> read_csv_first_row(const std::string& path, char delimiter) {
  Tokenizer tok(detail::read_text_file(path), delimiter, path);
  std::vector<Cell> cells;
  BP_CHECK(tok.next(cells), FileError, path, ": is empty; expected a CSV table");
  std::vector<std::string> fields;
  for (Cell& c : cells) fields.push_back(std::move(c.text));
  return fields;
}

Tensor read_csv_features(const std::string& path, char delimiter, int header,
                         const std::string& drop_column) {
  Table t = read_table(path, delimiter, header, drop_column, Special::drop);
  return from_vector(t.features, {t.n, t.d});
}

Tensor read_csv_features(const std::string& path, const std::vector<std::string>& columns, char delimiter,
                         int header) {
  BP_CHECK(!columns.empty(), ValueError, path, ": read_csv_features needs at least one column name");
  Table t = read_table(path, delimiter, header, "", Special::drop, columns);
  return from_vector(t.features, {t.n, t.d});
}

std::vector<std::string> read_csv_feature_names(const std::string& path, char delimiter, int header,
                                                const std::string& drop_column) {
  return read_table(path, delimiter, header, drop_column, Special::drop).feature_names;
}

}  // namespace backprop::data
