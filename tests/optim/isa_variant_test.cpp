// The instruction-set variants of the hand-written kernels (backprop/kernels.hpp) give the same results up to
// rounding: every variant this CPU runs, forced through set_kernel_config, computes the same optimiser
// updates and the same training steps of a small MLP (matrix products: own AVX-512 / AVX2 kernels or
// OpenBLAS) as the baseline variant, within a tight tolerance.
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "util/close.hpp"

namespace bp = backprop;

namespace {

// Restores the kernel configuration a test changed.
struct ConfigGuard {
  bp::KernelConfig saved = bp::kernel_config();
  ~ConfigGuard() { bp::set_kernel_config(saved); }
};

std::vector<bp::Isa> runnable_variants() {
  std::vector<bp::Isa> v;
  for (bp::Isa isa : {bp::Isa::baseline, bp::Isa::avx2, bp::Isa::avx512})
    if (bp::cpu_supports(isa)) v.push_back(isa);
  return v;
}

using MakeOptimizer = std::function<std::unique_ptr<bp::optim::Optimizer>(bp::Tensors)>;

struct Case {
  std::string name;
  MakeOptimizer make;
};

std::vector<Case> optimizer_cases() {
  using namespace bp::optim;
  return {
      {"sgd",
       [](bp::Tensors p) { return std::make_unique<SGD>(p, SGDOptions{.lr = 0.1, .weight_decay = 0.01}); }},
      {"momentum",
       [](bp::Tensors p) {
         return std::make_unique<SGD>(p, SGDOptions{.lr = 0.1, .momentum = 0.9, .dampening = 0.1});
       }},
      {"nesterov",
       [](bp::Tensors p) {
         return std::make_unique<SGD>(p, SGDOptions{.lr = 0.1, .momentum = 0.9, .nesterov = true});
       }},
      {"adam",
       [](bp::Tensors p) {
         return std::make_unique<Adam>(p, AdamOptions{.lr = 0.01, .weight_decay = 0.01});
       }},
      {"adamw", [](bp::Tensors p) { return std::make_unique<AdamW>(p, AdamWOptions{.lr = 0.01}); }},
      {"rmsprop", [](bp::Tensors p) { return std::make_unique<RMSprop>(p, RMSpropOptions{.lr = 0.01}); }},
      {"rmsprop_centered_momentum",
       [](bp::Tensors p) {
         return std::make_unique<RMSprop>(p, RMSpropOptions{.lr = 0.01, .momentum = 0.9, .centered = true});
       }},
      {"rprop", [](bp::Tensors p) { return std::make_unique<Rprop>(p, RpropOptions{.lr = 0.01}); }},
  };
}

// Five steps of the optimiser on one parameter of 1,003 elements (vector tails) with gradients that depend on
// the weights (g = w / 2 - sin(3 t) u), so every step differs; the weights after the last step.
std::vector<double> run_updates(const Case& c, bp::DType dtype) {
  bp::Generator gen(7);
  bp::Tensor w = bp::randn({1003}, gen, dtype).requires_grad_();
  const std::vector<double> u = bp::randn({1003}, gen, bp::f64).to_vector();
  auto opt = c.make({w});
  for (int t = 1; t <= 5; ++t) {
    std::vector<double> g = w.to_vector();
    for (std::size_t j = 0; j < g.size(); ++j) g[j] = 0.5 * g[j] - std::sin(3.0 * t) * u[j];
    w.set_grad(bp::from_vector(g, w.shape(), dtype));
    opt->step();
  }
  return w.to_vector();
}

TEST(IsaVariants, OptimiserUpdatesAgreeWithTheBaseline) {
  ConfigGuard guard;
  const auto variants = runnable_variants();
  ASSERT_EQ(variants.front(), bp::Isa::baseline);
  for (const Case& c : optimizer_cases())
    for (bp::DType dtype : {bp::f32, bp::f64}) {
      bp::set_kernel_config({.isa = bp::Isa::baseline});
      const std::vector<double> base = run_updates(c, dtype);
      bp::Generator gen(7);
      EXPECT_GT(testutil::worst_relative(base, bp::randn({1003}, gen, dtype).to_vector()), 1e-3)
          << c.name << ": the steps changed the weights";
      for (bp::Isa isa : variants) {
        if (isa == bp::Isa::baseline) continue;
        bp::set_kernel_config({.isa = isa});
        const std::vector<double> got = run_updates(c, dtype);
        // A fused multiply-add rounds once where the baseline rounds twice: a few units in the last place of
        // the largest weight.
        EXPECT_LT(testutil::worst_relative(got, base), dtype == bp::f32 ? 1e-6 : 1e-15)
            << c.name << " " << bp::isa_name(isa) << " " << (dtype == bp::f32 ? "f32" : "f64");
      }
    }
}

// Three SGD steps of a 40-128-64-3 MLP at batch 32: products large enough for the own kernels (forward
// x W^T in the swapped form, which both own variants take; dX = dY W, dW = dY^T X), ReLU, softmax
// cross-entropy, momentum updates. The parameters after them.
std::vector<double> run_mlp() {
  bp::Generator gen(3);
  bp::nn::Sequential net{bp::nn::Linear(40, 128, gen), bp::nn::ReLU(), bp::nn::Linear(128, 64, gen),
                         bp::nn::ReLU(), bp::nn::Linear(64, 3, gen)};
  bp::optim::SGD opt(net.parameters(), {.lr = 0.1, .momentum = 0.9});
  const bp::Tensor x = bp::randn({32, 40}, gen);
  std::vector<double> labels(32);
  for (std::size_t i = 0; i < labels.size(); ++i) labels[i] = static_cast<double>(i % 3);
  const bp::Tensor y = bp::from_vector(labels, {32});  // class indices as numbers
  bp::loss::CrossEntropy ce;
  for (int step = 0; step < 3; ++step) {
    opt.zero_grad();
    ce(net(x), y).backward();
    opt.step();
  }
  std::vector<double> all;
  for (const bp::Tensor& p : net.parameters()) {
    const auto v = p.to_vector();
    all.insert(all.end(), v.begin(), v.end());
  }
  return all;
}

TEST(IsaVariants, TrainingStepsAgreeWithTheBaseline) {
  ConfigGuard guard;
  bp::set_kernel_config({.isa = bp::Isa::baseline});
  const std::vector<double> base = run_mlp();
  for (bp::Isa isa : runnable_variants()) {
    if (isa == bp::Isa::baseline) continue;
    for (bp::Sgemm sgemm : {bp::Sgemm::own, bp::Sgemm::openblas}) {
      bp::set_kernel_config({.isa = isa, .sgemm = sgemm});
      EXPECT_LT(testutil::worst_relative(run_mlp(), base), 1e-6)
          << bp::isa_name(isa) << (sgemm == bp::Sgemm::own ? " own" : " openblas");
    }
  }
}

}  // namespace
