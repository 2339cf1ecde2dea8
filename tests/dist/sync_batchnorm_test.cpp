// SyncBatchNorm2d on 2 ranks against BatchNorm2d on the whole batch in one process (forward, backward,
// running statistics, eval), and data-parallel training of a small CNN on Fashion-MNIST against one process:
// with synchronised batch norm the same weights up to rounding, with per-rank statistics measurably not.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <backprop/backprop.hpp>
#include <backprop/dist.hpp>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "util/require.hpp"

namespace bp = backprop;
namespace dist = backprop::dist;
using ::testing::HasSubstr;

namespace {

/// max over state entries of max|a - b| / max(max|b|, floor).
double max_rel_diff(const bp::nn::Module& a, const bp::nn::Module& b, double floor) {
  double worst = 0.0;
  const auto sa = a.state_dict(), sb = b.state_dict();
  EXPECT_EQ(sa.size(), sb.size());
  for (const auto& [name, ta] : sa) {
    const bp::Tensor& tb = sb.at(name);
    double scale = 0.0;
    for (std::int64_t i = 0; i < tb.numel(); ++i) scale = std::max(scale, std::abs(tb.flat(i)));
    worst = std::max(worst, bp::max_abs_diff(ta, tb) / std::max(scale, floor));
  }
  return worst;
}

/// This rank's rows of a whole batch.
bp::Tensor my_rows(const bp::Tensor& whole) {
  const dist::Shard s = dist::shard_of(whole.size(0), dist::rank(), dist::size());
  return bp::narrow(whole, 0, s.begin, s.rows()).contiguous();
}

/// A BatchNorm2d(3) in f64 with gamma and beta away from 1 and 0, so that they enter every derivative.
bp::nn::BatchNorm2d affine_bn() {
  bp::nn::BatchNorm2d bn(3, {.momentum = 0.3, .dtype = bp::f64});
  bp::NoGradGuard guard;
  const_cast<bp::Tensor&>(bn.weight()).copy_(bp::from_vector({0.5, 2.0, -1.5}, {3}, bp::f64));
  const_cast<bp::Tensor&>(bn.bias()).copy_(bp::from_vector({0.1, -0.4, 0.7}, {3}, bp::f64));
  return bn;
}

/// Conv (4 channels, 3x3, padding 1, no bias: batch norm supplies the shift), BatchNorm2d, ReLU, 2x2 max
/// pooling, a dense layer to the 10 classes.
bp::nn::Sequential small_cnn(std::uint64_t seed) {
  bp::Generator gen(seed);
  return bp::nn::Sequential{bp::nn::Conv2d(1, 4, 3, gen, {.padding = 1, .bias = false}),
                            bp::nn::BatchNorm2d(4),
                            bp::nn::ReLU(),
                            bp::nn::MaxPool2d(2),
                            bp::nn::Flatten(),
                            bp::nn::Linear(4 * 14 * 14, 10, gen)};
}

}  // namespace

TEST(DistSyncBatchNorm2d, TwoRanksEqualBatchNorm2dOnTheWholeBatch) {
  // 5 images: shards of 2 and 3, so the global count is not twice a local one.
  bp::Generator gen(31);
  const bp::Tensor x = bp::add(bp::mul(bp::randn({5, 3, 4, 6}, gen, bp::f64), 2.0), 3.0);
  const bp::Tensor probe = bp::randn({5, 3, 4, 6}, gen, bp::f64);  // the cost: sum(y * probe)

  auto whole = affine_bn();
  const bp::Tensor xw = x.clone().requires_grad_(true);
  const bp::Tensor yw = whole(xw);
  bp::sum(bp::mul(yw, probe)).backward();

  auto plain = affine_bn();
  dist::SyncBatchNorm2d sync(plain);
  const bp::Tensor xr = my_rows(x).requires_grad_(true);
  const bp::Tensor yr = sync(xr);
  bp::sum(bp::mul(yr, my_rows(probe))).backward();

  // Each rank's output and input gradient are its rows of the one-process ones: the statistics and their
  // derivatives cover every rank's values.
  EXPECT_LT(bp::max_abs_diff(yr, my_rows(yw)), 1e-12);
  EXPECT_LT(bp::max_abs_diff(xr.grad(), my_rows(xw.grad())), 1e-12);
  // gamma and beta get each rank's share; the sum over ranks (what DataParallel forms) is the whole gradient.
  for (const auto& [p, q] :
       {std::pair{plain.weight(), whole.weight()}, std::pair{plain.bias(), whole.bias()}}) {
    bp::Tensor g = p.grad().clone();
    dist::all_reduce_sum_(g);
    EXPECT_LT(bp::max_abs_diff(g, q.grad()), 1e-12);
  }
  // The running statistics (unbiased with the global n = 5 * 4 * 6) and the counter are the plain layer's.
  EXPECT_LT(bp::max_abs_diff(plain.running_mean(), whole.running_mean()), 1e-14);
  EXPECT_LT(bp::max_abs_diff(plain.running_var(), whole.running_var()), 1e-14);
  EXPECT_EQ(plain.num_batches_tracked(), 1);
  EXPECT_GT(bp::max_abs_diff(plain.running_mean(), bp::zeros({3}, bp::f64)), 0.5);  // it did move

  // Eval mode uses the running statistics, without communication: rank-local rows give the same values.
  sync.eval();
  whole.eval();
  EXPECT_LT(bp::max_abs_diff(sync(my_rows(x)), my_rows(whole(x))), 1e-12);

  EXPECT_EQ(sync.repr(),
            "SyncBatchNorm2d(3, eps=1e-05, momentum=0.3, affine=True, track_running_stats=True)");
  const auto names = [](const bp::nn::Module& m) {
    std::vector<std::string> n;
    for (const auto& [k, v] : m.state_dict()) n.push_back(k);
    return n;
  };
  EXPECT_EQ(names(sync), names(plain));
}

TEST(DistSyncBatchNorm2d, Float32VarianceStaysAccurateFarFromZero) {
  // Values around 1000 with spread 1: the sum of squares minus the squared mean would lose every digit of the
  // variance in f32; the centred second pass keeps it as accurate as one process's BatchNorm2d.
  bp::Generator gen(32);
  const bp::Tensor x = bp::add(bp::randn({8, 2, 5, 5}, gen), 1000.0);
  bp::nn::BatchNorm2d whole(2, {.momentum = 1.0}), plain(2, {.momentum = 1.0});
  whole(x);
  dist::SyncBatchNorm2d sync(plain);
  sync(my_rows(x));
  for (std::int64_t c = 0; c < 2; ++c) {
    const double want = whole.running_var().flat(c);
    EXPECT_GT(want, 0.5);  // the spread of randn: not lost to cancellation in the reference either
    EXPECT_NEAR(plain.running_var().flat(c), want, 1e-4 * want) << "channel " << c;
  }
}

TEST(DistSyncBatchNorm2d, ConvertReplacesBothKindsAndKeepsTheNames) {
  bp::Generator gen(33);
  bp::nn::Sequential net{bp::nn::Conv2d(1, 2, 3, gen), bp::nn::BatchNorm2d(2), bp::nn::Flatten(),
                         bp::nn::Linear(2 * 4 * 4, 3, gen), bp::nn::BatchNorm1d(3)};
  const auto sync = dist::convert_sync_batchnorm(net);
  EXPECT_NE(std::dynamic_pointer_cast<dist::SyncBatchNorm2d>((*sync)[1]), nullptr);
  EXPECT_NE(std::dynamic_pointer_cast<dist::SyncBatchNorm1d>((*sync)[4]), nullptr);
  EXPECT_EQ(sync->state_dict().size(), net.state_dict().size());
  for (const auto& [name, t] : net.state_dict())  // the same tensors, not copies
    EXPECT_EQ(sync->state_dict().at(name).raw_data(), t.raw_data()) << name;

  dist::SyncBatchNorm2d bn(bp::nn::BatchNorm2d(2));
  EXPECT_THAT(
      [&] {
        bn(bp::zeros({2, 3, 4, 4}));
      },
      testing::ThrowsMessage<bp::ShapeError>(HasSubstr("expected input [N, 2, H, W], got [2, 3, 4, 4]")));
  EXPECT_THAT(
      [&] {
        bn(bp::zeros({2, 2, 4, 4}, bp::f64));
      },
      testing::ThrowsMessage<bp::DTypeError>(HasSubstr("SyncBatchNorm2d(2): input is f64")));
}

TEST(DistFit, ConvNetWithSyncBatchNorm2dMatchesOneProcessLocalStatisticsDoNot) {
  const std::string dir = bp::data::FashionMNIST::default_dir;
  REQUIRE_INSTALLED(std::filesystem::exists(dir + "/train-images-idx3-ubyte.gz"), "dataset-fashion-mnist",
                    "Fashion-MNIST in " + dir);
  // 300 images [N, 1, 28, 28] f32, 2 epochs in global batches of 40 (the last one 20: shards of 10), so 16
  // updates of momentum SGD; every rank also trains the one-process reference itself.
  const bp::data::TensorDataset data = bp::data::FashionMNIST::load(dir, bp::data::Split::train, 300);
  ASSERT_EQ(data.features.dim(), 4);
  const bp::train::FitOptions fit{.epochs = 2, .batch_size = 40, .seed = 5};
  const bp::optim::SGDOptions sgd{.lr = 0.05, .momentum = 0.9};
  const auto train_alone = [&] {
    auto net = small_cnn(4);
    bp::optim::SGD opt(net.parameters(), sgd);
    bp::train::fit(net, bp::loss::CrossEntropy{}, opt, data, fit);
    return net;
  };
  const auto train_on_ranks = [&](bool sync_batchnorm) {
    auto net = small_cnn(4);
    std::shared_ptr<bp::nn::Module> model = std::make_shared<bp::nn::Sequential>(net);
    if (sync_batchnorm) model = dist::convert_sync_batchnorm(net);
    bp::optim::SGD opt(model->parameters(), sgd);
    dist::fit(*model, bp::loss::CrossEntropy{}, opt, data, fit);
    // With local statistics each rank's running statistics follow its own shards, so only sync is checked.
    if (sync_batchnorm) {
      EXPECT_EQ(dist::max_divergence(*model), 0.0) << "the ranks' states differ";
    }
    return net;  // shares the trained tensors with `model`
  };
  const auto single = train_alone(), synced = train_on_ranks(true), local = train_on_ranks(false);
  // Weights and running statistics relative to each tensor's largest value (floor 1e-3 for tensors near 0).
  const double sync_err = max_rel_diff(synced, single, 1e-3), local_err = max_rel_diff(local, single, 1e-3);
  if (dist::is_root())
    std::printf("[ measured ] CNN, f32, 16 updates: sync batch norm %.3g, local statistics %.3g\n", sync_err,
                local_err);
  // Sync: the same function, computed with sums in another order (per-rank partial sums, then the
  // all-reduce) over 16 momentum steps in float32: rounding differences of ~1e-7 per step, grown by training.
  EXPECT_LT(sync_err, 1e-4);
  // Local: each rank normalises by its own half-batch's statistics, a different function (docs/distributed.md).
  EXPECT_GT(local_err, 1e-2);
}
