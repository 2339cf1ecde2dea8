// Data sets named by a configuration, and new data read for a saved model (backprop/data/source.hpp).
#include <algorithm>
#include <backprop/data/csv.hpp>
#include <backprop/data/idx.hpp>
#include <backprop/data/source.hpp>
#include <backprop/data/standardize.hpp>
#include <backprop/error.hpp>
#include <backprop/io.hpp>
#include <backprop/ops.hpp>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <unordered_set>

namespace backprop::data {

namespace fs = std::filesystem;

namespace {

enum class Kind { fashion, idx_dir, csv };

constexpr const char* kFashion = "fashion-mnist";

Kind kind_of(const std::string& source, const std::string& origin) {
  if (source == kFashion) return Kind::fashion;
  std::error_code ec;
  if (fs::is_directory(source, ec)) return Kind::idx_dir;
  if (fs::exists(source, ec)) return Kind::csv;
  if (!config::closest(source, {kFashion}).empty())
    throw ConfigError(origin + ": unknown data source '" + source + "'; did you mean '" + kFashion + "'?");
  throw FileError(origin + ": '" + source +
                  "' does not exist (expected fashion-mnist, a directory of IDX files, or a .csv file)");
}

// Runs a data-reading step, turning a data problem reported as another backprop::Error into a FileError that
// says which data it was about.
template <class F>
auto reading(const std::string& what, F&& f) {
  try {
    return f();
  } catch (const FileError&) {
    throw;
  } catch (const OutOfMemoryError&) {
    throw;
  } catch (const ConfigError&) {
    throw;
  } catch (const Error& e) {
    throw FileError(what + ": " + e.what());
  }
}

std::vector<std::int64_t> image_shape(std::int64_t d) {
  const auto side = static_cast<std::int64_t>(std::llround(std::sqrt(static_cast<double>(d))));
  if (side * side == d) return {side, side};
  return {1, d};
}

// Regression targets as [N, 1], the network's output shape.
void column_targets(TensorDataset& d) {
  if (d.task == Task::regression && d.targets.defined() && d.targets.dim() == 1)
    d.targets = d.targets.reshape({d.targets.size(0), 1});
}

TensorDataset standardized(TensorDataset d, const io::Preprocessing& p) {
  if (d.size() > 0) d.features = p.apply(d.features);
  return d;
}

void check_features(const TensorDataset& d, std::int64_t expected, const std::string& what) {
  BP_CHECK(d.num_features() == expected, FileError, what, " has ", d.num_features(),
           " features per example, ", "expected ", expected, " (as the training data / the model)");
}

// 'a', 'b', 'c' (the first ten, then "and N more").
std::string quoted(const std::vector<std::string>& names) {
  std::string s;
  for (std::size_t i = 0; i < names.size() && i < 10; ++i) s += (i ? ", '" : "'") + names[i] + "'";
  if (names.size() > 10) s += " and " + std::to_string(names.size() - 10) + " more";
  return s;
}

// Images of `values` pixels in words: "784 (28x28 images)".
std::string images_text(std::int64_t values) {
  const std::vector<std::int64_t> side = image_shape(values);
  return std::to_string(values) + " (" + std::to_string(side[0]) + "x" + std::to_string(side[1]) + " images)";
}

// What the model takes, in words: "4 features (columns 'sepal', ...)", "784 features (28x28 images)".
std::string model_inputs(const io::ModelFile& m) {
  const io::Preprocessing& p = m.preprocessing;
  const std::string n = std::to_string(m.architecture.inputs) + " features";
  if (p.input == "image" && p.image_shape.size() == 2)
    return n + " (" + std::to_string(p.image_shape[0]) + "x" + std::to_string(p.image_shape[1]) + " images)";
  if (!p.feature_names.empty()) return n + " (columns " + quoted(p.feature_names) + ")";
  return n + " (columns of a table without a header row)";
}

// A model/data mismatch, naming both shapes: "the model takes 3 features (...), the data has 784 (...)".
[[noreturn]] void mismatch(const std::string& where, const io::ModelFile& m, const std::string& data) {
  throw FileError(where + ": the model takes " + model_inputs(m) + ", the data has " + data);
}

bool is_number(const std::string& s) {
  if (s.empty()) return false;
  char* end = nullptr;
  std::strtod(s.c_str(), &end);
  return end == s.c_str() + s.size();
}

bool looks_like_idx(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  unsigned char b[3] = {0, 0, 0};
  in.read(reinterpret_cast<char*>(b), 3);
  if (in.gcount() < 3) return false;
  return (b[0] == 0x1f && b[1] == 0x8b) || (b[0] == 0 && b[1] == 0 && b[2] == 0x08);
}

// The target column's name in `header`, as read_csv picks it: `spec` as a name, or as a 0-based index, or
// (empty) the column that is not a feature.
std::string target_column(const std::vector<std::string>& header, const std::string& spec,
                          const std::vector<std::string>& features) {
  if (std::find(header.begin(), header.end(), spec) != header.end()) return spec;
  std::size_t i = 0;
  const auto [end, ec] = std::from_chars(spec.data(), spec.data() + spec.size(), i);
  if (!spec.empty() && ec == std::errc() && end == spec.data() + spec.size())
    return i < header.size() ? header[i] : "";
  const std::unordered_set<std::string> feature(features.begin(), features.end());
  for (auto it = header.rbegin(); it != header.rend(); ++it)
    if (feature.count(*it) == 0) return *it;
  return "";
}

// The header columns not in `used`, in file order.
std::vector<std::string> unused(const std::vector<std::string>& header,
                                const std::vector<std::string>& used) {
  const std::unordered_set<std::string> read(used.begin(), used.end());
  std::vector<std::string> out;
  for (const std::string& name : header)
    if (read.count(name) == 0) out.push_back(name);
  return out;
}

std::uint64_t nbytes_of(const TensorDataset& d) {
  return (d.features.defined() ? d.features.nbytes() : 0) + (d.targets.defined() ? d.targets.nbytes() : 0);
}

}  // namespace

std::uint64_t TrainingData::nbytes() const {
  return nbytes_of(train) + nbytes_of(validation) + nbytes_of(test);
}

TrainingData load_training_data(const config::Config& cfg) {
  const config::DataConfig& dc = cfg.data;
  const Kind kind = kind_of(dc.source, "--data");
  TrainingData out;
  out.name = dc.source;
  TensorDataset all;
  io::Preprocessing& pre = out.preprocessing;
  if (kind == Kind::csv) {
    BP_CHECK(dc.augment.empty(), ConfigError, "--augment ", dc.augment,
             " needs image data (IDX files); --data ", dc.source, " is a table");
    const bool regression = dc.task == "regression";
    all = reading(dc.source, [&] {
      return read_csv(dc.source,
                      {.target = dc.target, .task = regression ? Task::regression : Task::classification});
    });
    if (dc.limit_train > 0) all = all.head(dc.limit_train);
    if (!dc.test.empty()) {
      // The training file's feature columns, by name when both files have a header row.
      CsvOptions opt{.target = dc.target, .task = all.task, .features = all.feature_names};
      if (!regression) opt.class_names = all.class_names;
      out.test = reading(dc.test, [&] { return read_csv(dc.test, opt); });
      if (dc.limit_test > 0) out.test = out.test.head(dc.limit_test);
      check_features(out.test, all.num_features(), dc.test);
    }
    pre.input = "table";
    pre.feature_names = all.feature_names;
    pre.target = dc.target;
  } else {
    BP_CHECK(dc.task == "classification", ConfigError,
             "--task regression needs a CSV file; IDX data (--data ", dc.source, ") is for classification");
    const std::string dir = kind == Kind::fashion ? FashionMNIST::default_dir : dc.source;
    all = reading(dir, [&] {
      if (kind == Kind::fashion)  // its own loader: a missing file's message says how to install it
        return FashionMNIST::load(dir, Split::train, dc.limit_train);
      return load_idx_dir(dir, Split::train, dc.limit_train);
    });
    const std::string test_dir = dc.test.empty() ? dir : dc.test;
    out.test = reading(test_dir, [&] {
      if (kind == Kind::fashion && dc.test.empty())
        return FashionMNIST::load(dir, Split::test, dc.limit_test);
      return load_idx_dir(test_dir, Split::test, dc.limit_test, all.class_names);
    });
    check_features(out.test, all.num_features(), test_dir);
    // Images [N, 1, H, W] become rows [N, H*W] (shared, not copied); `image` keeps their shape.
    if (all.features.dim() >= 3) out.image = image_shape_of(all.features);
    BP_CHECK(dc.augment.empty() || out.image.height > 0, ConfigError, "--augment ", dc.augment,
             " needs image data; the IDX files in ", dir, " hold rows ", all.features.shape(),
             ", not images");
    all = all.flattened();
    out.test = out.test.flattened();
    pre.input = "image";
    pre.pixel_scale = 1.0 / 255.0;
    pre.image_shape = image_shape(all.num_features());
  }
  reading(dc.source, [&] {
    all.validate(dc.source);
    return 0;
  });
  BP_CHECK(all.size() >= 1, FileError, dc.source, ": no training examples");
  pre.task = task_name(all.task);
  pre.class_names = all.class_names;
  if (dc.val_split > 0) {
    auto [train, validation] = train_validation_split(all, dc.val_split, cfg.run.seed);
    BP_CHECK(train.size() >= 1, ConfigError, "--val-split ", dc.val_split,
             " leaves no training examples out of ", all.size());
    out.train = std::move(train);
    out.validation = std::move(validation);
  } else {
    out.train = all;
  }
  if (kind == Kind::csv && dc.standardize) {
    const auto st = Standardizer::fit(out.train.features);
    pre.mean = st.mean;
    pre.std = st.std;
    out.train = standardized(out.train, pre);
    out.validation = standardized(out.validation, pre);
    out.test = standardized(out.test, pre);
  }
  column_targets(out.train);
  column_targets(out.validation);
  column_targets(out.test);
  return out;
}

ModelData load_eval_data(const io::ModelFile& model, const std::string& source,
                         const ModelDataOptions& options) {
  const io::Preprocessing& pre = model.preprocessing;
  const Kind kind = kind_of(source, options.origin);
  const bool regression = pre.task == "regression";
  const std::string where = options.origin + " " + source;
  ModelData out;
  TensorDataset& d = out.data;
  if (kind == Kind::csv) {
    // The model's feature columns by name when the file has a header row (others ignored), else by position.
    CsvOptions opt{.target = options.target.empty() ? pre.target : options.target,
                   .task = regression ? Task::regression : Task::classification,
                   .features = pre.feature_names};
    if (!regression) opt.class_names = pre.class_names;
    if (pre.feature_names.empty()) {  // by position: the shapes are compared before a label is mapped
      const std::size_t columns = reading(source, [&] { return read_csv_first_row(source); }).size();
      if (static_cast<std::int64_t>(columns) != model.architecture.inputs + 1)
        mismatch(where, model, std::to_string(columns - 1) + " (CSV columns besides the target)");
    }
    d = reading(source, [&] { return read_csv(source, opt); });
    if (options.limit > 0) d = d.head(options.limit);
    if (!d.feature_names.empty()) {
      const std::vector<std::string> header = read_csv_first_row(source);
      std::vector<std::string> used = d.feature_names;
      used.push_back(target_column(header, opt.target, d.feature_names));
      out.ignored_columns = unused(header, used);
    }
    if (d.num_features() != model.architecture.inputs)
      mismatch(where, model, std::to_string(d.num_features()) + " (CSV columns besides the target)");
  } else {
    BP_CHECK(!regression, FileError, options.origin, " ", source,
             ": the model does regression on a table; give a CSV file");
    const std::string dir = kind == Kind::fashion ? FashionMNIST::default_dir : source;
    // Fashion-MNIST's own loader: a missing file's message says how to install it.
    const bool fashion =
        kind == Kind::fashion && (pre.input != "image" || pre.class_names == FashionMNIST::class_names());
    if (pre.input != "image") {  // a table model given images: both shapes, before a label meets its classes
      const TensorDataset one = reading(dir, [&] {
        return fashion ? FashionMNIST::load(dir, options.split, 1) : load_idx_dir(dir, options.split, 1);
      });
      mismatch(where, model, images_text(one.num_features()));
    }
    d = reading(dir, [&] {
      if (fashion) return FashionMNIST::load(dir, options.split, options.limit);
      return load_idx_dir(dir, options.split, options.limit, pre.class_names);
    });
    if (d.num_features() != model.architecture.inputs) mismatch(where, model, images_text(d.num_features()));
    d = d.flattened();  // the model file's networks are dense: rows [N, H*W]
  }
  reading(source, [&] {
    d.validate(source);
    d.features = pre.apply(d.features);
    return 0;
  });
  if (!regression)
    BP_CHECK(d.num_classes <= model.architecture.outputs, FileError, source, " has ", d.num_classes,
             " classes but the model has ", model.architecture.outputs, " outputs");
  column_targets(d);
  return out;
}

ModelInputs load_predict_inputs(const io::ModelFile& model, const std::string& path, std::int64_t limit,
                                const std::string& origin) {
  const io::Preprocessing& pre = model.preprocessing;
  const std::int64_t inputs = model.architecture.inputs;
  const std::string where = origin + " " + path;
  BP_CHECK(io::input_exists(path, origin), FileError, origin, " ", path,
           ": no such file (expected a .csv file or an IDX image file)");
  ModelInputs out;
  Tensor& x = out.features;
  if (looks_like_idx(path)) {
    const IdxArray a = reading(path, [&] { return read_idx(path, limit); });
    std::int64_t d = 1;
    for (std::size_t i = 1; i < a.dims.size(); ++i) d *= a.dims[i];
    if (d != inputs) mismatch(where, model, images_text(d));
    std::vector<float> v(a.data.size());
    for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(a.data[i] * pre.pixel_scale);
    x = from_vector(v, {a.dims[0], d});
  } else {
    const std::vector<std::string> row = reading(path, [&] { return read_csv_first_row(path); });
    const std::vector<std::string>& names = pre.feature_names;
    // A header names a feature, or holds text; a data row's one text cell may be its label (a labelled
    // file without a header: refused below for its column count, not read as a header of unknown names).
    const auto text_cells =
        std::count_if(row.begin(), row.end(), [](const std::string& f) { return !is_number(f); });
    const std::unordered_set<std::string> named(names.begin(), names.end());
    const bool header =
        text_cells >= (names.empty() ? 1 : 2) ||
        std::any_of(row.begin(), row.end(), [&](const std::string& f) { return named.count(f) != 0; });
    if (!names.empty()) {
      // The model's columns: by name with a header row (every other column ignored), else exactly these
      // many columns in the training order.
      x = reading(path, [&] { return read_csv_features(path, names, ',', header ? 1 : 0); });
      if (header) out.ignored_columns = unused(row, names);
    } else {
      // No column names (a model of images, or of a table without a header row): exactly `inputs` columns.
      if (static_cast<std::int64_t>(row.size()) != inputs)
        mismatch(where, model,
                 std::to_string(row.size()) + (header ? " (CSV columns)" : " (CSV columns, no header row)"));
      x = reading(path, [&] { return read_csv_features(path, ',', header ? 1 : 0); });
    }
    if (limit > 0 && x.size(0) > limit) x = narrow(x, 0, limit).clone();
  }
  x = reading(path, [&] { return pre.apply(x); });
  return out;
}

}  // namespace backprop::data
