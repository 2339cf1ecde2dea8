// backprop/data/loader.hpp — mini-batches over a TensorDataset, in a seeded, reproducible order.
//
// Epoch e visits the rows in a permutation drawn from a Generator seeded from (seed, e) alone, so the order
// of an epoch never depends on which epochs were visited before it (a resumed run sees the same batches).
// With an augmentation (augment.hpp) every batch's images are changed after the rows are gathered, each image
// from its own seed (seed, e, position in the epoch). With prefetch, a loader thread prepares batch i + 1
// (gather and augmentation) while the caller works on batch i; the batches are byte-identical either way.
//
// Example:
//   bp::data::DataLoader loader(train, {.batch_size = 128, .shuffle = true, .seed = 42});
//   for (std::int64_t epoch = 0; epoch < 10; ++epoch) {
//     loader.set_epoch(epoch);
//     for (const bp::data::Batch& b : loader) { /* b.features [<=128, D], b.targets [<=128] */ }
//   }
#pragma once

#include <backprop/data/augment.hpp>
#include <backprop/data/dataset.hpp>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <memory>
#include <vector>

namespace backprop::data {

/// One mini-batch: rows copied out of the dataset (the dataset's dtype and trailing dimensions kept).
struct Batch {
  Tensor features;  // [B, ...] like the dataset's features
  Tensor targets;   // [B] or [B, K] like the dataset's targets
};

struct LoaderOptions {
  std::int64_t batch_size = 64;  // >= 1
  bool shuffle = true;           // false: rows in dataset order every epoch
  bool drop_last = false;        // true: skip the final batch when it has fewer than batch_size rows
  std::uint64_t seed = 0;        // the shuffle of epoch e depends only on (seed, e)
  /// Applied to every batch's features (training data only). Null or empty: none.
  std::shared_ptr<const Augmentation> augment = nullptr;
  /// The image shape of a row, for an augmentation over flat rows [N, C*H*W]; height 0: from the features
  /// ([N, C, H, W] or [N, H, W]).
  ImageShape image_shape = {1, 0, 0};
  /// A loader thread prepares the next batch while the caller works on this one (batches visited in order);
  /// the batches are the same either way. Off by default: on 2 cores a plain gather is cheaper in line than
  /// a third thread competing with the kernels' two (docs/performance.md); worth it for augmentation.
  bool prefetch = false;
};

/// Iterates over mini-batches of a dataset. Holds its own copy of the dataset handle (cheap: the tensors are
/// shared, not copied), so the loader stays valid if the caller's TensorDataset goes away.
class DataLoader {
 public:
  /// Throws ValueError if batch_size < 1, ShapeError if the dataset's features and targets disagree on N, or
  /// (with an augmentation) if the features are not f32 images of image_shape. Starts at epoch 0.
  DataLoader(const TensorDataset& dataset, LoaderOptions options);
  /// A copy has the same dataset, options and epoch, and its own loader thread.
  DataLoader(const DataLoader& other);
  DataLoader& operator=(const DataLoader& other);
  /// Stops and joins the loader thread (waiting at most for the batch it is preparing).
  ~DataLoader();

  /// Chooses the row order of epoch e (>= 0, else ValueError): with shuffle, a Fisher-Yates permutation
  /// drawn from Generator(epoch_seed(seed, e)); without, 0 .. N-1.
  void set_epoch(std::int64_t epoch);
  std::int64_t epoch() const { return epoch_; }

  /// ceil(N / batch_size), or floor(N / batch_size) with drop_last.
  std::int64_t num_batches() const;
  /// The i-th batch of the current epoch (rows copied with one memcpy per row, then augmented). Throws
  /// IndexError unless 0 <= i < num_batches(). The last batch may be short unless drop_last. With prefetch,
  /// batch i + 1 is then prepared on the loader thread; an error there is thrown by the call that asks for
  /// it. The prefetched batches' tensors are reused once the caller holds no handle to them, so a loop that
  /// drops each batch before asking for the next allocates nothing in its steady state.
  Batch batch(std::int64_t i) const;

  /// Row order of the current epoch (size N).
  const std::vector<std::int64_t>& order() const { return order_; }
  const TensorDataset& dataset() const { return dataset_; }
  const LoaderOptions& options() const { return options_; }

  /// The seed of epoch e's permutation: a 64-bit mix of (seed, e) so neighbouring epochs are unrelated.
  static std::uint64_t epoch_seed(std::uint64_t seed, std::int64_t epoch);

  /// Input iterator over the batches of the current epoch: for (const Batch& b : loader) ...
  class iterator {
   public:
    using iterator_category = std::input_iterator_tag;
    using value_type = Batch;
    using difference_type = std::ptrdiff_t;
    using pointer = void;
    using reference = Batch;

    iterator() = default;
    iterator(const DataLoader* loader, std::int64_t index) : loader_(loader), index_(index) {}
    Batch operator*() const { return loader_->batch(index_); }
    iterator& operator++() {
      ++index_;
      return *this;
    }
    iterator operator++(int) {
      iterator old = *this;
      ++index_;
      return old;
    }
    bool operator==(const iterator& other) const { return index_ == other.index_; }

   private:
    const DataLoader* loader_ = nullptr;
    std::int64_t index_ = 0;
  };
  iterator begin() const { return iterator(this, 0); }
  iterator end() const { return iterator(this, num_batches()); }

 private:
  TensorDataset dataset_;
  LoaderOptions options_;
  std::int64_t epoch_ = 0;
  std::vector<std::int64_t> order_;
  ImageShape image_shape_;

  struct Prefetcher;
  // Batch i, gathered into fresh tensors (or `reuse`'s storages when no one else holds them) and augmented.
  Batch prepare(std::int64_t i, Batch* reuse, std::vector<float>& scratch) const;
  void stop_prefetch() const;
  mutable std::unique_ptr<Prefetcher> prefetcher_;
};

/// Copies the given rows of `source` ([N, ...]) into a new tensor [indices.size(), ...], one memcpy per row
/// (rows of 128 KiB and more in all are shared among the threads).
/// Throws IndexError naming the first index outside [0, N).
Tensor gather_rows(const Tensor& source, const std::vector<std::int64_t>& indices);

}  // namespace backprop::data
