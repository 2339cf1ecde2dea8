// Image augmentation: RandomCrop, RandomHorizontalFlip, RandomErasing and their ordered list.
#include <algorithm>
#include <backprop/data/augment.hpp>
#include <backprop/data/loader.hpp>
#include <cmath>
#include <cstring>
#include <sstream>

namespace backprop::data {

namespace {

std::string format(double v) {
  std::ostringstream s;
  s << v;
  return s.str();
}

// A uniform integer in [0, n] (n >= 0).
std::int64_t uniform_int(Generator& gen, std::int64_t n) {
  return static_cast<std::int64_t>(gen.below(static_cast<std::uint64_t>(n + 1)));
}

}  // namespace

RandomCrop::RandomCrop(std::int64_t padding) : padding_(padding) {
  BP_CHECK(padding >= 0, ValueError, "RandomCrop: padding must be >= 0, got ", padding);
}

void RandomCrop::apply(float* image, const ImageShape& s, Generator& gen, float* scratch) const {
  // Offsets in [-padding, padding]: output pixel (y, x) is input pixel (y + dy, x + dx), zero outside.
  const std::int64_t dy = uniform_int(gen, 2 * padding_) - padding_;
  const std::int64_t dx = uniform_int(gen, 2 * padding_) - padding_;
  if (dy == 0 && dx == 0) return;
  const std::int64_t h = s.height, w = s.width;
  std::memcpy(scratch, image, static_cast<std::size_t>(s.numel()) * sizeof(float));
  const std::int64_t x0 = std::clamp<std::int64_t>(-dx, 0, w), x1 = std::clamp<std::int64_t>(w - dx, 0, w);
  for (std::int64_t c = 0; c < s.channels; ++c) {
    const float* src = scratch + c * h * w;
    float* dst = image + c * h * w;
    for (std::int64_t y = 0; y < h; ++y) {
      float* row = dst + y * w;
      const std::int64_t sy = y + dy;
      if (sy < 0 || sy >= h || x0 >= x1) {
        std::fill(row, row + w, 0.0f);
        continue;
      }
      std::fill(row, row + x0, 0.0f);
      std::memcpy(row + x0, src + sy * w + x0 + dx, static_cast<std::size_t>(x1 - x0) * sizeof(float));
      std::fill(row + x1, row + w, 0.0f);
    }
  }
}

std::string RandomCrop::repr() const {
  return "crop(pad=" + std::to_string(padding_) + ")";
}

RandomHorizontalFlip::RandomHorizontalFlip(double p) : p_(p) {
  BP_CHECK(p >= 0.0 && p <= 1.0, ValueError, "RandomHorizontalFlip: p must be in [0, 1], got ", p);
}

void RandomHorizontalFlip::apply(float* image, const ImageShape& s, Generator& gen, float*) const {
  if (!gen.bernoulli(p_)) return;
  for (std::int64_t r = 0; r < s.channels * s.height; ++r)
    std::reverse(image + r * s.width, image + (r + 1) * s.width);
}

std::string RandomHorizontalFlip::repr() const {
  return "flip(p=" + format(p_) + ")";
}

RandomErasing::RandomErasing(ErasingOptions o) : o_(o) {
  BP_CHECK(o.p >= 0.0 && o.p <= 1.0, ValueError, "RandomErasing: p must be in [0, 1], got ", o.p);
  BP_CHECK(o.scale_lo > 0.0 && o.scale_lo <= o.scale_hi && o.scale_hi <= 1.0, ValueError,
           "RandomErasing: scale must satisfy 0 < lo <= hi <= 1, got (", o.scale_lo, ", ", o.scale_hi, ")");
  BP_CHECK(o.ratio_lo > 0.0 && o.ratio_lo <= o.ratio_hi, ValueError,
           "RandomErasing: ratio must satisfy 0 < lo <= hi, got (", o.ratio_lo, ", ", o.ratio_hi, ")");
}

void RandomErasing::apply(float* image, const ImageShape& s, Generator& gen, float*) const {
  if (!gen.bernoulli(o_.p)) return;
  const double area = static_cast<double>(s.height * s.width);
  const double log_lo = std::log(o_.ratio_lo), log_hi = std::log(o_.ratio_hi);
  for (int attempt = 0; attempt < 10; ++attempt) {
    const double erase_area = area * gen.uniform(o_.scale_lo, o_.scale_hi);
    const double aspect = std::exp(gen.uniform(log_lo, log_hi));
    const auto h = static_cast<std::int64_t>(std::llround(std::sqrt(erase_area * aspect)));
    const auto w = static_cast<std::int64_t>(std::llround(std::sqrt(erase_area / aspect)));
    if (!(h < s.height && w < s.width) || h < 1 || w < 1) continue;
    const std::int64_t top = uniform_int(gen, s.height - h);
    const std::int64_t left = uniform_int(gen, s.width - w);
    for (std::int64_t c = 0; c < s.channels; ++c)
      for (std::int64_t y = top; y < top + h; ++y) {
        float* row = image + (c * s.height + y) * s.width + left;
        std::fill(row, row + w, o_.value);
      }
    return;
  }
}

std::string RandomErasing::repr() const {
  return "erase(p=" + format(o_.p) + ", scale=(" + format(o_.scale_lo) + ", " + format(o_.scale_hi) +
         "), ratio=(" + format(o_.ratio_lo) + ", " + format(o_.ratio_hi) + "), value=" + format(o_.value) +
         ")";
}

Augmentation::Augmentation(std::vector<std::shared_ptr<const Transform>> transforms)
    : transforms_(std::move(transforms)) {
  for (std::size_t i = 0; i < transforms_.size(); ++i)
    BP_CHECK(transforms_[i] != nullptr, ValueError, "Augmentation: transform ", i, " is null");
}

const std::vector<std::string>& Augmentation::names() {
  static const std::vector<std::string> n = {"crop", "flip", "erase"};
  return n;
}

Augmentation Augmentation::parse(const std::string& text) {
  std::vector<std::shared_ptr<const Transform>> transforms;
  std::vector<std::string> seen;
  std::size_t start = 0;
  while (!text.empty() && start <= text.size()) {
    const std::size_t comma = std::min(text.find(',', start), text.size());
    const std::string name = text.substr(start, comma - start);
    start = comma + 1;
    BP_CHECK(std::find(seen.begin(), seen.end(), name) == seen.end(), ValueError, "augmentation '", name,
             "' is given twice in '", text, "'");
    seen.push_back(name);
    if (name == "crop")
      transforms.push_back(std::make_shared<RandomCrop>());
    else if (name == "flip")
      transforms.push_back(std::make_shared<RandomHorizontalFlip>());
    else if (name == "erase")
      transforms.push_back(std::make_shared<RandomErasing>());
    else
      BP_CHECK(false, ValueError, "unknown augmentation '", name, "' in '", text,
               "'; expected a comma-separated list of crop, flip, erase");
  }
  return Augmentation(std::move(transforms));
}

std::string Augmentation::repr() const {
  if (transforms_.empty()) return "none";
  std::string s;
  for (const auto& t : transforms_) s += (s.empty() ? "" : ", ") + t->repr();
  return s;
}

std::uint64_t Augmentation::image_seed(std::uint64_t seed, std::int64_t epoch, std::int64_t k) {
  // A constant apart from the shuffle's seeds, then (epoch, k) mixed in turn with the splitmix64 finaliser.
  constexpr std::uint64_t kSalt = 0x6175676d656e7421ULL;  // "augment!"
  return DataLoader::epoch_seed(DataLoader::epoch_seed(seed ^ kSalt, epoch), k);
}

void Augmentation::apply(Tensor& batch, const ImageShape& shape, std::uint64_t seed, std::int64_t epoch,
                         std::int64_t first) const {
  std::vector<float> scratch;
  apply(batch, shape, seed, epoch, first, scratch);
}

void Augmentation::apply(Tensor& batch, const ImageShape& shape, std::uint64_t seed, std::int64_t epoch,
                         std::int64_t first, std::vector<float>& scratch) const {
  if (transforms_.empty()) return;
  BP_CHECK(batch.dtype() == f32, ValueError, "Augmentation: images must be f32, got ",
           dtype_name(batch.dtype()));
  BP_CHECK(shape.channels >= 1 && shape.height >= 1 && shape.width >= 1, ShapeError,
           "Augmentation: image shape [", shape.channels, ", ", shape.height, ", ", shape.width,
           "] must have every size >= 1");
  const std::int64_t rows = batch.dim() >= 1 ? batch.size(0) : 0;
  const std::int64_t per_row = rows > 0 ? batch.numel() / rows : 0;
  BP_CHECK(batch.dim() >= 2 && (rows == 0 || per_row == shape.numel()), ShapeError, "Augmentation: a batch ",
           batch.shape(), " does not hold images [", shape.channels, ", ", shape.height, ", ", shape.width,
           "] in its rows");
  const auto n = static_cast<std::size_t>(shape.numel());
  if (scratch.size() < n) scratch.resize(n);
  float* data = batch.data<float>();
  for (std::int64_t r = 0; r < rows; ++r) {
    Generator gen(image_seed(seed, epoch, first + r));
    float* image = data + static_cast<std::size_t>(r) * n;
    for (const auto& t : transforms_) t->apply(image, shape, gen, scratch.data());
  }
}

ImageShape image_shape_of(const Tensor& features) {
  BP_CHECK(features.defined() && (features.dim() == 3 || features.dim() == 4), ShapeError,
           "image data needs features [N, C, H, W] or [N, H, W], got ",
           features.defined() ? to_string(features.shape()) : std::string("an undefined tensor"));
  if (features.dim() == 3) return {1, features.size(1), features.size(2)};
  return {features.size(1), features.size(2), features.size(3)};
}

}  // namespace backprop::data
