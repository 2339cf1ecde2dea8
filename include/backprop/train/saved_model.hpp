// backprop/train/saved_model.hpp — a saved model applied to new data, as `backprop eval` and `backprop
// predict` do: evaluate_model() measures it on a labelled set (loss with the cost it was trained with;
// accuracy, per-class accuracy and the confusion matrix for a classifier; RMSE and MAE for regression);
// predict_model() gives one prediction per row (the class and its softmax probability, or the values).
//
// The model comes from io::load_for_prediction and the data from data::load_eval_data /
// data::load_predict_inputs, which apply its stored preprocessing. text() and json() are what the commands
// print; docs/cli.md describes both.
//
// Example:
//   bp::io::LoadedModel m = bp::io::load_for_prediction("runs/demo/model.safetensors");
//   bp::data::ModelData test = bp::data::load_eval_data(m.model, "iris_test.csv");
//   bp::train::ModelEvaluation e =
//       bp::train::evaluate_model(m, test.data, {.model = "model.safetensors", .data = "iris_test.csv"});
//   double accuracy = e.evaluation.accuracy;     // e.text(): "accuracy  96.67%", per class, confusion
//   bp::data::ModelInputs x = bp::data::load_predict_inputs(m.model, "new_flowers.csv");
//   bp::train::Predictions p = bp::train::predict_model(m, x.features);
//   std::string label = p.label(0);              // "setosa"; p.text(): "setosa\t0.9812" per row
//   std::string lines = p.json_lines();          // {"class":"setosa","index":0,"probability":...,"row":0}
#pragma once

#include <backprop/data/dataset.hpp>
#include <backprop/data/source.hpp>
#include <backprop/io/model_file.hpp>
#include <backprop/tensor.hpp>
#include <backprop/train.hpp>
#include <backprop/train/metrics.hpp>
#include <cstdint>
#include <string>
#include <vector>

namespace backprop::train {

/// How the model and the data are named in the text and JSON of an evaluation (their paths, as given).
struct ModelEvaluationNames {
  std::string model = "model";
  std::string data = "data";
};

/// A saved model measured on a labelled set.
struct ModelEvaluation {
  ModelEvaluationNames names;
  std::string network;                   // io::describe(architecture): "4-16-3"
  bool regression = false;               // the model's task
  std::vector<std::string> class_names;  // classification: output index -> label
  Evaluation evaluation;                 // loss, examples; classification: accuracy, per class, confusion
  RegressionMetrics errors;              // regression: RMSE and MAE of the outputs

  /// The report `backprop eval` prints: model, data, loss, then RMSE and MAE, or the accuracy, the accuracy
  /// per class and the confusion matrix (rows: true class). Each line ends with a newline.
  std::string text() const;
  /// The object `backprop eval --json` prints (keys model, data, examples, loss, then rmse and mae, or
  /// accuracy, class_names, per_class_accuracy and confusion; a value that is not finite is null), one line
  /// per key indented by 2, without a final newline.
  std::string json() const;
};

/// `model` evaluated on `data` (read for it by data::load_eval_data), with the cost it was trained with (its
/// stored configuration's train.loss; "auto" when it has none). Throws FileError naming `names.data` when
/// `data` is empty, and what train::evaluate throws.
ModelEvaluation evaluate_model(const io::LoadedModel& model, const data::TensorDataset& data,
                               const ModelEvaluationNames& names = {});

/// A saved model's predictions for N rows.
struct Predictions {
  bool regression = false;
  std::vector<std::string> class_names;  // classification: output index -> label
  Tensor outputs;                        // [N, K]: the network's outputs (logits, or the values)
  std::vector<std::int64_t> classes;     // classification: the most probable class of each row
  std::vector<double> probabilities;     // classification: its softmax probability

  std::int64_t rows() const { return outputs.size(0); }
  /// Row `row`'s class as its name (its index when the model has no name for it).
  std::string label(std::int64_t row) const;
  /// One line per row: "CLASS\tPROBABILITY" (4 decimals), or the K values separated by tabs (6 significant
  /// digits).
  std::string text() const;
  /// One JSON object per line: {"class", "index", "probability", "row"}, or {"row", "value"} with a number
  /// (K = 1) or a list (a value that is not finite is null).
  std::string json_lines() const;
};

/// The predictions of `model` for `features` [N, D] (read for it by data::load_predict_inputs), in eval mode,
/// without recording a graph. Throws what train::predict throws.
Predictions predict_model(const io::LoadedModel& model, const Tensor& features);

}  // namespace backprop::train
