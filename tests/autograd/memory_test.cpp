// Memory: checkpointing trades a second forward for fewer live bytes; graphs of any length build, walk and
// die without recursion; a training loop reaches a steady state where no memory is gained or asked of the
// system.
#include <gtest/gtest.h>
#include <pthread.h>

#include <backprop/backprop.hpp>
#include <cmath>
#include <cstdint>
#include <exception>
#include <functional>

namespace bp = backprop;

namespace {

/// Four tanh layers whose weights are captured by the function (parameters used inside a checkpoint).
struct Stack {
  bp::Tensors weights;
  Stack(std::int64_t width, bp::DType dtype, bp::Generator& gen) {
    for (int i = 0; i < 4; ++i)
      weights.push_back(
          bp::randn({width, width}, gen, dtype, 0.0, 1.0 / std::sqrt(double(width))).requires_grad_());
  }
  bp::Tensor operator()(const bp::Tensors& in) const {
    bp::Tensor h = in[0];
    for (const bp::Tensor& w : weights) h = bp::tanh(bp::linear(h, w)) * in[1];
    return h;
  }
  void zero_grad() {
    for (bp::Tensor& w : weights) w.zero_grad();
  }
};

/// Runs `body` on a thread with a 256 KiB stack, where a recursion one frame per node through a 100,000-node
/// graph cannot fit (the main thread's 8 MiB might, in an optimised build). Rethrows what `body` threw.
void on_small_stack(const std::function<void()>& body) {
  struct Call {
    const std::function<void()>* body;
    std::exception_ptr error;
  } call{&body, nullptr};
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  pthread_t thread;
  auto run = [](void* p) -> void* {
    auto* c = static_cast<Call*>(p);
    try {
      (*c->body)();
    } catch (...) {
      c->error = std::current_exception();
    }
    return nullptr;
  };
  ASSERT_EQ(pthread_create(&thread, &attr, run, &call), 0);
  pthread_join(thread, nullptr);
  pthread_attr_destroy(&attr);
  if (call.error) std::rethrow_exception(call.error);
}

}  // namespace

TEST(Checkpoint, SameGradientsForInputsAndForParametersUsedInside) {
  bp::Generator gen(3);
  Stack f(6, bp::f64, gen);
  bp::Tensor x = bp::randn({5, 6}, gen, bp::f64).requires_grad_();
  bp::Tensor scale = bp::rand({6}, gen, bp::f64, 0.5, 1.5).requires_grad_();

  bp::sum(bp::pow(f({x, scale}), 2.0)).backward();
  bp::Tensors plain = {x.grad().clone(), scale.grad().clone()};
  for (const bp::Tensor& w : f.weights) plain.push_back(w.grad().clone());
  x.zero_grad();
  scale.zero_grad();
  f.zero_grad();

  bp::sum(bp::pow(bp::checkpoint(f, {x, scale}), 2.0)).backward();
  bp::Tensors checkpointed = {x.grad(), scale.grad()};
  for (const bp::Tensor& w : f.weights) checkpointed.push_back(w.grad());
  for (std::size_t i = 0; i < plain.size(); ++i) {
    ASSERT_TRUE(checkpointed[i].defined()) << "gradient " << i;
    EXPECT_LT(bp::max_abs_diff(plain[i], checkpointed[i]), 1e-13) << "gradient " << i;
  }
}

TEST(Checkpoint, UnderGradReturnsParameterGradientsWithoutTouchingGrad) {
  bp::Generator gen(4);
  Stack f(4, bp::f64, gen);
  bp::Tensor x = bp::randn({3, 4}, gen, bp::f64).requires_grad_();
  const bp::Tensor s = bp::ones({4}, bp::f64);
  const bp::Tensor w0 = f.weights[0];
  const bp::Tensors plain = bp::grad({bp::sum(f({x, s}))}, {x, w0});
  const bp::Tensors through = bp::grad({bp::sum(bp::checkpoint(f, {x, s}))}, {x, w0});
  EXPECT_LT(bp::max_abs_diff(plain[0], through[0]), 1e-13);
  EXPECT_LT(bp::max_abs_diff(plain[1], through[1]), 1e-13);
  for (const bp::Tensor& w : f.weights) EXPECT_FALSE(w.grad().defined()) << "grad() never accumulates";
  EXPECT_FALSE(x.grad().defined());
}

TEST(Checkpoint, KeepsFewerBytesAliveAfterTheForward) {
  bp::Generator gen(5);
  Stack f(256, bp::f32, gen);
  const bp::Tensor x = bp::randn({256, 256}, gen), s = bp::ones({256});
  auto live_after_forward = [&](bool use_checkpoint) {
    const auto before = bp::memory_stats().live_bytes;
    const bp::Tensor y = use_checkpoint ? bp::checkpoint(f, {x, s}) : f({x, s});
    const auto held = bp::memory_stats().live_bytes - before;
    bp::sum(y).backward();
    f.zero_grad();
    return held;
  };
  const std::size_t plain = live_after_forward(false), checkpointed = live_after_forward(true);
  const std::size_t activation = 256 * 256 * 4;
  // Plain: each layer keeps its linear output, tanh output and scaled output alive (12 activations);
  // checkpointed: the output only.
  EXPECT_GE(plain, 8 * activation) << plain;
  EXPECT_LE(checkpointed, 2 * activation) << checkpointed;
  RecordProperty("plain_live_bytes", std::to_string(plain));
  RecordProperty("checkpoint_live_bytes", std::to_string(checkpointed));
}

TEST(Checkpoint, IsTransparentWithoutGrad) {
  // (Gradients through a checkpoint under create_graph: tests/autograd/checkpoint_test.cpp.)
  bp::Tensor x = bp::tensor({0.5}, bp::f64).requires_grad_();
  auto f = [](const bp::Tensors& in) { return bp::exp(in[0]); };
  bp::NoGradGuard guard;
  const bp::Tensor z = bp::checkpoint(f, {x});
  EXPECT_EQ(z.grad_fn(), nullptr);
  EXPECT_NEAR(z.item(), std::exp(0.5), 1e-15);
}

// ---- very long graphs -------------------------------------------------------------------------------------

TEST(LongGraphs, AChainOf100000OpsBackpropagates) {
  on_small_stack([] {
    bp::Tensor x = bp::tensor({1.0}, bp::f64).requires_grad_();
    bp::Tensor y = x;
    for (int i = 0; i < 100000; ++i) y = y + 1e-3;
    EXPECT_NEAR(y.item(), 101.0, 1e-8);
    y.backward();
    EXPECT_EQ(x.grad().item(), 1.0);
    EXPECT_EQ(bp::last_backward_stats().nodes_run, 100000u);
  });
}

TEST(LongGraphs, A100000OpGraphIsDestroyedWithoutRecursion) {
  on_small_stack([] {
    bp::Tensor x = bp::tensor({1.0}, bp::f64).requires_grad_();
    const bp::Tensor c = bp::tensor({1.0}, bp::f64);
    {
      bp::Tensor y = x;  // owned through edges only
      for (int i = 0; i < 100000; ++i) y = y + 1.0;
    }
    {
      bp::Tensor y = x;  // mul's backward also captures its inputs: a second chain of owners
      for (int i = 0; i < 100000; ++i) y = y * c;
    }
    {
      bp::Tensor y = x;  // walked with retain_graph (the saved state survives), then dropped
      for (int i = 0; i < 50000; ++i) y = bp::sigmoid(y) + y;
      bp::sum(y).backward({}, /*retain_graph=*/true);
    }
  });
  SUCCEED() << "no stack overflow";
}

// ---- steady state -----------------------------------------------------------------------------------------

TEST(SteadyState, TenThousandTrainingStepsKeepLiveBytesFlat) {
  bp::Generator gen(8);
  const bp::Tensor x = bp::tensor({{0, 0}, {0, 1}, {1, 0}, {1, 1}}, bp::f64);
  const bp::Tensor y = bp::tensor({0.0, 1.0, 1.0, 0.0}, bp::f64).reshape({4, 1});
  bp::Tensors params = {bp::randn({4, 2}, gen, bp::f64), bp::zeros({4}, bp::f64),
                        bp::randn({1, 4}, gen, bp::f64), bp::zeros({1}, bp::f64)};
  for (bp::Tensor& p : params) p.requires_grad_();
  std::size_t live_low = SIZE_MAX, live_high = 0;  // at the same point of every step from the 100th on
  std::uint64_t os_at_100 = 0;
  double first_loss = 0, last_loss = 0;
  for (int step = 0; step < 10000; ++step) {
    const bp::Tensor h = bp::tanh(bp::linear(x, params[0], params[1]));
    const bp::Tensor out = bp::sigmoid(bp::linear(h, params[2], params[3]));
    const bp::Tensor loss = bp::mean(bp::pow(out - y, 2.0));
    loss.backward();
    {
      bp::NoGradGuard guard;
      for (bp::Tensor& p : params) {
        p.add_(p.grad(), -0.5);
        p.zero_grad();
      }
    }
    if (step == 0) first_loss = loss.item();
    last_loss = loss.item();
    if (step == 100) os_at_100 = bp::memory_stats().os_allocations;
    if (step >= 100) {
      live_low = std::min(live_low, bp::memory_stats().live_bytes);
      live_high = std::max(live_high, bp::memory_stats().live_bytes);
    }
  }
  EXPECT_EQ(live_high, live_low) << "live bytes changed between steps";
  EXPECT_GT(live_low, 0u);
#if !defined(__SANITIZE_ADDRESS__)  // under ASan every block goes back to the system at once
  EXPECT_EQ(bp::memory_stats().os_allocations, os_at_100) << "steady-state steps reuse cached blocks";
#else
  (void)os_at_100;
#endif
  EXPECT_LT(last_loss, first_loss * 0.5) << "it did train: " << first_loss << " -> " << last_loss;
}
