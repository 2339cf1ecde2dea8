// SequentialLR, OneCycleLR and ReduceLROnPlateau against the learning rates PyTorch 1.13 gives for the same
// settings (values printed by torch.optim.lr_scheduler, listed below), and the Trainer's use of them.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <memory>

namespace bp = backprop;
using ::testing::HasSubstr;

namespace {

bp::Tensors one_parameter() {
  return {bp::zeros({1}).requires_grad_()};
}

}  // namespace

TEST(SequentialLR, WarmupThenCosineEqualsPyTorch) {
  // torch: LinearLR(start_factor=0.1, total_iters=3), CosineAnnealingLR(T_max=4), SequentialLR(milestones=[3])
  const double torch_lrs[] = {0.1, 0.39999999999999997, 0.7, 1.0, 0.8535533905932737,
                              0.5, 0.14644660940672627, 0.0};
  bp::optim::SGD opt(one_parameter(), {.lr = 1.0});
  auto warmup = std::make_unique<bp::optim::LinearWarmup>(opt, 3, 0.1);
  auto cosine = std::make_unique<bp::optim::CosineAnnealingLR>(opt, 4);
  bp::optim::SequentialLR schedule(opt, std::move(warmup), std::move(cosine), 3);
  for (std::size_t t = 0; t < std::size(torch_lrs); ++t) {
    EXPECT_NEAR(opt.lr(), torch_lrs[t], 1e-15) << "step " << t;
    schedule.step();
  }
  EXPECT_THAT([&] { bp::optim::SequentialLR(opt, nullptr, nullptr, 3); },
              testing::ThrowsMessage<bp::ValueError>(HasSubstr("needs two schedules")));
}

TEST(OneCycleLR, EqualsPyTorch) {
  // torch: OneCycleLR(max_lr=0.1, total_steps=10, anneal_strategy='cos', cycle_momentum=False)
  const double torch_lrs[] = {0.0040000000000000036,
                              0.052000000000000005,
                              0.1,
                              0.09504846320134738,
                              0.0811745653949763,
                              0.06112620219362893,
                              0.03887419780637107,
                              0.0188258346050237,
                              0.004951936798652629,
                              4e-07};
  bp::optim::SGD opt(one_parameter(), {.lr = 0.1});
  bp::optim::OneCycleLR schedule(opt, 10);
  for (std::size_t t = 0; t < std::size(torch_lrs); ++t) {
    EXPECT_NEAR(opt.lr(), torch_lrs[t], 1e-15) << "step " << t;
    schedule.step();
  }
  EXPECT_NEAR(opt.lr(), 4e-07, 1e-15);  // after total_steps it stays at the final lr
  EXPECT_THAT([&] { bp::optim::OneCycleLR(opt, 10, {.pct_start = 1.5}); },
              testing::ThrowsMessage<bp::ValueError>(HasSubstr("pct_start must be in (0, 1), got 1.5")));
}

TEST(ReduceLROnPlateau, EqualsPyTorch) {
  // torch: ReduceLROnPlateau(factor=0.5, patience=2, threshold=0.01, cooldown=1, min_lr=0.1), lr 1.0
  const double values[] = {1.0, 0.995, 0.99, 0.98, 0.98, 0.98, 0.98, 0.98,
                           0.5, 0.6,   0.6,  0.6,  0.6,  0.6,  0.6,  0.6};
  const double torch_lrs[] = {1.0, 1.0, 1.0, 1.0,  1.0,  1.0,  0.5,  0.5,
                              0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.125};
  bp::optim::SGD opt(one_parameter(), {.lr = 1.0});
  bp::optim::ReduceLROnPlateau plateau(
      opt, {.factor = 0.5, .patience = 2, .threshold = 0.01, .cooldown = 1, .min_lr = 0.1});
  for (std::size_t e = 0; e < std::size(values); ++e) {
    plateau.step(values[e]);
    EXPECT_EQ(opt.lr(), torch_lrs[e]) << "epoch " << e + 1;
  }
  for (int e = 0; e < 20; ++e) plateau.step(0.6);
  EXPECT_EQ(opt.lr(), 0.1);  // min_lr
  EXPECT_THAT([&] { bp::optim::ReduceLROnPlateau(opt, {.factor = 1.5}); },
              testing::ThrowsMessage<bp::ValueError>(HasSubstr("factor must be in (0, 1), got 1.5")));
}

// Stepped per update by the Trainer, and carried across a resume by its state.
TEST(TrainerSchedules, PerUpdateScheduleAndPlateauStateCarryAcrossAResume) {
  bp::Generator gen(3);
  bp::data::TensorDataset data;
  data.features = bp::randn({64, 4}, gen, bp::f64);
  std::vector<double> y(64);
  for (std::int64_t i = 0; i < 64; ++i) y[static_cast<std::size_t>(i)] = data.features.at({i, 0}) > 0 ? 1 : 0;
  data.targets = bp::from_vector(y, {}, bp::f64);
  data.task = bp::data::Task::classification;
  data.num_classes = 2;
  const bp::loss::CrossEntropy loss;
  auto run = [&](std::int64_t epochs, const bp::train::TrainerState* from) {
    bp::Generator g(7);
    auto net = std::make_shared<bp::nn::Sequential>(
        bp::nn::Sequential{bp::nn::Linear(4, 8, g, {.dtype = bp::f64}), bp::nn::Tanh(),
                           bp::nn::Linear(8, 2, g, {.dtype = bp::f64})});
    bp::optim::SGD opt(net->parameters(), {.lr = 0.5});
    bp::optim::OneCycleLR cycle(opt, 6 * 8);  // 6 epochs of 8 updates
    bp::optim::ReduceLROnPlateau plateau(opt, {.factor = 0.5, .patience = 0});
    bp::train::Trainer trainer(*net, loss, opt,
                               {.epochs = epochs,
                                .batch_size = 8,
                                .seed = 1,
                                .scheduler = &cycle,
                                .scheduler_interval = bp::train::ScheduleInterval::update,
                                .plateau = &plateau});
    if (from) trainer.load_state(*from);
    trainer.fit(data);
    EXPECT_EQ(cycle.steps(), trainer.step());  // one schedule step per update
    return std::make_pair(trainer.state(), opt.lr());
  };
  const auto [straight, straight_lr] = run(6, nullptr);
  const auto [first, first_lr] = run(3, nullptr);
  EXPECT_EQ(first.scheduler_steps, 24);
  const auto [resumed, resumed_lr] = run(6, &first);
  EXPECT_EQ(resumed_lr, straight_lr);
  EXPECT_EQ(resumed.plateau.best, straight.plateau.best);
  EXPECT_EQ(resumed.plateau.bad_epochs, straight.plateau.bad_epochs);
  for (const auto& [name, t] : straight.model)
    EXPECT_EQ(bp::max_abs_diff(t, resumed.model.at(name)), 0.0) << name;
}
