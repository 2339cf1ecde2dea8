// DataLoader: seeded per-epoch permutations and row-copied mini-batches.
#include <algorithm>
#include <backprop/data/loader.hpp>

namespace backprop::data {

DataLoader::DataLoader(const TensorDataset& dataset, LoaderOptions options)
    : dataset_(dataset), options_(options) {
  BP_CHECK(options_.batch_size >= 1, ValueError, "DataLoader: batch_size must be >= 1, got ",
           options_.batch_size);
  BP_CHECK(dataset_.features.defined() && dataset_.targets.defined(), ShapeError,
           "DataLoader: the dataset needs both features and targets");
  BP_CHECK(dataset_.features.dim() >= 1 && dataset_.targets.dim() >= 1 &&
               dataset_.features.size(0) == dataset_.targets.size(0),
           ShapeError, "DataLoader: features ", dataset_.features.shape(), " and targets ",
           dataset_.targets.shape(), " must have the same number of rows");
  set_epoch(0);
}

std::uint64_t DataLoader::epoch_seed(std::uint64_t seed, std::int64_t epoch) {
  // splitmix64's finaliser over seed + golden-ratio steps: consecutive epochs give unrelated seeds, and the
  // result depends on nothing but (seed, epoch).
  std::uint64_t z = seed + 0x9e3779b97f4a7c15ULL * (static_cast<std::uint64_t>(epoch) + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

void DataLoader::set_epoch(std::int64_t epoch) {
  BP_CHECK(epoch >= 0, ValueError, "DataLoader::set_epoch: epoch must be >= 0, got ", epoch);
  epoch_ = epoch;
  const std::int64_t n = dataset_.size();
  if (options_.shuffle) {
    Generator gen(epoch_seed(options_.seed, epoch));
    order_ = random_permutation(n, gen);
  } else {
    order_.resize(static_cast<std::size_t>(n));
    for (std::int64_t i = 0; i < n; ++i) order_[static_cast<std::size_t>(i)] = i;
  }
}

std::int64_t DataLoader::num_batches() const {
  const std::int64_t n = dataset_.size();
  const std::int64_t bs = options_.batch_size;
  return options_.drop_last ? n / bs : (n + bs - 1) / bs;
}

Batch DataLoader::batch(std::int64_t i) const {
  const std::int64_t count = num_batches();
  BP_CHECK(i >= 0 && i < count, IndexError, "DataLoader::batch: batch ", i, " is outside [0, ", count, ")");
  const std::int64_t start = i * options_.batch_size;
  const std::int64_t stop = std::min(start + options_.batch_size, dataset_.size());
  const std::vector<std::int64_t> rows(order_.begin() + start, order_.begin() + stop);
  return {gather_rows(dataset_.features, rows), gather_rows(dataset_.targets, rows)};
}

}  // namespace backprop::data
