// A Trainer over dist::Collective interrupted by a stop flag that only one rank raises, then resumed on one
// rank or on two: the same weights as one straight run. Gradient-flow measurement on two ranks against one
// process.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <backprop/backprop.hpp>
#include <backprop/dist.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "dist/mpi_util.hpp"

namespace bp = backprop;
namespace dist = backprop::dist;
using ::testing::HasSubstr;

namespace {

const bp::loss::CrossEntropy ce;

/// Three classes in 6-D: class = which of three projections is largest.
bp::data::TensorDataset points(std::int64_t n, std::uint64_t seed) {
  bp::Generator gen(seed);
  bp::Tensor x = bp::randn({n, 6}, gen, bp::f64);
  std::vector<double> y(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    const double a = x.at({i, 0}) - x.at({i, 5}), b = x.at({i, 2}) + x.at({i, 3}), c = x.at({i, 4});
    y[static_cast<std::size_t>(i)] = a > b && a > c ? 0 : (b > c ? 1 : 2);
  }
  bp::data::TensorDataset d;
  d.features = x;
  d.targets = bp::from_vector(y, {}, bp::f64);
  d.task = bp::data::Task::classification;
  d.num_classes = 3;
  return d;
}

/// `points` with half of the labels replaced by random ones: a wide network overfits them.
bp::data::TensorDataset noisy_points(std::int64_t n, std::uint64_t seed) {
  bp::data::TensorDataset d = points(n, seed);
  bp::Generator gen(seed + 100);
  std::vector<double> y(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i)
    y[static_cast<std::size_t>(i)] =
        gen.uniform() < 0.5 ? static_cast<double>(gen.below(3)) : d.targets.flat(i);
  d.targets = bp::from_vector(y, {}, bp::f64);
  return d;
}

bp::nn::Sequential tanh_net(std::uint64_t seed) {
  bp::Generator gen(seed);
  return bp::nn::Sequential{bp::nn::Linear(6, 12, gen, {.dtype = bp::f64}), bp::nn::Tanh(),
                            bp::nn::Linear(12, 12, gen, {.dtype = bp::f64}), bp::nn::ReLU(),
                            bp::nn::Linear(12, 3, gen, {.dtype = bp::f64})};
}

double max_rel_diff(const bp::nn::Module& a, const bp::nn::Module& b) {
  double worst = 0.0;
  const auto sa = a.state_dict(), sb = b.state_dict();
  for (const auto& [name, ta] : sa) {
    const bp::Tensor& tb = sb.at(name);
    double scale = 0.0;
    for (std::int64_t i = 0; i < tb.numel(); ++i) scale = std::max(scale, std::abs(tb.flat(i)));
    worst = std::max(worst, bp::max_abs_diff(ta, tb) / std::max(scale, 1e-3));
  }
  return worst;
}

/// Cross-entropy that raises `flag` on one rank only, during the forward of training update `at`: the other
/// rank never sees the flag, so only a collective decision can stop both after the same update.
struct FlagOnOneRank : bp::loss::Loss {
  std::atomic<bool>* flag;
  int on_rank;
  std::int64_t at;
  mutable std::int64_t calls = 0;
  FlagOnOneRank(std::atomic<bool>* f, int r, std::int64_t a) : flag(f), on_rank(r), at(a) {}
  bp::Tensor operator()(const bp::Tensor& out, const bp::Tensor& y) const override {
    // Training forwards only (validation runs without recording).
    if (bp::GradMode::is_enabled() && ++calls == at && dist::rank() == on_rank) *flag = true;
    return bp::loss::CrossEntropy{}(out, y);
  }
  std::string repr() const override { return "FlagOnOneRank"; }
};

struct GradFlowCounter : bp::train::Callback {
  std::int64_t records = 0;
  void on_grad_flow(const bp::train::GradFlowRecord&) override { ++records; }
};

}  // namespace

TEST(DistResume, StopOnOneRankThenResumeOnOneOrTwoRanksEqualsStraight) {
  const auto data = points(60, 3), val = points(30, 4);
  // 60 rows in batches of 8: 8 batches per epoch, the last of 4 rows (2 per rank).
  const bp::train::FitOptions base{.epochs = 3, .batch_size = 8, .seed = 7, .validation = &val};
  const bp::optim::SGDOptions sgd{.lr = 0.1, .momentum = 0.9};
  auto straight = tanh_net(5);
  bp::optim::SGD straight_opt(straight.parameters(), sgd);
  const auto reference = bp::train::fit(straight, bp::loss::CrossEntropy{}, straight_opt, data, base);

  for (const int raiser : {0, 1}) {
    auto net = tanh_net(5);
    bp::optim::SGD opt(net.parameters(), sgd);
    std::atomic<bool> flag{false};
    bp::train::FitOptions first = base;
    first.stop = &flag;
    const FlagOnOneRank raising(&flag, raiser, 11);
    bp::train::Trainer interrupted(net, raising, opt, first, std::make_shared<dist::Collective>());
    const auto h = interrupted.fit(data);
    ASSERT_TRUE(h.interrupted) << "flag raised on rank " << raiser;
    EXPECT_EQ(h.total_updates, 11);  // both ranks stopped after the same update
    EXPECT_EQ(dist::all_reduce_max(static_cast<double>(h.total_updates)), 11.0);
    EXPECT_EQ(h.epochs_done, 1);
    const bp::train::TrainerState saved = interrupted.state();
    EXPECT_EQ(saved.partial.batches, 3);
    EXPECT_EQ(saved.partial.seen, 24);
    EXPECT_EQ(dist::max_divergence(net), 0.0);

    // On one rank, from the state as a checkpoint holds it.
    auto alone = tanh_net(999);
    bp::optim::SGD alone_opt(alone.parameters(), sgd);
    bp::train::Trainer one(alone, ce, alone_opt, base);
    one.load_state(saved);
    const auto ha = one.fit(data);
    const double err1 = max_rel_diff(alone, straight);
    EXPECT_LT(err1, 1e-5);
    ASSERT_EQ(ha.epochs.size(), 2u);
    EXPECT_NEAR(ha.epochs[0].train_loss, reference.epochs[1].train_loss, 1e-9);
    EXPECT_EQ(ha.epochs[0].train_accuracy, reference.epochs[1].train_accuracy);
    EXPECT_EQ(ha.epochs[0].updates, reference.epochs[1].updates);
    EXPECT_EQ(ha.total_updates, reference.total_updates);

    // On two ranks again.
    auto both = tanh_net(998);
    bp::optim::SGD both_opt(both.parameters(), sgd);
    bp::train::Trainer two(both, ce, both_opt, base, std::make_shared<dist::Collective>());
    two.load_state(saved);
    const auto hb = two.fit(data);
    const double err2 = max_rel_diff(both, straight);
    EXPECT_LT(err2, 1e-5);
    EXPECT_EQ(dist::max_divergence(both), 0.0);
    ASSERT_EQ(hb.epochs.size(), 2u);
    EXPECT_NEAR(hb.epochs[0].train_loss, reference.epochs[1].train_loss, 1e-9);
    EXPECT_NEAR(hb.epochs[1].val_loss, reference.epochs[2].val_loss, 1e-9);
    EXPECT_EQ(hb.total_updates, reference.total_updates);
    if (dist::is_root())
      std::printf(
          "[ measured ] stop on rank %d at step 11, resume: max relative weight difference %.3g (1 rank),"
          " %.3g (2 ranks)\n",
          raiser, err1, err2);
  }
}

// Early stopping across a resume on 2 ranks: the same stop epoch and, with the best weights handed back, the
// same restored weights as the straight 2-rank run.
TEST(DistResume, EarlyStoppingAcrossAResumeEqualsStraight) {
  const auto data = noisy_points(60, 5), val = points(60, 6);
  const bp::train::FitOptions base{
      .epochs = 60, .batch_size = 10, .seed = 3, .validation = &val, .early_stopping_patience = 3};
  const bp::optim::SGDOptions sgd{.lr = 0.2, .momentum = 0.9};
  auto straight = tanh_net(8);
  bp::optim::SGD straight_opt(straight.parameters(), sgd);
  const auto reference = dist::fit(straight, bp::loss::CrossEntropy{}, straight_opt, data, base);
  ASSERT_TRUE(reference.stopped_early) << "the scenario must stop early";
  const std::int64_t best = reference.best_epoch;

  auto net = tanh_net(8);
  bp::optim::SGD opt(net.parameters(), sgd);
  std::atomic<bool> flag{false};
  bp::train::FitOptions first = base;
  first.stop = &flag;
  const FlagOnOneRank raising(&flag, 1, best * 6 + 2);
  bp::train::Trainer interrupted(net, raising, opt, first, std::make_shared<dist::Collective>());
  const auto h = interrupted.fit(data);
  ASSERT_TRUE(h.interrupted);
  const bp::train::TrainerState saved = interrupted.state();
  EXPECT_EQ(saved.early_stopping.best_epoch, best);
  EXPECT_FALSE(saved.best_state.empty());

  auto resumed = tanh_net(997);
  bp::optim::SGD resumed_opt(resumed.parameters(), sgd);
  bp::train::Trainer again(resumed, ce, resumed_opt, base, std::make_shared<dist::Collective>());
  again.load_state(saved);
  const auto hr = again.fit(data);
  EXPECT_TRUE(hr.stopped_early);
  EXPECT_TRUE(hr.restored_best);
  EXPECT_EQ(hr.epochs_done, reference.epochs_done);
  EXPECT_EQ(hr.best_epoch, best);
  EXPECT_LT(max_rel_diff(resumed, straight), 1e-12);
}

// A flag raised on the last update of an epoch on one rank: both finish the epoch, then stop.
TEST(DistResume, StopOnTheLastBatchFinishesTheEpochOnEveryRank) {
  const auto data = points(60, 3), val = points(30, 4);
  auto net = tanh_net(5);
  bp::optim::SGD opt(net.parameters(), {.lr = 0.1});
  std::atomic<bool> flag{false};
  const FlagOnOneRank raising(&flag, 1, 8);
  bp::train::Trainer trainer(net, raising, opt,
                             {.epochs = 3, .batch_size = 8, .seed = 7, .validation = &val, .stop = &flag},
                             std::make_shared<dist::Collective>());
  const auto h = trainer.fit(data);
  EXPECT_TRUE(h.interrupted);
  EXPECT_EQ(h.epochs_done, 1);
  EXPECT_EQ(trainer.partial().batches, 0);
  ASSERT_EQ(h.epochs.size(), 1u);
  EXPECT_TRUE(std::isfinite(h.epochs[0].val_loss));
}

TEST(DistResume, GradFlowOnTwoRanksMatchesOneProcess) {
  const auto data = points(60, 3);
  const bp::train::FitOptions options{.epochs = 2, .batch_size = 8, .seed = 7, .grad_flow_every = 3};
  auto single = tanh_net(5);
  bp::optim::SGD single_opt(single.parameters(), {.lr = 0.1});
  const auto h1 = bp::train::fit(single, bp::loss::CrossEntropy{}, single_opt, data, options);

  auto net = tanh_net(5);
  bp::optim::SGD opt(net.parameters(), {.lr = 0.1});
  GradFlowCounter counter;
  bp::train::FitOptions o = options;
  o.callbacks = {&counter};
  const auto hk = dist::fit(net, bp::loss::CrossEntropy{}, opt, data, o);
  ASSERT_EQ(hk.grad_flow.size(), h1.grad_flow.size());
  ASSERT_EQ(hk.grad_flow.size(), 5u);                   // 16 updates: steps 3, 6, 9, 12, 15
  EXPECT_EQ(counter.records, dist::is_root() ? 5 : 0);  // callbacks run on rank 0 only
  for (std::size_t r = 0; r < hk.grad_flow.size(); ++r) {
    EXPECT_EQ(hk.grad_flow[r].step, h1.grad_flow[r].step);
    EXPECT_EQ(hk.grad_flow[r].epoch, h1.grad_flow[r].epoch);
    ASSERT_EQ(hk.grad_flow[r].layers.size(), h1.grad_flow[r].layers.size());
    for (std::size_t l = 0; l < hk.grad_flow[r].layers.size(); ++l) {
      const auto& a = hk.grad_flow[r].layers[l];
      const auto& b = h1.grad_flow[r].layers[l];
      EXPECT_EQ(a.name, b.name);
      EXPECT_NEAR(a.grad_norm, b.grad_norm, 1e-9 * std::max(1.0, b.grad_norm)) << a.name << " at " << r;
      EXPECT_NEAR(a.saturated_fraction, b.saturated_fraction, 1e-12) << a.name;
      EXPECT_NEAR(a.dead_fraction, b.dead_fraction, 1e-12) << a.name;
      // Every rank holds the same figures.
      EXPECT_EQ(dist::all_reduce_max(a.grad_norm), a.grad_norm);
      EXPECT_EQ(-dist::all_reduce_max(-a.grad_norm), a.grad_norm);
    }
  }
}

TEST(DistResume, BadResumeStateIsRefusedOnEveryRank) {
  const auto data = points(60, 3);
  auto net = tanh_net(5);
  bp::optim::SGD opt(net.parameters(), {.lr = 0.1});
  bp::train::Trainer trainer(net, ce, opt, {.epochs = 2, .batch_size = 8},
                             std::make_shared<dist::Collective>());
  bp::train::TrainerState state = trainer.state();
  state.partial = {.batches = 8, .seen = 64, .updates = 8};
  trainer.load_state(state);
  EXPECT_THAT(
      [&] { trainer.fit(data); },
      testing::ThrowsMessage<bp::ValueError>(HasSubstr(
          "fit: the state resumes after batch 8 of epoch 1 but an epoch of this data has 8 batches")));
}

// The collective stop costs one MPI_Allreduce of an int per update; a flag raised on one rank reaches all.
TEST(DistResume, MeasuredCostOfTheStopAllReduce) {
  const int reps = 2000;
  dist::barrier();
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) {
    int flag = i % 2 == 1 && dist::rank() == dist::size() - 1 ? 1 : 0;
    dist::detail::check(MPI_Allreduce(MPI_IN_PLACE, &flag, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD),
                        "MPI_Allreduce");
    ASSERT_EQ(flag, i % 2) << "iteration " << i;
  }
  const double us =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / reps * 1e6;
  if (dist::is_root())
    std::printf("[ measured ] stop-flag MPI_Allreduce (1 int, %d ranks): %.2f us per update\n", dist::size(),
                us);
}
