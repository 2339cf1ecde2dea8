// backprop/data/augment.hpp — image augmentation for training batches: random crop, flip, random erasing.
//
// An Augmentation is an ordered list of Transforms, each changing one image [C, H, W] (f32, row-major) in
// place. The DataLoader applies it to every training batch (LoaderOptions::augment); evaluation never sees it.
// Image k of epoch e (k counts the epoch's examples in visiting order) draws its random numbers from its own
// Generator(image_seed(seed, e, k)), so a batch depends only on (seed, epoch, position): not on the thread
// count, prefetching, or the epochs visited before.
//
// Example:
//   namespace bpd = backprop::data;
//   bpd::Augmentation aug = bpd::Augmentation::parse("crop,flip,erase");   // or build one:
//   bpd::Augmentation same({std::make_shared<bpd::RandomCrop>(2), std::make_shared<bpd::RandomHorizontalFlip>(),
//                           std::make_shared<bpd::RandomErasing>()});
//   bp::Tensor images = bp::zeros({8, 1, 28, 28});
//   aug.apply(images, {1, 28, 28}, /*seed=*/1, /*epoch=*/0, /*first=*/0);   // in place
#pragma once

#include <backprop/tensor.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace backprop::data {

/// The shape of one image: channels, height, width.
struct ImageShape {
  std::int64_t channels = 1, height = 0, width = 0;
  std::int64_t numel() const { return channels * height * width; }
};

/// One random change to one image.
class Transform {
 public:
  virtual ~Transform() = default;
  /// Changes `image` ([C, H, W], row-major) in place, drawing from `gen`. `scratch` holds C*H*W floats.
  virtual void apply(float* image, const ImageShape& shape, Generator& gen, float* scratch) const = 0;
  /// "crop(pad=2)", "flip(p=0.5)", ...
  virtual std::string repr() const = 0;
};

/// Pads the image with `padding` zeros on every side and cuts an H x W window at a random offset (each of the
/// (2 * padding + 1)^2 offsets equally likely): the content moves by up to `padding` pixels, zeros fill in.
class RandomCrop final : public Transform {
 public:
  /// Throws ValueError for padding < 0.
  explicit RandomCrop(std::int64_t padding = 2);
  void apply(float* image, const ImageShape& shape, Generator& gen, float* scratch) const override;
  std::string repr() const override;
  std::int64_t padding() const { return padding_; }

 private:
  std::int64_t padding_;
};

/// Mirrors the image left-right with probability p.
class RandomHorizontalFlip final : public Transform {
 public:
  /// Throws ValueError unless 0 <= p <= 1.
  explicit RandomHorizontalFlip(double p = 0.5);
  void apply(float* image, const ImageShape& shape, Generator& gen, float* scratch) const override;
  std::string repr() const override;

 private:
  double p_;
};

/// torchvision's RandomErasing defaults.
struct ErasingOptions {
  double p = 0.5;                           // probability of erasing anything
  double scale_lo = 0.02, scale_hi = 0.33;  // erased area as a fraction of H * W
  double ratio_lo = 0.3, ratio_hi = 3.3;    // aspect ratio h / w (drawn log-uniformly)
  float value = 0.0f;                       // what the rectangle is filled with (every channel)
};

/// With probability p, fills a random rectangle with `value`, as torchvision's RandomErasing: up to 10 tries
/// draw an area (uniform in scale) and an aspect ratio (log-uniform in ratio); the first rectangle that fits
/// strictly inside the image is erased at a uniform position; when none fits, the image is unchanged.
class RandomErasing final : public Transform {
 public:
  /// Throws ValueError unless 0 <= p <= 1, 0 < scale_lo <= scale_hi <= 1 and 0 < ratio_lo <= ratio_hi.
  explicit RandomErasing(ErasingOptions options = {});
  void apply(float* image, const ImageShape& shape, Generator& gen, float* scratch) const override;
  std::string repr() const override;

 private:
  ErasingOptions o_;
};

/// An ordered list of transforms, applied one after the other to each image of a batch.
class Augmentation {
 public:
  Augmentation() = default;
  explicit Augmentation(std::vector<std::shared_ptr<const Transform>> transforms);

  /// From a comma-separated list of names: crop (RandomCrop(2)), flip (RandomHorizontalFlip(0.5)), erase
  /// (RandomErasing()), in the order given. Throws ValueError naming an unknown or repeated name and the valid
  /// ones; "" gives an empty augmentation.
  static Augmentation parse(const std::string& names);
  /// The names parse() takes: "crop", "flip", "erase".
  static const std::vector<std::string>& names();

  bool empty() const { return transforms_.empty(); }
  const std::vector<std::shared_ptr<const Transform>>& transforms() const { return transforms_; }
  /// "crop(pad=2), flip(p=0.5)"; "none" when empty.
  std::string repr() const;

  /// Augments the images of `batch` in place: f32 [B, ...] whose rows hold shape.numel() elements each (images
  /// [B, C, H, W] or the same rows flattened). Row r is the epoch's example number first + r. Throws ShapeError
  /// when the rows do not hold C*H*W elements, ValueError for a dtype other than f32.
  void apply(Tensor& batch, const ImageShape& shape, std::uint64_t seed, std::int64_t epoch,
             std::int64_t first) const;
  /// The same, with a caller-owned scratch buffer (grown as needed, so a loop reusing it does not allocate).
  void apply(Tensor& batch, const ImageShape& shape, std::uint64_t seed, std::int64_t epoch,
             std::int64_t first, std::vector<float>& scratch) const;

  /// The seed of the generator example k of epoch e draws from: a 64-bit mix of (seed, e, k), independent of
  /// the shuffle's stream (DataLoader::epoch_seed).
  static std::uint64_t image_seed(std::uint64_t seed, std::int64_t epoch, std::int64_t k);

 private:
  std::vector<std::shared_ptr<const Transform>> transforms_;
};

/// The image shape of rows of a dataset's features: [N, C, H, W] -> {C, H, W}; [N, H, W] -> {1, H, W}.
/// Throws ShapeError for other shapes (flat rows [N, D] do not say their image shape).
ImageShape image_shape_of(const Tensor& features);

}  // namespace backprop::data
