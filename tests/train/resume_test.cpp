// Interrupting a Trainer with a stop flag and resuming from its state() (mid-epoch or at an epoch boundary)
// in a fresh Trainer gives the run an uninterrupted one would have given: bit-identical weights and equal
// epoch metrics. Also: drop_last update counts, step numbering, early-stopping patience across a resume, bad
// states.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <backprop/backprop.hpp>
#include <backprop/io/checkpoint.hpp>
#include <backprop/train.hpp>
#include <cmath>
#include <memory>

namespace bp = backprop;
using ::testing::HasSubstr;

namespace {

/// Three-class data in 5-D (class = largest of three projections); `noise` replaces that share of the labels
/// by random ones, so that a small network overfits and the validation loss turns up.
bp::data::TensorDataset blobs(std::int64_t n, std::uint64_t seed, double noise = 0.0) {
  bp::Generator gen(seed);
  bp::Tensor x = bp::randn({n, 5}, gen);
  std::vector<double> y(static_cast<std::size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    const double a = x.at({i, 0}) + x.at({i, 1}), b = x.at({i, 2}) - x.at({i, 3}), c = x.at({i, 4});
    y[static_cast<std::size_t>(i)] = a > b && a > c ? 0 : (b > c ? 1 : 2);
    if (gen.uniform() < noise) y[static_cast<std::size_t>(i)] = static_cast<double>(gen.below(3));
  }
  bp::data::TensorDataset d;
  d.features = x;
  d.targets = bp::from_vector(y);
  d.task = bp::data::Task::classification;
  d.num_classes = 3;
  return d;
}

/// Dropout makes the module generator's state part of what a resume must restore.
std::shared_ptr<bp::nn::Sequential> net_with_dropout(std::uint64_t seed, std::int64_t hidden = 16) {
  bp::Generator gen(seed);
  return std::make_shared<bp::nn::Sequential>(bp::nn::Sequential{bp::nn::Linear(5, hidden, gen),
                                                                 bp::nn::ReLU(), bp::nn::Dropout(0.3, gen),
                                                                 bp::nn::Linear(hidden, 3, gen)});
}

/// One training run's model, optimiser and scheduler.
struct Rig {
  std::shared_ptr<bp::nn::Sequential> net;
  std::unique_ptr<bp::optim::Adam> opt;
  std::unique_ptr<bp::optim::StepLR> sched;
  explicit Rig(std::uint64_t seed, double lr = 0.01, std::int64_t hidden = 16)
      : net(net_with_dropout(seed, hidden)),
        opt(std::make_unique<bp::optim::Adam>(net->parameters(), bp::optim::AdamOptions{.lr = lr})),
        sched(std::make_unique<bp::optim::StepLR>(*opt, 1, 0.7)) {}
  /// A Trainer over this run's model and optimiser (with its scheduler when `scheduled`).
  std::unique_ptr<bp::train::Trainer> trainer(bp::train::FitOptions o, bool scheduled = true) {
    if (scheduled) o.scheduler = sched.get();
    return std::make_unique<bp::train::Trainer>(*net, loss, *opt, o);
  }
  bp::loss::CrossEntropy loss;
};

/// Sets a stop flag after update number `at` (global step).
class StopAt : public bp::train::Callback {
 public:
  StopAt(std::atomic<bool>& flag, std::int64_t at) : flag_(flag), at_(at) {}
  void on_batch_end(const bp::train::StepInfo& info) override {
    if (info.step == at_) flag_ = true;
  }

 private:
  std::atomic<bool>& flag_;
  std::int64_t at_;
};

/// Records what the callbacks see.
struct Recorder : bp::train::Callback {
  std::vector<std::int64_t> steps, epoch_ends, epoch_begins, batch_sizes;
  void on_epoch_begin(std::int64_t epoch) override { epoch_begins.push_back(epoch); }
  void on_batch_end(const bp::train::StepInfo& info) override {
    steps.push_back(info.step);
    batch_sizes.push_back(info.batch_size);
  }
  bool on_epoch_end(const bp::train::EpochMetrics& m) override {
    epoch_ends.push_back(m.epoch);
    return false;
  }
};

void expect_same_weights(const bp::nn::Module& a, const bp::nn::Module& b) {
  const auto sa = a.state_dict(), sb = b.state_dict();
  ASSERT_EQ(sa.size(), sb.size());
  for (const auto& [name, t] : sa) EXPECT_EQ(bp::max_abs_diff(t, sb.at(name)), 0.0) << name;
}

/// Every metric that does not depend on the clock.
void expect_same_metrics(const bp::train::EpochMetrics& a, const bp::train::EpochMetrics& b) {
  EXPECT_EQ(a.epoch, b.epoch);
  EXPECT_EQ(a.train_loss, b.train_loss) << "epoch " << a.epoch;
  EXPECT_EQ(a.train_accuracy, b.train_accuracy) << "epoch " << a.epoch;
  EXPECT_EQ(a.val_loss, b.val_loss) << "epoch " << a.epoch;
  EXPECT_EQ(a.val_accuracy, b.val_accuracy) << "epoch " << a.epoch;
  EXPECT_EQ(a.lr, b.lr) << "epoch " << a.epoch;
  EXPECT_EQ(a.updates, b.updates) << "epoch " << a.epoch;
}

}  // namespace

TEST(Resume, InterruptedAtAStepThenResumedEqualsStraight) {
  const auto train = blobs(100, 1), val = blobs(40, 2);
  // 100 rows in batches of 16: 7 batches per epoch, the last one of 4 rows.
  const bp::train::FitOptions base{.epochs = 3, .batch_size = 16, .seed = 5, .validation = &val};
  Rig a(3);
  auto ta = a.trainer(base);
  const auto straight = ta->fit(train);
  ASSERT_EQ(straight.epochs.size(), 3u);
  EXPECT_FALSE(straight.interrupted);
  EXPECT_EQ(straight.epochs_done, 3);

  for (const std::int64_t at : {10, 3, 15}) {  // mid-epoch 2, mid-epoch 1, first batch of epoch 3
    Rig b(3);
    std::atomic<bool> flag{false};
    StopAt stopper(flag, at);
    bp::train::FitOptions ob = base;
    ob.stop = &flag;
    ob.callbacks = {&stopper};
    auto tb = b.trainer(ob);
    const auto first = tb->fit(train);
    EXPECT_TRUE(first.interrupted) << "stop at " << at;
    EXPECT_EQ(first.total_updates, at);
    EXPECT_EQ(first.epochs_done, at / 7);
    const bp::train::TrainerState saved = tb->state();
    EXPECT_EQ(saved.partial.batches, at % 7);
    EXPECT_EQ(saved.partial.updates, at % 7);
    EXPECT_EQ(saved.partial.seen, 16 * (at % 7));
    EXPECT_EQ(first.epochs.size(), static_cast<std::size_t>(at / 7));
    EXPECT_EQ(b.opt->steps(), at);
    EXPECT_EQ(b.sched->steps(), at / 7);  // no scheduler step for the unfinished epoch
    EXPECT_EQ(saved.scheduler_steps, at / 7);

    // A different initial seed, then everything restored from the state: only the state can make it match.
    Rig c(999);
    auto tc = c.trainer(base);
    tc->load_state(saved);
    const auto rest = tc->fit(train);
    EXPECT_FALSE(rest.interrupted);
    EXPECT_EQ(rest.epochs_done, 3);
    EXPECT_EQ(rest.total_updates, straight.total_updates);
    expect_same_weights(*c.net, *a.net);
    // The interrupted run's finished epochs plus the resumed run's epochs are the straight run's epochs.
    std::vector<bp::train::EpochMetrics> joined = first.epochs;
    joined.insert(joined.end(), rest.epochs.begin(), rest.epochs.end());
    ASSERT_EQ(joined.size(), straight.epochs.size()) << "stop at " << at;
    for (std::size_t e = 0; e < joined.size(); ++e) expect_same_metrics(joined[e], straight.epochs[e]);
    EXPECT_EQ(rest.best_epoch, straight.best_epoch);
    EXPECT_EQ(tc->early_stopping().best_val_loss, ta->early_stopping().best_val_loss);
  }
}

// Without restoring the dropout generators the continuation differs: the test above depends on them.
TEST(Resume, WithoutTheGeneratorStatesTheResumeDiffers) {
  const auto train = blobs(100, 1);
  const bp::train::FitOptions base{.epochs = 2, .batch_size = 16, .seed = 5};
  Rig a(3);
  a.trainer(base)->fit(train);
  Rig b(3);
  std::atomic<bool> flag{false};
  StopAt stopper(flag, 9);
  bp::train::FitOptions ob = base;
  ob.stop = &flag;
  ob.callbacks = {&stopper};
  auto tb = b.trainer(ob);
  tb->fit(train);
  bp::train::TrainerState saved = tb->state();
  saved.generators.clear();
  Rig c(999);
  // The dropout module now keeps its fresh generator: the state is refused rather than half-loaded.
  EXPECT_THROW(c.trainer(base)->load_state(saved), bp::Error);
  // Loaded by hand without the generators, the run continues with other dropout masks.
  c.net->load_state_dict(saved.model);
  c.opt->load_state(saved.optimizer);
  c.sched->set_steps(saved.scheduler_steps);
  bp::train::TrainerState counters = tb->state();
  counters.generators = bp::io::module_generators(*c.net);
  auto tc = c.trainer(base);
  tc->load_state(counters);
  tc->fit(train);
  double worst = 0.0;
  for (const auto& [name, t] : a.net->state_dict())
    worst = std::max(worst, bp::max_abs_diff(t, c.net->state_dict().at(name)));
  EXPECT_GT(worst, 0.0);
}

// A stop on the epoch's last update ends that epoch normally (validation, scheduler, callbacks) first.
TEST(Resume, StopOnTheLastBatchOfAnEpochFinishesTheEpoch) {
  const auto train = blobs(100, 1), val = blobs(40, 2);
  const bp::train::FitOptions base{.epochs = 3, .batch_size = 16, .seed = 5, .validation = &val};
  Rig a(3);
  const auto straight = a.trainer(base)->fit(train);

  Rig b(3);
  std::atomic<bool> flag{false};
  StopAt stopper(flag, 7);
  Recorder rec;
  bp::train::FitOptions ob = base;
  ob.stop = &flag;
  ob.callbacks = {&stopper, &rec};
  auto tb = b.trainer(ob);
  const auto first = tb->fit(train);
  EXPECT_TRUE(first.interrupted);
  EXPECT_EQ(first.epochs_done, 1);
  EXPECT_EQ(tb->partial().batches, 0);
  EXPECT_EQ(tb->partial().seen, 0);
  ASSERT_EQ(first.epochs.size(), 1u);
  EXPECT_TRUE(std::isfinite(first.epochs[0].val_loss));
  EXPECT_EQ(b.sched->steps(), 1);
  EXPECT_EQ(rec.epoch_ends, std::vector<std::int64_t>{1});
  expect_same_metrics(first.epochs[0], straight.epochs[0]);

  Rig c(999);
  auto tc = c.trainer(base);
  tc->load_state(tb->state());
  const auto rest = tc->fit(train);
  expect_same_weights(*c.net, *a.net);
  ASSERT_EQ(rest.epochs.size(), 2u);
  expect_same_metrics(rest.epochs[1], straight.epochs[2]);

  // On the last update of the last epoch nothing is left to do: not an interruption.
  Rig d(3);
  flag = false;
  StopAt at_end(flag, 21);
  bp::train::FitOptions od = base;
  od.stop = &flag;
  od.callbacks = {&at_end};
  const auto whole = d.trainer(od, false)->fit(train);
  EXPECT_FALSE(whole.interrupted);
  EXPECT_EQ(whole.epochs_done, 3);
}

TEST(Resume, DropLastSkipsTheShortBatch) {
  const auto train = blobs(50, 1);
  for (const bool drop : {false, true}) {
    Rig t(3);
    Recorder rec;
    const auto h =
        t.trainer({.epochs = 2, .batch_size = 16, .drop_last = drop, .callbacks = {&rec}}, false)->fit(train);
    const std::int64_t per_epoch = drop ? 3 : 4;  // 50 = 3 x 16 + 2
    ASSERT_EQ(h.epochs.size(), 2u);
    EXPECT_EQ(h.epochs[0].updates, per_epoch) << "drop_last " << drop;
    EXPECT_EQ(h.total_updates, 2 * per_epoch);
    EXPECT_EQ(t.opt->steps(), 2 * per_epoch);
    for (const std::int64_t rows : rec.batch_sizes) EXPECT_EQ(rows == 16, drop || rows != 2);
    EXPECT_EQ(std::count(rec.batch_sizes.begin(), rec.batch_sizes.end(), 2), drop ? 0 : 2);
  }
  // A batch larger than the set is one full batch, kept even with drop_last.
  Rig t(3);
  const auto h = t.trainer({.epochs = 1, .batch_size = 64, .drop_last = true}, false)->fit(train);
  EXPECT_EQ(h.total_updates, 1);
}

TEST(Resume, ResumedStepsContinueTheNumberingAndGradFlowCadence) {
  const auto train = blobs(50, 1);
  Rig t(3);
  auto first = t.trainer({.epochs = 3, .batch_size = 16, .grad_flow_every = 3}, false);
  first->fit(train);  // 12 updates
  bp::train::TrainerState state = first->state();
  Rig u(4);
  Recorder rec;
  auto rest = u.trainer({.epochs = 5, .batch_size = 16, .grad_flow_every = 3, .callbacks = {&rec}}, false);
  rest->load_state(state);
  const auto h = rest->fit(train);
  ASSERT_EQ(rec.steps.size(), 8u);
  for (std::size_t i = 0; i < rec.steps.size(); ++i)
    EXPECT_EQ(rec.steps[i], 13 + static_cast<std::int64_t>(i));
  EXPECT_EQ(h.total_updates, 20);
  ASSERT_EQ(h.grad_flow.size(), 2u);  // steps 15 and 18 (12 was measured before the resume)
  EXPECT_EQ(h.grad_flow[0].step, 15);
  EXPECT_EQ(h.grad_flow[1].step, 18);
  EXPECT_EQ(h.grad_flow[1].epoch, 5);
}

// Patience counts epochs without improvement across the interruption exactly as in one run; the best weights
// come back only when they are held (taken in this call, or passed in as best_state).
TEST(Resume, EarlyStoppingPatienceAcrossAResumeEqualsStraight) {
  // Noisy labels and a wide network: the validation loss turns up after a few epochs.
  const auto train = blobs(60, 1, 0.5), val = blobs(60, 2);
  const bp::train::FitOptions base{
      .epochs = 60, .batch_size = 10, .seed = 5, .validation = &val, .early_stopping_patience = 3};
  Rig a(3, 0.02, 64);
  const auto straight = a.trainer(base, false)->fit(train);
  ASSERT_TRUE(straight.stopped_early) << "the scenario must stop early";
  ASSERT_TRUE(straight.restored_best);
  const std::int64_t best = straight.best_epoch, last = straight.epochs_done;
  ASSERT_LT(best, last);
  EXPECT_EQ(last, best + 3);

  // Interrupt in the epoch after the best one, so that the best epoch lies before the resume.
  Rig b(3, 0.02, 64);
  std::atomic<bool> flag{false};
  StopAt stopper(flag, best * 6 + 2);
  bp::train::FitOptions ob = base;
  ob.stop = &flag;
  ob.callbacks = {&stopper};
  auto tb = b.trainer(ob, false);
  const auto first = tb->fit(train);
  ASSERT_TRUE(first.interrupted);
  EXPECT_FALSE(first.stopped_early);
  const bp::train::TrainerState saved = tb->state();
  EXPECT_EQ(saved.early_stopping.best_epoch, best);
  EXPECT_EQ(saved.early_stopping.since_best, 0);
  EXPECT_FALSE(saved.best_state.empty());

  // The state holds the best weights: the same stop, the same restored weights.
  Rig c(999, 0.02, 64);
  auto tc = c.trainer(base, false);
  tc->load_state(saved);
  const auto rest = tc->fit(train);
  EXPECT_TRUE(rest.stopped_early);
  EXPECT_TRUE(rest.restored_best);
  EXPECT_EQ(rest.epochs_done, last);
  EXPECT_EQ(rest.best_epoch, best);
  expect_same_weights(*c.net, *a.net);

  // Without them (a checkpoint written before they were kept): the same stop, but the weights stay those of
  // the last epoch.
  Rig d(999, 0.02, 64);
  bp::train::TrainerState bare_state = saved;
  bare_state.best_state.clear();
  auto td = d.trainer(base, false);
  td->load_state(bare_state);
  const auto bare = td->fit(train);
  EXPECT_TRUE(bare.stopped_early);
  EXPECT_FALSE(bare.restored_best);
  EXPECT_EQ(bare.epochs_done, last);
  EXPECT_EQ(td->early_stopping().since_best, 3);

  // A resume that forgets the early-stopping state trains past the straight run's stop.
  Rig e(999, 0.02, 64);
  bp::train::TrainerState forgetful_state = saved;
  forgetful_state.early_stopping = {};
  forgetful_state.best_state.clear();
  auto te = e.trainer(base, false);
  te->load_state(forgetful_state);
  const auto forgetful = te->fit(train);
  EXPECT_GT(forgetful.epochs_done, last);
}

TEST(Resume, BadStatesAreRefused) {
  const auto train = blobs(50, 1);
  Rig t(3);
  auto message = [&](bp::train::FitOptions o, auto change) {
    try {
      auto trainer = t.trainer(o, false);
      bp::train::TrainerState s = trainer->state();
      change(s);
      trainer->load_state(s);
      trainer->fit(train);
    } catch (const bp::ValueError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  const bp::train::FitOptions two{.epochs = 2, .batch_size = 16};
  EXPECT_THAT(message(two, [](auto& s) { s.partial = {.batches = 4, .seen = 64, .updates = 4}; }),
              HasSubstr("resumes after batch 4 of epoch 1 but an epoch of this data has 4 batches"));
  EXPECT_THAT(message(two, [](auto& s) { s.step = -1; }), HasSubstr("epoch and step must be >= 0"));
  EXPECT_THAT(message(two,
                      [](auto& s) {
                        s.epoch = 2;
                        s.partial = {.batches = 1, .seen = 16, .updates = 1};
                      }),
              HasSubstr("resumes inside epoch 3 but epochs is 2"));
  EXPECT_THAT(message(two,
                      [](auto& s) {
                        s.epoch = 1;
                        s.early_stopping.best_epoch = 2;
                      }),
              HasSubstr("best_epoch <= epoch (1)"));
  EXPECT_THAT(message(two, [](auto& s) { s.partial = {.seen = 5}; }), HasSubstr("0 batches"));
  EXPECT_THAT(message(two, [](auto& s) { s.data_seed = 77; }), HasSubstr("data order seed 77"));
  EXPECT_THAT(message(two, [](auto& s) { s.scheduler_steps = 3; }),
              HasSubstr("FitOptions::scheduler is not set"));
}
