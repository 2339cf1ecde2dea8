// backprop/data/dataset.hpp — a labelled example set held in memory, and the train/validation split.
//
// A TensorDataset is two tensors with the same number of rows: features [N, D] and targets. Every reader in
// backprop/data (IDX, CSV) returns one, the DataLoader batches one, and fit() trains on one.
//
// Example:
//   auto all = bp::data::read_csv("iris.csv", {.target = "species"});
//   auto [train, valid] = bp::data::train_validation_split(all, 0.2, /*seed=*/7);
//   std::cout << train.size() << " x " << train.num_features() << ", classes: " << train.num_classes << "\n";
//   auto few = train.subset({0, 5, 9});                  // rows copied, labels and names kept
#pragma once

#include <backprop/tensor.hpp>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace backprop::data {

/// Which half of a dataset that ships as two parts to read.
enum class Split { train, test };

/// What the targets mean: class indices (classification) or real values (regression).
enum class Task { classification, regression };

/// "classification" / "regression".
const char* task_name(Task task);

/// A labelled example set held in memory.
///
/// features: [N, D] rows (CSV), or images [N, C, H, W] (IDX); f32 unless a reader was asked otherwise.
/// targets:  classification: [N] i64 class indices 0 .. num_classes-1 (every reader makes i64; f32/f64
///           whole numbers are accepted too);
///           regression: [N] or [N, K] f32.
/// The tensors are handles (see tensor.hpp): copying a TensorDataset shares their elements.
struct TensorDataset {
  Tensor features;
  Tensor targets;
  Task task = Task::classification;
  std::int64_t num_classes = 0;            // classification only
  std::vector<std::string> class_names;    // index -> original label text ("T-shirt/top", "setosa", "3")
  std::vector<std::string> feature_names;  // CSV header names of the feature columns, or empty

  /// Number of examples N (0 for an empty dataset).
  std::int64_t size() const;
  /// Number of features per example: the product of features' dimensions after the first (D for [N, D]).
  std::int64_t num_features() const;
  /// A new dataset with the given rows, in the given order (repeats allowed), copied; metadata kept.
  /// Throws IndexError naming the index when one is outside [0, size()), ShapeError when features and targets
  /// are undefined or disagree on N. Labels are not checked (see validate()).
  TensorDataset subset(const std::vector<std::int64_t>& indices) const;
  /// The first min(n, size()) rows, copied. Throws ValueError for n < 0.
  TensorDataset head(std::int64_t n) const;
  /// The same dataset with features as rows [N, num_features()] (images [N, C, H, W] flattened; the elements
  /// are shared, not copied). Rows [N, D] come back as they are.
  TensorDataset flattened() const;
  /// Checks that features and targets are defined, have the same number of rows, and (classification) that
  /// every target is a whole number in [0, num_classes). Throws ShapeError / ValueError naming `what` and the
  /// first offending row.
  void validate(const std::string& what = "dataset") const;
};

/// Splits off a validation set: rows are put in the order of a random permutation drawn from Generator(seed),
/// the last round(N * validation_fraction) of them go to validation and the rest to training. Each part keeps
/// its rows in their original relative order (the DataLoader shuffles anyway). The two parts are disjoint and
/// together hold every row once. Same (N, fraction, seed) -> same split.
/// Throws ValueError unless 0 <= validation_fraction < 1.
std::pair<TensorDataset, TensorDataset> train_validation_split(const TensorDataset& all,
                                                               double validation_fraction,
                                                               std::uint64_t seed);

/// A random permutation of 0 .. n-1 (Fisher-Yates, drawing from `gen`).
std::vector<std::int64_t> random_permutation(std::int64_t n, Generator& gen);

}  // namespace backprop::data
