// Learning-rate schedules: the lr sequence each one sets on its optimiser.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/optim.hpp>
#include <cmath>
#include <numbers>

namespace bp = backprop;
using ::testing::HasSubstr;

namespace {
std::vector<double> sequence(bp::optim::Optimizer& opt, bp::optim::Scheduler& s, int n) {
  std::vector<double> out{opt.lr()};
  for (int i = 0; i < n; ++i) {
    s.step();
    EXPECT_EQ(s.lr(), opt.lr());
    out.push_back(opt.lr());
  }
  return out;
}
void expect_near(const std::vector<double>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-12) << "step " << i;
}
}  // namespace

TEST(Schedules, StepLR) {
  bp::Tensor w = bp::ones({1}).requires_grad_();
  bp::optim::SGD opt({w}, {.lr = 1.0});
  bp::optim::StepLR s(opt, 2, 0.5);
  expect_near(sequence(opt, s, 6), {1, 1, 0.5, 0.5, 0.25, 0.25, 0.125});
}

TEST(Schedules, ExponentialLR) {
  bp::Tensor w = bp::ones({1}).requires_grad_();
  bp::optim::Adam opt({w}, {.lr = 0.2});
  bp::optim::ExponentialLR s(opt, 0.9);
  expect_near(sequence(opt, s, 3), {0.2, 0.18, 0.162, 0.1458});
}

TEST(Schedules, CosineAnnealingLRThenHoldsEtaMin) {
  bp::Tensor w = bp::ones({1}).requires_grad_();
  bp::optim::SGD opt({w}, {.lr = 1.0});
  bp::optim::CosineAnnealingLR s(opt, 4, 0.1);
  const double mid = 0.1 + 0.9 * (1 + std::cos(std::numbers::pi / 4)) / 2;
  const double late = 0.1 + 0.9 * (1 + std::cos(3 * std::numbers::pi / 4)) / 2;
  expect_near(sequence(opt, s, 6), {1.0, mid, 0.55, late, 0.1, 0.1, 0.1});
}

TEST(Schedules, LinearWarmupThenHolds) {
  bp::Tensor w = bp::ones({1}).requires_grad_();
  bp::optim::SGD opt({w}, {.lr = 0.5});
  bp::optim::LinearWarmup s(opt, 4, 0.2);
  expect_near(sequence(opt, s, 5), {0.1, 0.2, 0.3, 0.4, 0.5, 0.5});
}

TEST(Schedules, SetStepsResumesAndErrors) {
  bp::Tensor w = bp::ones({1}).requires_grad_();
  bp::optim::SGD opt({w}, {.lr = 1.0});
  bp::optim::StepLR s(opt, 3, 0.1);
  s.set_steps(7);
  EXPECT_NEAR(opt.lr(), 0.01, 1e-15);
  EXPECT_EQ(s.steps(), 7);
  s.step();  // t = 8: still the third plateau
  EXPECT_NEAR(opt.lr(), 0.01, 1e-15);
  s.step();  // t = 9
  EXPECT_NEAR(opt.lr(), 0.001, 1e-15);
  EXPECT_EQ(s.base_lr(), 1.0);
  EXPECT_THAT([&] { s.set_steps(-1); },
              ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("must be >= 0, got -1")));
  EXPECT_THAT([&] { bp::optim::StepLR(opt, 0); },
              ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("StepLR: step_size must be >= 1, got 0")));
  EXPECT_THAT([&] { bp::optim::LinearWarmup(opt, 5, 0.0); },
              ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("start_factor must be in (0, 1], got 0")));
  EXPECT_EQ(bp::optim::CosineAnnealingLR(opt, 10).repr(), "CosineAnnealingLR(t_max=10, eta_min=0)");
}
