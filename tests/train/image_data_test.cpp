// Image-shaped data [N, C, H, W] through fit(), evaluate() and predict(): a dense network sees rows, as
// before; augmentation changes the training batches only, the same way for a seed and any thread count.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/train.hpp>
#include <cstring>

namespace bp = backprop;

namespace {

// 60 images 1x4x4: class 1 when the left half is brighter than the right.
bp::data::TensorDataset images() {
  bp::Generator gen(5);
  bp::Tensor x = bp::rand({60, 1, 4, 4}, gen);
  std::vector<double> y;
  for (std::int64_t i = 0; i < 60; ++i) {
    double left = 0, right = 0;
    for (std::int64_t r = 0; r < 4; ++r)
      for (std::int64_t c = 0; c < 4; ++c) (c < 2 ? left : right) += x.at({i, 0, r, c});
    y.push_back(left > right ? 1 : 0);
  }
  bp::data::TensorDataset d;
  d.features = x;
  d.targets = bp::from_vector(y);
  d.num_classes = 2;
  return d;
}

struct Trained {
  std::vector<double> losses;
  bp::Tensor weight;
};

Trained train(const bp::data::TensorDataset& d, bp::train::FitOptions o) {
  bp::Generator gen(1);
  bp::nn::Sequential net{bp::nn::Linear(16, 8, gen), bp::nn::ReLU(), bp::nn::Linear(8, 2, gen)};
  bp::optim::SGD opt(net.parameters(), {.lr = 0.1});
  bp::loss::CrossEntropy ce;
  o.epochs = 3;
  o.batch_size = 16;
  o.seed = 9;
  Trained r;
  for (const auto& e : bp::train::fit(net, ce, opt, d, o).epochs) r.losses.push_back(e.train_loss);
  r.weight = net.named_parameters().front().second.detach().clone();
  return r;
}

bool same(const bp::Tensor& a, const bp::Tensor& b) {
  return a.shape() == b.shape() && std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

}  // namespace

TEST(ImageData, DenseNetworkTrainsOnImagesAsOnRows) {
  const bp::data::TensorDataset d = images();
  const Trained shaped = train(d, {});
  const Trained rows = train(d.flattened(), {});
  EXPECT_EQ(shaped.losses, rows.losses);
  EXPECT_TRUE(same(shaped.weight, rows.weight));
  // With prefetch: the same batches, the same run.
  EXPECT_TRUE(same(train(d, {.prefetch = true}).weight, shaped.weight));

  bp::Generator gen(2);
  bp::nn::Sequential net{bp::nn::Linear(16, 2, gen)};
  bp::loss::CrossEntropy ce;
  const auto a = bp::train::evaluate(net, ce, d);
  const auto b = bp::train::evaluate(net, ce, d.flattened());
  EXPECT_EQ(a.loss, b.loss);
  EXPECT_EQ(a.confusion, b.confusion);
  EXPECT_TRUE(same(bp::train::predict(net, d.features), bp::train::predict(net, d.flattened().features)));
  // Only a dense first layer gets rows: anything else sees the images as they are.
  EXPECT_EQ(bp::train::model_input(bp::nn::Sequential{bp::nn::ReLU()}, d.features).shape(),
            d.features.shape());
}

TEST(ImageData, AugmentedBatchesAreSeededAndIndependentOfThreads) {
  const bp::data::TensorDataset d = images();
  const auto aug =
      std::make_shared<const bp::data::Augmentation>(bp::data::Augmentation::parse("crop,flip,erase"));
  auto batches = [&](int threads) {
    const int before = bp::get_num_threads();
    bp::set_num_threads(threads);
    bp::data::DataLoader loader(d, {.batch_size = 16, .seed = 4, .augment = aug});
    loader.set_epoch(2);
    std::vector<bp::data::Batch> out;
    for (const auto& b : loader) out.push_back(b);
    bp::set_num_threads(before);
    return out;
  };
  const auto one = batches(1), two = batches(2);
  ASSERT_EQ(one.size(), two.size());
  for (std::size_t i = 0; i < one.size(); ++i) EXPECT_TRUE(same(one[i].features, two[i].features)) << i;
  // fit() augments: the run is the same for a seed, whether the images come shaped or as rows, and differs
  // from the plain run.
  const Trained shaped = train(d, {.augment = aug});
  EXPECT_TRUE(same(shaped.weight, train(d, {.augment = aug}).weight));
  EXPECT_TRUE(same(shaped.weight, train(d.flattened(), {.augment = aug, .image_shape = {1, 4, 4}}).weight));
  EXPECT_NE(shaped.losses, train(d, {}).losses);
}
