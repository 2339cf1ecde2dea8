// backprop/data/source.hpp — a data set named by a configuration, ready for fit(); and new data read the way
// a saved model was trained.
//
// A source is the keyword "fashion-mnist", a directory of IDX files (train-images-idx3-ubyte[.gz], ...) or a
// CSV file. load_training_data() reads config.data: the training rows (config.data.limit_train), the test set
// (config.data.test, or the directory's test files), the validation split (config.data.val_split, drawn with
// config.run.seed), and the preprocessing fitted on the training split only (a table's standardisation, an
// image's pixel scale), which it has already applied and which a model file stores (io::ModelFile). The
// command line's `backprop train` reads its data with it, so a program that loads the same TOML trains on
// the same rows. load_eval_data() and load_predict_inputs() read new data for a saved model: its class
// labels, its feature columns by name, its standardisation and pixel scale. Messages name the
// configuration's flags (--data, --augment, --val-split), as config::validate does.
//
// Example:
//   bp::config::Config cfg;
//   cfg.data.source = "iris.csv";
//   cfg.data.target = "species";
//   cfg.data.val_split = 0.2;
//   bp::data::TrainingData data = bp::data::load_training_data(cfg);   // standardised on data.train
//   // ... train a network on data.train, validate on data.validation, save it with data.preprocessing ...
//   bp::io::ModelFile model = bp::io::load_model("model.safetensors");
//   bp::data::ModelData eval = bp::data::load_eval_data(model, "iris_test.csv");
//   for (const std::string& c : eval.ignored_columns) std::cout << "not a feature: " << c << "\n";
//   bp::data::ModelInputs x = bp::data::load_predict_inputs(model, "new_flowers.csv");   // x.features [N, 4]
#pragma once

#include <backprop/config.hpp>
#include <backprop/data/augment.hpp>
#include <backprop/data/dataset.hpp>
#include <backprop/io/model_file.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace backprop::data {

/// The data of a training run, prepared. Classification targets are [N] class indices; regression targets
/// are [N, 1] (the network's output shape). IDX images come as rows [N, H*W] (the command line's networks
/// are dense; `image` keeps the image shape for augmentation and image layers).
struct TrainingData {
  TensorDataset train;
  TensorDataset validation;         // size 0 when config.data.val_split is 0
  TensorDataset test;               // size 0 when there is no test data (a CSV file without data.test)
  io::Preprocessing preprocessing;  // fitted on `train`, already applied to all three
  ImageShape image = {1, 0, 0};     // a training image's shape; height 0 for a table
  std::string name;                 // config.data.source: "fashion-mnist", the directory or the file

  /// The bytes the three sets' features and targets hold (what train::check_memory counts as loaded).
  std::uint64_t nbytes() const;
};

/// Loads and prepares the data config.data names. Throws FileError for data that cannot be read, is
/// inconsistent (a test set with other features than the training set, no training examples) or does not
/// exist; ConfigError for a source that looks like a misspelt "fashion-mnist", for options the source cannot
/// take (augmentation or data.task = "regression" with a table / IDX images) and for a validation split that
/// leaves no training examples.
TrainingData load_training_data(const config::Config& config);

/// How load_eval_data reads a labelled set for a model.
struct ModelDataOptions {
  std::string target;             // CSV: the target column; empty: the one the model was trained on
  Split split = Split::test;      // IDX sources: which half
  std::int64_t limit = 0;         // > 0: the first `limit` examples only
  std::string origin = "--data";  // how the source is named in error messages
};

/// A labelled set read for a model, and the header columns of a CSV file that are neither the model's
/// features nor the target (ids, notes, ...), in file order, for the caller to mention.
struct ModelData {
  TensorDataset data;
  std::vector<std::string> ignored_columns;
};

/// `source` ("fashion-mnist", an IDX directory or a CSV file) read the way `model` was trained: the model's
/// class-label mapping (an unknown label is an error), its feature columns by header name (else by position),
/// its standardisation and pixel scale; IDX images as rows [N, H*W]. model.architecture.inputs and outputs
/// are what the data is checked against (io::load_for_prediction sets them for a network saved from code).
/// Throws FileError naming options.origin when the data does not fit the model (naming what the model takes
/// and what the data has), cannot be read, or has more classes than the model outputs; ConfigError for a
/// misspelt "fashion-mnist".
ModelData load_eval_data(const io::ModelFile& model, const std::string& source,
                         const ModelDataOptions& options = {});

/// Features read for a model's predictions, and the CSV header columns that are not its features (with the
/// target column among them, when the file has one).
struct ModelInputs {
  Tensor features;  // [N, D], preprocessed for the model
  std::vector<std::string> ignored_columns;
};

/// Features [N, D] from `path` for `model`: a CSV file (by header name when the model knows its columns,
/// every other column ignored; else exactly D columns) or an IDX image file (raw or gzip) scaled by the
/// model's pixel scale; then the model's standardisation. `limit` > 0 keeps the first `limit` rows. Throws
/// FileError naming `origin` when the file is missing, cannot be read or does not fit the model.
ModelInputs load_predict_inputs(const io::ModelFile& model, const std::string& path, std::int64_t limit = 0,
                                const std::string& origin = "--input");

}  // namespace backprop::data
