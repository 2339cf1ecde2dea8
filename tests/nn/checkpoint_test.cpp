// checkpoint_sequential: PyTorch's split by count, the same output and gradients as the plain forward, less
// memory, and plan_checkpoints(): a measured activation peak within the byte budget it was given.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <cmath>

namespace bp = backprop;
namespace nn = backprop::nn;
using ::testing::HasSubstr;
using ::testing::ThrowsMessage;

namespace {

nn::Sequential deep_mlp(int layers, std::int64_t width, bp::DType dtype, std::uint64_t seed) {
  bp::Generator gen(seed);
  nn::Sequential net;
  for (int i = 0; i < layers; ++i) {
    net.push_back(nn::Linear(width, width, gen, {.nonlinearity = nn::Nonlinearity::tanh, .dtype = dtype}));
    net.push_back(nn::Tanh());
  }
  return net;
}

/// Parameter gradients of sum(out * weights) for out = run(x), from zeroed gradients (which exist).
bp::Tensors gradients(nn::Sequential& net, const std::function<bp::Tensor()>& run,
                      const bp::Tensor& weights) {
  for (bp::Tensor& p : net.parameters()) p.zero_grad();
  bp::sum(run() * weights).backward();
  bp::Tensors g;
  for (const bp::Tensor& p : net.parameters()) g.push_back(p.grad().clone());
  return g;
}

/// The peak of tensor bytes alive during net's forward and backward above those alive before it (parameters,
/// their existing gradients, the input and the output gradient).
std::size_t activation_peak(const std::function<bp::Tensor()>& run, const bp::Tensor& dy) {
  const std::size_t before = bp::memory_stats().live_bytes;
  bp::reset_peak_memory();
  {
    const bp::Tensor y = run();
    bp::backward({y}, {dy});
  }
  return bp::memory_stats().peak_bytes - before;
}

}  // namespace

TEST(CheckpointSequential, SplitsAsPyTorchDoes) {
  bp::Generator gen(1);
  nn::Sequential net;
  for (int i = 0; i < 10; ++i) net.push_back(nn::ReLU());
  auto segments = [&](std::int64_t count) {
    std::string s;
    for (const nn::CheckpointSegment& seg : nn::even_checkpoints(net, count).segments)
      s += "[" + std::to_string(seg.begin) + "," + std::to_string(seg.end) +
           (seg.checkpointed ? ")c " : ")p ");
    return s;
  };
  // segments - 1 checkpointed chunks of 10 / segments modules; the rest (the last chunk) runs plainly.
  EXPECT_EQ(segments(1), "[0,10)p ");
  EXPECT_EQ(segments(3), "[0,3)c [3,6)c [6,10)p ");
  EXPECT_EQ(segments(4), "[0,2)c [2,4)c [4,6)c [6,10)p ");
  EXPECT_EQ(segments(10), "[0,1)c [1,2)c [2,3)c [3,4)c [4,5)c [5,6)c [6,7)c [7,8)c [8,9)c [9,10)p ");
  EXPECT_THAT([&] { nn::even_checkpoints(net, 0); },
              ThrowsMessage<bp::ValueError>(HasSubstr("segments must be in [1, 10] for a Sequential of 10")));
  EXPECT_THAT([&] { nn::even_checkpoints(net, 11); }, ThrowsMessage<bp::ValueError>(HasSubstr("got 11")));
}

TEST(CheckpointSequential, SameOutputAndGradientsAsThePlainForward) {
  nn::Sequential net = deep_mlp(6, 5, bp::f64, 2);
  bp::Generator gen(3);
  bp::Tensor x = bp::randn({4, 5}, gen, bp::f64).requires_grad_();
  const bp::Tensor w = bp::randn({4, 5}, gen, bp::f64);
  const bp::Tensors plain = gradients(
      net, [&] { return net(x); }, w);
  x.zero_grad();
  bp::sum(net(x) * w).backward();
  const bp::Tensor plain_dx = x.grad().clone();
  for (std::int64_t segments : {1, 2, 3, 5, 12}) {
    SCOPED_TRACE("segments " + std::to_string(segments));
    EXPECT_EQ(bp::max_abs_diff(nn::checkpoint_sequential(net, segments, x), net(x)), 0.0);
    const bp::Tensors through = gradients(
        net, [&] { return nn::checkpoint_sequential(net, segments, x); }, w);
    for (std::size_t i = 0; i < plain.size(); ++i)
      EXPECT_LT(bp::max_abs_diff(plain[i], through[i]), 1e-14) << i;
    x.zero_grad();
    bp::sum(nn::checkpoint_sequential(net, segments, x) * w).backward();
    EXPECT_LT(bp::max_abs_diff(plain_dx, x.grad()), 1e-14) << "the input's gradient";
  }
  // The default, about sqrt(12) = 3 segments, and second derivatives through it.
  auto f = [&](const bp::Tensors& in) { return nn::checkpoint_sequential(net, in[0]); };
  bp::Tensor small = bp::randn({2, 5}, gen, bp::f64).requires_grad_();
  EXPECT_TRUE(bp::gradgradcheck(f, {small}).ok);
  bp::NoGradGuard guard;  // transparent without grad
  EXPECT_EQ(nn::checkpoint_sequential(net, x).grad_fn(), nullptr);
}

TEST(CheckpointSequential, KeepsLessMemoryThanThePlainForward) {
  nn::Sequential net = deep_mlp(32, 256, bp::f32, 4);
  bp::Generator gen(5);
  const bp::Tensor x = bp::randn({64, 256}, gen), dy = bp::randn({64, 256}, gen);
  bp::backward({net(x)}, {dy});  // every parameter gradient exists from here on
  const std::size_t plain = activation_peak([&] { return net(x); }, dy);
  const std::size_t checkpointed = activation_peak([&] { return nn::checkpoint_sequential(net, x); }, dy);
  const std::size_t activation = 64 * 256 * 4;
  // Plain: 32 saved tanh outputs (each the next Linear's input); sqrt(64) = 8 segments: 7 kept inputs, the plain last chunk and one
  // recomputed chunk (8) at a time, plus the backward's transients in both.
  EXPECT_GE(plain, 32 * activation) << plain;
  EXPECT_LT(checkpointed, plain / 2) << checkpointed << " vs " << plain;
  RecordProperty("plain_peak_bytes", std::to_string(plain));
  RecordProperty("sqrt_segments_peak_bytes", std::to_string(checkpointed));
}

TEST(CheckpointBudget, MeasuredPeakStaysWithinEachBudgetWithThePlainGradients) {
  nn::Sequential net = deep_mlp(32, 256, bp::f32, 6);
  bp::Generator gen(7);
  const bp::Tensor x = bp::randn({64, 256}, gen), dy = bp::randn({64, 256}, gen);
  bp::backward({net(x)}, {dy});
  const bp::Tensors plain_grads = gradients(
      net, [&] { return net(x); }, dy);
  const std::size_t plain = activation_peak([&] { return net(x); }, dy);

  std::size_t previous_recomputed = 0;
  for (double fraction : {1.5, 0.9, 0.7, 0.5}) {
    const auto budget = static_cast<std::size_t>(fraction * static_cast<double>(plain));
    SCOPED_TRACE("budget " + std::to_string(budget) + " (" + std::to_string(fraction) +
                 " of the plain peak)");
    const nn::CheckpointPlan plan = nn::plan_checkpoints(net, x, budget);
    const std::size_t measured = activation_peak([&] { return nn::checkpoint_sequential(net, plan, x); }, dy);
    EXPECT_LE(measured, budget) << plan.describe();
    EXPECT_LE(measured, plan.estimated_peak_bytes) << "the estimate bounds the peak: " << plan.describe();
    EXPECT_LE(plan.estimated_peak_bytes, budget);
    EXPECT_GE(plan.recomputed_modules(), previous_recomputed) << "a smaller budget recomputes no less";
    previous_recomputed = plan.recomputed_modules();
    if (fraction > 1) {
      EXPECT_EQ(plan.recomputed_modules(), 0u) << "a budget above the plain peak: no checkpoint";
    }
    if (fraction < 0.9) {
      EXPECT_GT(plan.recomputed_modules(), 0u);
    }
    const bp::Tensors through = gradients(
        net, [&] { return nn::checkpoint_sequential(net, plan, x); }, dy);
    for (std::size_t i = 0; i < plain_grads.size(); ++i)
      EXPECT_EQ(bp::max_abs_diff(plain_grads[i], through[i]), 0.0) << "parameter " << i;
    std::printf("[ budget ] %.2f of plain (%zu bytes): measured %zu, estimated %zu, %s\n", fraction, budget,
                measured, plan.estimated_peak_bytes, plan.describe().c_str());
  }
}

TEST(CheckpointBudget, AnImpossibleBudgetNamesItselfAndTheLeastNeeded) {
  nn::Sequential net = deep_mlp(4, 64, bp::f32, 8);
  bp::Generator gen(9);
  const bp::Tensor x = bp::randn({16, 64}, gen);
  EXPECT_THAT([&] { nn::plan_checkpoints(net, x, 1000); },
              ThrowsMessage<bp::ValueError>(AllOf(HasSubstr("a budget of 1000 bytes"),
                                                  HasSubstr("at batch 16"), HasSubstr("needs at least"))));
  // The least needed, as the message says, is itself a budget that can be met.
  std::size_t least = 0;
  try {
    nn::plan_checkpoints(net, x, 1000);
  } catch (const bp::ValueError& e) {
    const std::string m = e.what();
    least = std::stoull(m.substr(m.find("needs at least ") + 15));
  }
  ASSERT_GT(least, 1000u);
  EXPECT_NO_THROW(nn::plan_checkpoints(net, x, least));
  EXPECT_THROW(nn::plan_checkpoints(net, x, least - 1), bp::ValueError);
}

TEST(CheckpointBudget, MeasuringLeavesRunningStatisticsAsTheyWere) {
  bp::Generator gen(10);
  nn::Sequential net{nn::Linear(4, 4, gen), nn::BatchNorm1d(4), nn::ReLU(), nn::Linear(4, 2, gen)};
  const bp::Tensor x = bp::randn({8, 4}, gen);
  const auto before = net.state_dict();
  std::map<std::string, bp::Tensor> copy;
  for (const auto& [k, v] : before) copy[k] = v.clone();
  const nn::CheckpointPlan plan = nn::plan_checkpoints(net, x, 1 << 20);
  for (const auto& [k, v] : net.state_dict()) EXPECT_EQ(bp::max_abs_diff(v, copy.at(k)), 0.0) << k;
  EXPECT_EQ(plan.layers.size(), 4u);
}

TEST(CheckpointSequential, RefusesSegmentsThatCannotBeRunTwice) {
  bp::Generator gen(11);
  nn::Sequential net{nn::Linear(4, 4, gen), nn::Dropout(0.5, gen), nn::Linear(4, 4, gen), nn::BatchNorm1d(4)};
  const bp::Tensor x = bp::randn({8, 4}, gen);
  EXPECT_THAT([&] { nn::checkpoint_sequential(net, 2, x); },
              ThrowsMessage<bp::ValueError>(HasSubstr("module 1 (Dropout(p=0.5)) draws random numbers")));
  nn::CheckpointPlan plan;
  plan.segments = {{0, 1, false}, {1, 2, false}, {2, 4, true}};
  EXPECT_THAT([&] { nn::checkpoint_sequential(net, plan, x); },
              ThrowsMessage<bp::ValueError>(HasSubstr("module 3 (BatchNorm1d")));
  plan.segments = {{0, 2, false}, {3, 4, true}};
  EXPECT_THAT([&] { nn::checkpoint_sequential(net, plan, x); },
              ThrowsMessage<bp::ValueError>(HasSubstr("segment 1 is [3, 4) but must start at 2")));
  plan.segments = {{0, 2, false}};
  EXPECT_THAT([&] { nn::checkpoint_sequential(net, plan, x); },
              ThrowsMessage<bp::ValueError>(HasSubstr("the plan covers 2 of 4 modules")));
  net.eval();  // deterministic now: the same output as the plain forward
  EXPECT_EQ(bp::max_abs_diff(nn::checkpoint_sequential(net, 2, x), net(x)), 0.0);
}
