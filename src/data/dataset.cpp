// TensorDataset, row gathering and the train/validation split.
#include <algorithm>
#include <backprop/data/dataset.hpp>
#include <backprop/data/loader.hpp>
#include <cmath>
#include <cstring>

#include "data/gather.hpp"
#include "kernels/parallel.hpp"

namespace backprop::data {

const char* task_name(Task task) {
  return task == Task::classification ? "classification" : "regression";
}

std::int64_t TensorDataset::size() const {
  return features.defined() && features.dim() > 0 ? features.size(0) : 0;
}

std::int64_t TensorDataset::num_features() const {
  if (!features.defined() || features.dim() == 0) return 0;
  std::int64_t d = 1;
  for (std::size_t i = 1; i < features.shape().size(); ++i) d *= features.shape()[i];
  return d;
}

void detail::gather_rows_into(const Tensor& source, const std::int64_t* indices, std::size_t count,
                              void* dst_) {
  const std::int64_t n = source.size(0);
  const std::size_t row_bytes = n == 0 ? 0 : source.nbytes() / static_cast<std::size_t>(n);
  const auto* src = static_cast<const unsigned char*>(source.raw_data());
  auto* dst = static_cast<unsigned char*>(dst_);
  for (std::size_t k = 0; k < count; ++k)
    BP_CHECK(indices[k] >= 0 && indices[k] < n, IndexError, "gather_rows: index ", indices[k], " (entry ", k,
             ") is outside [0, ", n, ") for a tensor of shape ", source.shape());
  // Shuffled rows are scattered over the data set: ask for a row a few rows before it is copied. A batch of
  // images is copied by every thread, a share each (the copy is memory-bound and one core does not saturate it).
  constexpr std::size_t kAhead = 4;
  constexpr std::int64_t kParallelBytes = std::int64_t{1} << 17;
  auto prefetch = [&](std::size_t k) {
    const unsigned char* row = src + static_cast<std::size_t>(indices[k]) * row_bytes;
    for (std::size_t b = 0; b < row_bytes; b += 64) __builtin_prefetch(row + b);
  };
  const std::int64_t rows = static_cast<std::int64_t>(count);
  const std::int64_t min_rows =
      row_bytes == 0 ? rows + 1 : kParallelBytes / static_cast<std::int64_t>(row_bytes);
  kernels::parallel_range(
      rows, std::max<std::int64_t>(min_rows, 2), [&](std::int64_t begin, std::int64_t end) {
        const auto b = static_cast<std::size_t>(begin), e = static_cast<std::size_t>(end);
        for (std::size_t k = b; k < std::min(b + kAhead, e); ++k) prefetch(k);
        for (std::size_t k = b; k < e; ++k) {
          if (k + kAhead < e) prefetch(k + kAhead);
          std::memcpy(dst + k * row_bytes, src + static_cast<std::size_t>(indices[k]) * row_bytes, row_bytes);
        }
      });
}

Tensor gather_rows(const Tensor& source, const std::vector<std::int64_t>& indices) {
  BP_CHECK(source.defined() && source.dim() >= 1, ShapeError,
           "gather_rows: expected a tensor with at least one dimension (rows first), got ",
           source.defined() ? to_string(source.shape()) : std::string("an undefined tensor"));
  Shape shape = source.shape();
  shape[0] = static_cast<std::int64_t>(indices.size());
  Tensor out(shape, source.dtype());
  detail::gather_rows_into(source, indices.data(), indices.size(), out.raw_data());
  return out;
}

namespace {
// The structural part of validate(): both tensors defined, rows first, the same number of rows. Row copies
// need no more than this, so subset() works on a dataset whose labels were not (yet) described by
// num_classes.
void check_rows(const TensorDataset& d, const std::string& what) {
  const Tensor& features = d.features;
  const Tensor& targets = d.targets;
  BP_CHECK(features.defined() && features.dim() >= 1, ShapeError, what,
           ": features must be a tensor with rows first ([N, D]), got ",
           features.defined() ? to_string(features.shape()) : std::string("an undefined tensor"));
  BP_CHECK(targets.defined() && targets.dim() >= 1, ShapeError, what,
           ": targets must be a tensor with rows first ([N] or [N, K]), got ",
           targets.defined() ? to_string(targets.shape()) : std::string("an undefined tensor"));
  BP_CHECK(features.size(0) == targets.size(0), ShapeError, what, ": features ", features.shape(),
           " and targets ", targets.shape(), " disagree on the number of rows (", features.size(0),
           " != ", targets.size(0), ")");
}
}  // namespace

TensorDataset TensorDataset::subset(const std::vector<std::int64_t>& indices) const {
  check_rows(*this, "subset");
  TensorDataset out = *this;
  out.features = gather_rows(features, indices);
  out.targets = gather_rows(targets, indices);
  return out;
}

TensorDataset TensorDataset::head(std::int64_t n) const {
  BP_CHECK(n >= 0, ValueError, "head: n must be >= 0, got ", n);
  std::vector<std::int64_t> rows(static_cast<std::size_t>(std::min(n, size())));
  for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<std::int64_t>(i);
  return subset(rows);
}

TensorDataset TensorDataset::flattened() const {
  TensorDataset out = *this;
  if (features.defined() && features.dim() > 2) out.features = features.reshape({size(), num_features()});
  return out;
}

void TensorDataset::validate(const std::string& what) const {
  check_rows(*this, what);
  if (task != Task::classification) return;
  BP_CHECK(targets.dim() == 1, ShapeError, what, ": classification targets must be [N] class indices, got ",
           targets.shape());
  BP_CHECK(num_classes >= 1, ValueError, what, ": classification needs num_classes >= 1, got ", num_classes);
  BP_CHECK(class_names.empty() || static_cast<std::int64_t>(class_names.size()) == num_classes, ValueError,
           what, ": ", class_names.size(), " class names for ", num_classes, " classes");
  const std::int64_t n = targets.size(0);
  for (std::int64_t i = 0; i < n; ++i) {
    const double y = targets.flat(i);
    BP_CHECK(y >= 0 && y < static_cast<double>(num_classes) && y == std::floor(y), ValueError, what,
             ": target ", y, " in row ", i, " is not a class index in [0, ", num_classes, ")");
  }
}

std::vector<std::int64_t> random_permutation(std::int64_t n, Generator& gen) {
  BP_CHECK(n >= 0, ValueError, "random_permutation: n must be >= 0, got ", n);
  std::vector<std::int64_t> perm(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) perm[static_cast<std::size_t>(i)] = i;
  for (std::int64_t i = n - 1; i > 0; --i) {
    const auto j = static_cast<std::int64_t>(gen.below(static_cast<std::uint64_t>(i + 1)));
    std::swap(perm[static_cast<std::size_t>(i)], perm[static_cast<std::size_t>(j)]);
  }
  return perm;
}

std::pair<TensorDataset, TensorDataset> train_validation_split(const TensorDataset& all,
                                                               double validation_fraction,
                                                               std::uint64_t seed) {
  BP_CHECK(std::isfinite(validation_fraction) && validation_fraction >= 0.0 && validation_fraction < 1.0,
           ValueError, "train_validation_split: validation_fraction must be in [0, 1), got ",
           validation_fraction);
  check_rows(all, "train_validation_split");
  const std::int64_t n = all.size();
  const auto n_valid = static_cast<std::int64_t>(std::llround(static_cast<double>(n) * validation_fraction));
  Generator gen(seed);
  std::vector<std::int64_t> perm = random_permutation(n, gen);
  std::vector<std::int64_t> train_rows(perm.begin(), perm.end() - n_valid);
  std::vector<std::int64_t> valid_rows(perm.end() - n_valid, perm.end());
  std::sort(train_rows.begin(), train_rows.end());
  std::sort(valid_rows.begin(), valid_rows.end());
  return {all.subset(train_rows), all.subset(valid_rows)};
}

}  // namespace backprop::data
