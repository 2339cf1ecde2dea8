// Where the tool's examples come from: the `fashion-mnist` keyword, a directory of IDX files or a CSV file,
// for training (with the validation split and the preprocessing fitted on the training split), for evaluation
// and for prediction (with a model's stored preprocessing applied).
#pragma once

#include <backprop/config.hpp>
#include <backprop/data.hpp>
#include <backprop/io/model_file.hpp>
#include <string>

namespace cli {

struct TrainingData {
  backprop::data::TensorDataset train;
  backprop::data::TensorDataset validation;  // size 0 when val_split is 0
  backprop::data::TensorDataset test;        // size 0 when there is no test data
  backprop::io::Preprocessing preprocessing;
  backprop::data::ImageShape image = {1, 0, 0};  // the shape of a training image (height 0: a table)
  std::string name;                              // "fashion-mnist", the directory or the file
};

/// Loads and prepares the data a config names. Throws FileError (exit 3) for data that cannot be read or is
/// inconsistent; ConfigError (exit 2) for a source that is none of the three kinds.
TrainingData load_training_data(const backprop::config::Config& config);

/// A labelled set for `backprop eval`: `source` read the way `model` was trained (class-label mapping,
/// target column, standardisation, pixel scale). split picks train or test for IDX sources.
backprop::data::TensorDataset load_eval_data(const backprop::io::ModelFile& model, const std::string& source,
                                             const std::string& target, const std::string& split,
                                             std::int64_t limit);

/// Features [N, D] for `backprop predict`, preprocessed for `model`: a CSV file (a target column present in
/// it is dropped) or an IDX image file (raw or gzip).
backprop::Tensor load_predict_inputs(const backprop::io::ModelFile& model, const std::string& path,
                                     std::int64_t limit);

/// True when the path names an existing directory.
bool is_directory(const std::string& path);

}  // namespace cli
