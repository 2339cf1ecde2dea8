// Steady-state training allocates no tensor memory from the system: after the first step every storage comes
// from the caching allocator. These count allocations (memory_stats().os_allocations); they time nothing.
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>

namespace bp = backprop;

// Under AddressSanitizer the allocator returns every block to the system at once (so use-after-free is
// caught), so there is no cache to measure.
#if defined(__SANITIZE_ADDRESS__)
#define SKIP_WITHOUT_CACHE() GTEST_SKIP() << "the caching allocator is off under AddressSanitizer"
#else
#define SKIP_WITHOUT_CACHE() (void)0
#endif

namespace {

bp::nn::Sequential mlp(bp::Generator& gen, bool sigmoid) {
  bp::nn::Sequential net;
  net.push_back(bp::nn::Linear(784, 64, gen));
  if (sigmoid)
    net.push_back(bp::nn::Sigmoid());
  else
    net.push_back(bp::nn::ReLU());
  net.push_back(bp::nn::Linear(64, 32, gen));
  net.push_back(bp::nn::ReLU());
  net.push_back(bp::nn::Linear(32, 10, gen));
  return net;
}

struct Batch {
  bp::Tensor x, y;
};

Batch batch(bp::Generator& gen, std::int64_t n) {
  Batch b{bp::rand({n, 784}, gen), bp::Tensor({n}, bp::f32)};
  for (std::int64_t i = 0; i < n; ++i) b.y.data<float>()[i] = static_cast<float>(gen.below(10));
  return b;
}

// OS allocations made by `steps` training steps after `warmup` steps.
template <class Opt>
std::uint64_t os_allocations_in_steps(bp::nn::Sequential& net, Opt& opt, const std::vector<Batch>& batches,
                                      int warmup, int steps) {
  bp::loss::CrossEntropy ce;
  auto step = [&](const Batch& b) {
    opt.zero_grad();
    bp::Tensor loss = ce(net(b.x), b.y);
    loss.backward();
    opt.step();
  };
  for (int i = 0; i < warmup; ++i) step(batches[static_cast<std::size_t>(i) % batches.size()]);
  const std::uint64_t before = bp::memory_stats().os_allocations;
  for (int i = 0; i < steps; ++i) step(batches[static_cast<std::size_t>(i) % batches.size()]);
  return bp::memory_stats().os_allocations - before;
}

TEST(Allocations, CounterSeesFreshSizes) {
  // The counter these tests rely on must move when the cache cannot serve a request.
  const std::uint64_t before = bp::memory_stats().os_allocations;
  bp::Tensor odd({12345, 7}, bp::f32);  // a size no other test uses
  EXPECT_EQ(bp::memory_stats().os_allocations, before + 1);
  bp::Tensor second({12345, 7}, bp::f32);  // the first is still alive: a second block is needed
  EXPECT_EQ(bp::memory_stats().os_allocations, before + 2);
}

TEST(Allocations, MlpSgdMomentumStepsAllocateNothingAfterTheFirst) {
  SKIP_WITHOUT_CACHE();
  bp::Generator gen(3);
  auto net = mlp(gen, false);
  bp::optim::SGD opt(net.parameters(), {.lr = 0.05, .momentum = 0.9});
  const std::vector<Batch> batches{batch(gen, 128), batch(gen, 128), batch(gen, 128)};
  EXPECT_EQ(os_allocations_in_steps(net, opt, batches, 1, 20), 0u);
}

TEST(Allocations, BatchOfOneAllocatesNothingAfterTheFirst) {
  SKIP_WITHOUT_CACHE();
  bp::Generator gen(4);
  auto net = mlp(gen, false);
  bp::optim::SGD opt(net.parameters(), {.lr = 0.01, .momentum = 0.9, .nesterov = true});
  const std::vector<Batch> batches{batch(gen, 1), batch(gen, 1)};
  // At batch 1 most tensors (logits, bias gradients, the loss) fall in the same 64-byte size class, and the
  // momentum buffers made at the end of step 1 keep three of those blocks for good: step 2 needs that many
  // more, once. From then on nothing.
  EXPECT_LE(os_allocations_in_steps(net, opt, batches, 1, 1), 3u);
  EXPECT_EQ(os_allocations_in_steps(net, opt, batches, 0, 50), 0u);
}

TEST(Allocations, ShortLastBatchIsCachedAfterOneEpoch) {
  SKIP_WITHOUT_CACHE();
  // An epoch of two full batches and a short one: the second epoch reuses every block of the first.
  bp::Generator gen(5);
  auto net = mlp(gen, true);
  bp::optim::Adam opt(net.parameters(), {.lr = 1e-3});
  const std::vector<Batch> batches{batch(gen, 64), batch(gen, 64), batch(gen, 17)};
  EXPECT_EQ(os_allocations_in_steps(net, opt, batches, 3, 9), 0u);
}

TEST(Allocations, InferenceAllocatesNothingAfterTheFirstCall) {
  SKIP_WITHOUT_CACHE();
  bp::Generator gen(6);
  auto net = mlp(gen, false);
  net.eval();
  const Batch b = batch(gen, 32);
  bp::NoGradGuard guard;
  (void)net(b.x);
  const std::uint64_t before = bp::memory_stats().os_allocations;
  for (int i = 0; i < 20; ++i) (void)net(b.x);
  EXPECT_EQ(bp::memory_stats().os_allocations - before, 0u);
}

}  // namespace
