// DataLoader: seeded per-epoch permutations, row-copied and augmented mini-batches, and the loader thread
// that prepares the next batch while the caller works on this one.
#include <algorithm>
#include <backprop/data/loader.hpp>
#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>

#include "data/gather.hpp"

namespace backprop::data {

// The loader thread: asked for one batch at a time (`wanted`), it leaves the result in `ready`. The two
// batches it fills in turn are reused once the caller has let go of them (double buffering).
struct DataLoader::Prefetcher {
  std::mutex mutex;
  std::condition_variable cv;
  std::thread thread;
  bool stop = false;
  std::int64_t wanted = -1;  // the batch being (or to be) prepared; -1: none
  bool done = false;         // `ready` / `error` hold the outcome for `wanted`
  Batch ready;
  std::exception_ptr error;
  Batch buffers[2];
  int next_buffer = 0;
  std::vector<float> scratch;

  void run(const DataLoader* loader) {
    std::unique_lock lock(mutex);
    for (;;) {
      cv.wait(lock, [&] { return stop || (wanted >= 0 && !done); });
      if (stop) return;
      const std::int64_t i = wanted;
      Batch* reuse = &buffers[next_buffer];
      next_buffer ^= 1;
      lock.unlock();
      Batch b;
      std::exception_ptr e;
      try {
        b = loader->prepare(i, reuse, scratch);
      } catch (...) {
        e = std::current_exception();
      }
      lock.lock();
      // The buffer keeps its own handles on the storages: while the caller holds the batch, they are shared.
      if (!e)
        *reuse = {Tensor(b.features.storage(), b.features.shape(), b.features.dtype()),
                  Tensor(b.targets.storage(), b.targets.shape(), b.targets.dtype())};
      ready = std::move(b);
      error = e;
      done = true;
      cv.notify_all();
    }
  }

  // Waits until the thread is idle; returns the finished batch and its error (and forgets them).
  std::int64_t settle(std::unique_lock<std::mutex>& lock, Batch& out, std::exception_ptr& e) {
    cv.wait(lock, [&] { return wanted < 0 || done; });
    const std::int64_t i = wanted;
    out = std::move(ready);
    e = error;
    ready = {};
    error = nullptr;
    wanted = -1;
    done = false;
    return i;
  }
};

DataLoader::DataLoader(const TensorDataset& dataset, LoaderOptions options)
    : dataset_(dataset), options_(std::move(options)) {
  BP_CHECK(options_.batch_size >= 1, ValueError, "DataLoader: batch_size must be >= 1, got ",
           options_.batch_size);
  BP_CHECK(dataset_.features.defined() && dataset_.targets.defined(), ShapeError,
           "DataLoader: the dataset needs both features and targets");
  BP_CHECK(dataset_.features.dim() >= 1 && dataset_.targets.dim() >= 1 &&
               dataset_.features.size(0) == dataset_.targets.size(0),
           ShapeError, "DataLoader: features ", dataset_.features.shape(), " and targets ",
           dataset_.targets.shape(), " must have the same number of rows");
  image_shape_ = options_.image_shape;
  if (options_.augment && !options_.augment->empty()) {
    if (image_shape_.height == 0) image_shape_ = image_shape_of(dataset_.features);
    const std::int64_t per_row = dataset_.num_features();
    BP_CHECK(dataset_.features.dtype() == f32, ValueError, "DataLoader: augmentation needs f32 images, got ",
             dtype_name(dataset_.features.dtype()));
    BP_CHECK(image_shape_.channels >= 1 && image_shape_.height >= 1 && image_shape_.width >= 1 &&
                 per_row == image_shape_.numel(),
             ShapeError, "DataLoader: augmentation needs image data: features ", dataset_.features.shape(),
             " do not hold images [", image_shape_.channels, ", ", image_shape_.height, ", ",
             image_shape_.width, "] in their rows");
  }
  set_epoch(0);
}

DataLoader::DataLoader(const DataLoader& other)
    : dataset_(other.dataset_),
      options_(other.options_),
      epoch_(other.epoch_),
      order_(other.order_),
      image_shape_(other.image_shape_) {}

DataLoader& DataLoader::operator=(const DataLoader& other) {
  if (this == &other) return *this;
  stop_prefetch();
  dataset_ = other.dataset_;
  options_ = other.options_;
  epoch_ = other.epoch_;
  order_ = other.order_;
  image_shape_ = other.image_shape_;
  return *this;
}

DataLoader::~DataLoader() {
  stop_prefetch();
}

void DataLoader::stop_prefetch() const {
  if (!prefetcher_) return;
  {
    std::lock_guard lock(prefetcher_->mutex);
    prefetcher_->stop = true;
  }
  prefetcher_->cv.notify_all();
  prefetcher_->thread.join();
  prefetcher_.reset();
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
  if (prefetcher_) {  // a batch of the old order may be in preparation: let it finish, then drop it
    std::unique_lock lock(prefetcher_->mutex);
    Batch dropped;
    std::exception_ptr e;
    prefetcher_->settle(lock, dropped, e);
  }
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

namespace {

// `shape`'s tensor over `reuse`'s storage when nothing else holds that storage and it is the right size,
// else a fresh one.
Tensor reuse_or_new(const Tensor* reuse, const Shape& shape, DType dtype) {
  if (reuse != nullptr && reuse->defined() && reuse->shape() == shape && reuse->dtype() == dtype &&
      reuse->storage().use_count() == 1)
    return Tensor(reuse->storage(), shape, dtype);
  return Tensor(shape, dtype);
}

}  // namespace

Batch DataLoader::prepare(std::int64_t i, Batch* reuse, std::vector<float>& scratch) const {
  const std::int64_t start = i * options_.batch_size;
  const std::int64_t stop = std::min(start + options_.batch_size, dataset_.size());
  const auto count = static_cast<std::size_t>(stop - start);
  const std::int64_t* rows = order_.data() + start;
  Shape fshape = dataset_.features.shape(), tshape = dataset_.targets.shape();
  fshape[0] = tshape[0] = static_cast<std::int64_t>(count);
  Batch b;
  if (reuse) {
    const Tensor f = std::move(reuse->features), t = std::move(reuse->targets);
    *reuse = {};
    b.features = reuse_or_new(&f, fshape, dataset_.features.dtype());
    b.targets = reuse_or_new(&t, tshape, dataset_.targets.dtype());
  } else {
    b.features = Tensor(fshape, dataset_.features.dtype());
    b.targets = Tensor(tshape, dataset_.targets.dtype());
  }
  detail::gather_rows_into(dataset_.features, rows, count, b.features.raw_data());
  detail::gather_rows_into(dataset_.targets, rows, count, b.targets.raw_data());
  if (options_.augment)
    options_.augment->apply(b.features, image_shape_, options_.seed, epoch_, start, scratch);
  return b;
}

Batch DataLoader::batch(std::int64_t i) const {
  const std::int64_t count = num_batches();
  BP_CHECK(i >= 0 && i < count, IndexError, "DataLoader::batch: batch ", i, " is outside [0, ", count, ")");
  if (!options_.prefetch) {
    std::vector<float> scratch;
    return prepare(i, nullptr, scratch);
  }
  if (!prefetcher_) {
    prefetcher_ = std::make_unique<Prefetcher>();
    prefetcher_->thread = std::thread([p = prefetcher_.get(), this] { p->run(this); });
  }
  Prefetcher& p = *prefetcher_;
  std::unique_lock lock(p.mutex);
  Batch out;
  std::exception_ptr error;
  const std::int64_t got = p.settle(lock, out, error);
  if (got != i) {  // not the batch that was prefetched (first call, or out of order): prepare it here
    lock.unlock();
    out = prepare(i, nullptr, p.scratch);
    lock.lock();
  } else if (error) {
    std::rethrow_exception(error);
  }
  if (i + 1 < count) {
    p.wanted = i + 1;
    p.cv.notify_all();
  }
  return out;
}

}  // namespace backprop::data
