// Image augmentation (crop, flip, erase) by hand on tiny images, its seeding, and the prefetching loader.
#include <backprop/data.hpp>
#include <backprop/memory.hpp>
#include <backprop/ops.hpp>
#include <cstring>
#include <set>
#include <stdexcept>

#include "data/data_test_util.hpp"

namespace bp = backprop;
namespace bpd = backprop::data;
using data_test::error_of;
using ::testing::HasSubstr;

namespace {

// Pixel values 1 .. C*H*W, so every pixel is traceable and none is 0.
std::vector<float> numbered_image(const bpd::ImageShape& s) {
  std::vector<float> v(static_cast<std::size_t>(s.numel()));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i + 1);
  return v;
}

// `n` images [n, C, H, W] whose pixels are all different; targets 0 .. n-1.
bpd::TensorDataset images(std::int64_t n, const bpd::ImageShape& s) {
  std::vector<double> x, y;
  for (std::int64_t i = 0; i < n * s.numel(); ++i) x.push_back(static_cast<double>(i % 997) / 997.0 + 0.001);
  for (std::int64_t i = 0; i < n; ++i) y.push_back(static_cast<double>(i));
  bpd::TensorDataset d;
  d.features = bp::from_vector(x, {n, s.channels, s.height, s.width});
  d.targets = bp::from_vector(y, {n});
  d.num_classes = n;
  return d;
}

bool same_bytes(const bp::Tensor& a, const bp::Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

std::vector<bpd::Batch> epoch_batches(const bpd::DataLoader& loader) {
  std::vector<bpd::Batch> out;
  for (const bpd::Batch& b : loader) out.push_back(b);
  return out;
}

std::shared_ptr<const bpd::Augmentation> all_three() {
  return std::make_shared<const bpd::Augmentation>(bpd::Augmentation::parse("crop,flip,erase"));
}

// A transform that fails on one example, as a user's own transform might.
class FailsAt final : public bpd::Transform {
 public:
  explicit FailsAt(float marker) : marker_(marker) {}
  void apply(float* image, const bpd::ImageShape&, bp::Generator&, float*) const override {
    if (image[0] == marker_) throw std::runtime_error("transform failed on purpose");
  }
  std::string repr() const override { return "fails"; }

 private:
  float marker_;
};

}  // namespace

TEST(Augment, CropShiftsTheImageAndFillsZeros) {
  const bpd::ImageShape s{1, 3, 4};
  const std::vector<float> in = numbered_image(s);
  const bpd::RandomCrop crop(1);
  std::vector<float> scratch(static_cast<std::size_t>(s.numel()));
  std::set<std::pair<int, int>> offsets;
  for (std::uint64_t seed = 0; seed < 200; ++seed) {
    std::vector<float> img = in;
    bp::Generator gen(seed);
    crop.apply(img.data(), s, gen, scratch.data());
    // The output is the input moved by one offset (dy, dx) in [-1, 1]^2, with zeros where it came from outside.
    bool found = false;
    for (int dy = -1; dy <= 1 && !found; ++dy)
      for (int dx = -1; dx <= 1 && !found; ++dx) {
        bool match = true;
        for (int y = 0; y < 3; ++y)
          for (int x = 0; x < 4; ++x) {
            const int sy = y + dy, sx = x + dx;
            const float want =
                sy >= 0 && sy < 3 && sx >= 0 && sx < 4 ? in[static_cast<std::size_t>(sy * 4 + sx)] : 0.0f;
            match = match && img[static_cast<std::size_t>(y * 4 + x)] == want;
          }
        if (match) {
          found = true;
          offsets.insert({dy, dx});
        }
      }
    ASSERT_TRUE(found) << "seed " << seed << ": the crop is not a shift of the image";
  }
  EXPECT_EQ(offsets.size(), 9u) << "every offset of a padding of 1 should occur";
  EXPECT_EQ(bpd::RandomCrop(0).padding(), 0);
  EXPECT_THAT(error_of<bp::ValueError>([] { bpd::RandomCrop(-1); }), HasSubstr("padding must be >= 0"));
}

TEST(Augment, FlipMirrorsEveryRowOfEveryChannel) {
  const bpd::ImageShape s{2, 2, 3};
  const std::vector<float> in = numbered_image(s);
  std::vector<float> img = in;
  bp::Generator gen(1);
  bpd::RandomHorizontalFlip(1.0).apply(img.data(), s, gen, nullptr);
  EXPECT_EQ(img, (std::vector<float>{3, 2, 1, 6, 5, 4, 9, 8, 7, 12, 11, 10}));
  img = in;
  bpd::RandomHorizontalFlip(0.0).apply(img.data(), s, gen, nullptr);
  EXPECT_EQ(img, in);
  int flipped = 0;
  for (std::uint64_t seed = 0; seed < 400; ++seed) {
    img = in;
    bp::Generator g(seed);
    bpd::RandomHorizontalFlip().apply(img.data(), s, g, nullptr);
    flipped += img != in;
  }
  EXPECT_GT(flipped, 140);  // p = 0.5 of 400: 200 expected, 140 is 6 standard deviations below
  EXPECT_LT(flipped, 260);
}

TEST(Augment, EraseFillsOneRectangleInsideTheImage) {
  const bpd::ImageShape s{2, 10, 12};
  const bpd::RandomErasing erase({.p = 1.0, .value = -1.0f});
  int erased = 0;
  for (std::uint64_t seed = 0; seed < 100; ++seed) {
    std::vector<float> img(static_cast<std::size_t>(s.numel()), 0.5f);
    bp::Generator gen(seed);
    erase.apply(img.data(), s, gen, nullptr);
    // The erased pixels of channel 0: their bounding box must be exactly the erased set, strictly smaller than
    // the image, with an area in the scale range (allowing for the rounding of the sides); channel 1 the same.
    int top = 99, bottom = -1, left = 99, right = -1, count = 0;
    for (int y = 0; y < 10; ++y)
      for (int x = 0; x < 12; ++x)
        if (img[static_cast<std::size_t>(y * 12 + x)] == -1.0f) {
          top = std::min(top, y), bottom = std::max(bottom, y), left = std::min(left, x),
          right = std::max(right, x);
          ++count;
          EXPECT_EQ(img[static_cast<std::size_t>(120 + y * 12 + x)], -1.0f) << "channel 1 not erased alike";
        }
    if (count == 0) continue;  // no rectangle fitted in 10 tries: the image is left alone
    ++erased;
    const int h = bottom - top + 1, w = right - left + 1;
    EXPECT_EQ(count, h * w) << "seed " << seed << ": the erased pixels are not one rectangle";
    EXPECT_LT(h, 10);
    EXPECT_LT(w, 12);
    EXPECT_GE(count, 1);
    EXPECT_LE(count, static_cast<int>(0.33 * 120 * 1.6)) << "seed " << seed;
  }
  EXPECT_GT(erased, 80);
  std::vector<float> img(static_cast<std::size_t>(s.numel()), 0.5f);
  bp::Generator gen(3);
  bpd::RandomErasing({.p = 0.0}).apply(img.data(), s, gen, nullptr);
  EXPECT_EQ(img, std::vector<float>(static_cast<std::size_t>(s.numel()), 0.5f));
  EXPECT_THAT(error_of<bp::ValueError>([] { bpd::RandomErasing({.scale_lo = 0.5, .scale_hi = 0.2}); }),
              HasSubstr("scale"));
}

TEST(Augment, ParseNamesAndErrors) {
  EXPECT_EQ(bpd::Augmentation::parse("").repr(), "none");
  EXPECT_EQ(bpd::Augmentation::parse("flip,crop").repr(), "flip(p=0.5), crop(pad=2)");
  EXPECT_EQ(bpd::Augmentation::parse("crop,flip,erase").transforms().size(), 3u);
  const std::string unknown = error_of<bp::ValueError>([] { bpd::Augmentation::parse("crop,rotate"); });
  EXPECT_THAT(unknown, HasSubstr("unknown augmentation 'rotate'"));
  EXPECT_THAT(unknown, HasSubstr("crop, flip, erase"));
  EXPECT_THAT(error_of<bp::ValueError>([] { bpd::Augmentation::parse("flip,flip"); }), HasSubstr("twice"));
  EXPECT_THAT(error_of<bp::ValueError>([] { bpd::Augmentation::parse("crop,"); }),
              HasSubstr("unknown augmentation ''"));
}

TEST(Augment, SeededPerImageSameSeedSameBatchesEpochsDiffer) {
  const bpd::ImageShape s{1, 6, 6};
  const bpd::TensorDataset d = images(8, s);
  const auto aug = all_three();
  auto run = [&](std::uint64_t seed, std::int64_t epoch, std::int64_t first, std::int64_t rows) {
    bp::Tensor x = bp::narrow(d.features, first, rows).clone();
    aug->apply(x, s, seed, epoch, first);
    return x;
  };
  EXPECT_TRUE(same_bytes(run(1, 0, 0, 8), run(1, 0, 0, 8)));
  EXPECT_FALSE(same_bytes(run(1, 0, 0, 8), run(1, 1, 0, 8)));
  EXPECT_FALSE(same_bytes(run(1, 0, 0, 8), run(2, 0, 0, 8)));
  // An image's change depends on its position in the epoch, not on how the epoch is cut into batches.
  EXPECT_TRUE(same_bytes(bp::concat({run(1, 3, 0, 3), run(1, 3, 3, 5)}), run(1, 3, 0, 8)));
  // Rows [B, C*H*W] are augmented as the same images.
  bp::Tensor flat = bp::narrow(d.features, 0, 8).clone().reshape({8, 36});
  aug->apply(flat, s, 1, 0, 0);
  EXPECT_TRUE(same_bytes(flat.reshape({8, 1, 6, 6}), run(1, 0, 0, 8)));
  bp::Tensor wrong = bp::zeros({2, 35});
  EXPECT_THAT(error_of<bp::ShapeError>([&] { aug->apply(wrong, s, 1, 0, 0); }),
              HasSubstr("does not hold images"));
}

TEST(Augment, LoaderAugmentsTrainingBatchesOnly) {
  const bpd::ImageShape s{1, 5, 5};
  const bpd::TensorDataset d = images(10, s);
  bpd::DataLoader plain(d, {.batch_size = 10, .shuffle = false});
  bpd::DataLoader augmented(d, {.batch_size = 10, .shuffle = false, .augment = all_three()});
  EXPECT_TRUE(same_bytes(plain.batch(0).features, d.features));
  EXPECT_FALSE(same_bytes(augmented.batch(0).features, d.features));
  EXPECT_TRUE(same_bytes(augmented.batch(0).targets, d.targets));
  // The dataset itself is never changed.
  EXPECT_TRUE(same_bytes(images(10, s).features, d.features));
  // Flat rows need their image shape; a wrong one is refused.
  bpd::TensorDataset flat = d.flattened();
  EXPECT_THAT(error_of<bp::ShapeError>([&] { bpd::DataLoader(flat, {.augment = all_three()}); }),
              HasSubstr("image data needs features"));
  EXPECT_THAT(error_of<bp::ShapeError>([&] {
                bpd::DataLoader(flat, {.augment = all_three(), .image_shape = {1, 4, 5}});
              }),
              HasSubstr("augmentation needs image data"));
  bpd::DataLoader rows(flat, {.batch_size = 10, .shuffle = false, .augment = all_three(), .image_shape = s});
  EXPECT_TRUE(same_bytes(rows.batch(0).features.reshape({10, 1, 5, 5}), augmented.batch(0).features));
}

TEST(Prefetch, ByteIdenticalBatchesToNoPrefetch) {
  const bpd::ImageShape s{2, 6, 6};
  const bpd::TensorDataset d = images(53, s);
  for (const bool augment : {false, true}) {
    bpd::LoaderOptions o{
        .batch_size = 8, .shuffle = true, .seed = 11, .augment = augment ? all_three() : nullptr};
    o.prefetch = false;
    bpd::DataLoader sync(d, o);
    o.prefetch = true;
    bpd::DataLoader ahead(d, o);
    for (std::int64_t epoch : {0, 1, 5, 2}) {
      sync.set_epoch(epoch);
      ahead.set_epoch(epoch);
      // Batches kept (no buffer can be reused) ...
      const auto want = epoch_batches(sync);
      const auto got = epoch_batches(ahead);
      ASSERT_EQ(want.size(), got.size());
      for (std::size_t i = 0; i < want.size(); ++i) {
        EXPECT_TRUE(same_bytes(want[i].features, got[i].features)) << "epoch " << epoch << " batch " << i;
        EXPECT_TRUE(same_bytes(want[i].targets, got[i].targets)) << "epoch " << epoch << " batch " << i;
      }
      // ... and dropped at once (the buffers are reused), compared while each is alive.
      std::size_t i = 0;
      for (const bpd::Batch& b : ahead) {
        EXPECT_TRUE(same_bytes(b.features, want[i].features)) << "epoch " << epoch << " batch " << i;
        ++i;
      }
      // Out of order, as a resumed epoch or a random access does.
      EXPECT_TRUE(same_bytes(ahead.batch(4).features, want[4].features));
      EXPECT_TRUE(same_bytes(ahead.batch(2).features, want[2].features));
      EXPECT_TRUE(same_bytes(ahead.batch(3).features, want[3].features));
    }
  }
}

TEST(Prefetch, SteadyStateAllocatesNoStorage) {
  const bpd::TensorDataset d = images(64, {1, 4, 4});
  bpd::DataLoader loader(
      d, {.batch_size = 4, .shuffle = true, .seed = 3, .augment = all_three(), .prefetch = true});
  std::uint64_t before = 0;
  std::int64_t i = 0;
  double sum = 0;
  for (const bpd::Batch& b : loader) {
    sum += b.features.flat(0);
    if (i++ == 4) before = bp::memory_stats().allocations;  // after the two buffers were filled once
  }
  EXPECT_EQ(bp::memory_stats().allocations, before) << "batches 5 .. 15 allocated storage";
  EXPECT_EQ(i, 16);
  EXPECT_GT(sum, 0.0);
}

TEST(Prefetch, CallerThrowingMidEpochOrStoppingEarlyShutsDownCleanly) {
  const bpd::TensorDataset d = images(40, {1, 4, 4});
  // The consumer throws mid-epoch: the loader (and its thread) goes away during the unwinding.
  EXPECT_THROW(
      {
        bpd::DataLoader loader(d, {.batch_size = 4, .augment = all_three(), .prefetch = true});
        int seen = 0;
        for (const bpd::Batch& b : loader)
          if (++seen == 3 && b.features.size(0) == 4) throw std::runtime_error("step failed");
      },
      std::runtime_error);
  // The consumer stops after one batch, while the next is being prepared.
  for (int k = 0; k < 20; ++k) {
    bpd::DataLoader loader(d, {.batch_size = 4, .augment = all_three(), .prefetch = true});
    EXPECT_EQ(loader.batch(0).features.size(0), 4);
  }
  // A copy has its own thread; the original keeps working after the copy is gone.
  bpd::DataLoader original(d, {.batch_size = 4});
  original.batch(0);
  {
    bpd::DataLoader copy = original;
    EXPECT_TRUE(same_bytes(copy.batch(1).features, original.batch(1).features));
  }
  EXPECT_EQ(epoch_batches(original).size(), 10u);
}

TEST(Prefetch, ErrorOnTheLoaderThreadReachesTheCaller) {
  bpd::TensorDataset d = images(12, {1, 2, 2});
  // Example 6 in dataset order is the first image of batch 1, prepared on the loader thread.
  const float marker = d.features.data<float>()[6 * 4];
  auto aug = std::make_shared<const bpd::Augmentation>(
      std::vector<std::shared_ptr<const bpd::Transform>>{std::make_shared<FailsAt>(marker)});
  bpd::DataLoader loader(d, {.batch_size = 6, .shuffle = false, .augment = aug, .prefetch = true});
  EXPECT_NO_THROW(loader.batch(0));
  EXPECT_THROW(loader.batch(1), std::runtime_error);
  EXPECT_THROW(loader.batch(1), std::runtime_error);  // asked again: prepared again, fails again
  EXPECT_NO_THROW(loader.batch(0));
}
