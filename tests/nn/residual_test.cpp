// A residual MLP with LayerNorm trained five SGD steps equals PyTorch's same computation (tests/nn/
// torch_layers.py train) to 1e-10 in f64: the losses, every final parameter, and the parameter names.
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/nn.hpp>

#include "nn/torch_compare.hpp"
#include "util/require.hpp"

namespace bp = backprop;

TEST(ResidualMlp, FiveSgdStepsEqualPyTorch) {
  REQUIRE_INSTALLED(torchcmp::have_torch(), "python3-torch", "/usr/bin/python3 with torch");
  std::string err;
  const auto ref = torchcmp::run_torch("train", err);
  ASSERT_FALSE(ref.empty()) << err;

  bp::Generator gen(0);
  const bp::nn::LinearOptions f64{.dtype = bp::f64};
  bp::nn::Sequential net{bp::nn::Linear(4, 6, gen, f64),
                         bp::nn::Residual(bp::nn::Sequential{bp::nn::LayerNorm(6, {.dtype = bp::f64}),
                                                             bp::nn::Linear(6, 6, gen, f64), bp::nn::Tanh()}),
                         bp::nn::LayerNorm(6, {.dtype = bp::f64}), bp::nn::Linear(6, 2, gen, f64)};
  {
    bp::NoGradGuard guard;
    int j = 0;
    for (auto& [name, p] : net.named_parameters()) p.copy_(torchcmp::filled(p.shape(), double(j++), 0.5));
  }
  const bp::Tensor x = torchcmp::filled({8, 4}, 10.0), target = torchcmp::filled({8, 2}, 20.0);
  bp::optim::SGD opt(net.parameters(), {.lr = 0.1});
  for (int step = 0; step < 5; ++step) {
    opt.zero_grad();
    const bp::Tensor d = bp::sub(net(x), target);
    const bp::Tensor loss = bp::mean(bp::mul(d, d));
    loss.backward();
    opt.step();
    EXPECT_NEAR(loss.item(), ref.at("loss" + std::to_string(step)).at(0), 1e-10) << "step " << step;
  }
  const auto params = net.named_parameters();
  ASSERT_EQ(params.size(), 10u);
  for (const auto& [name, p] : params) {
    ASSERT_TRUE(ref.contains(name)) << name << " is not a PyTorch parameter name";
    const auto v = p.to_vector();
    const auto& r = ref.at(name);
    ASSERT_EQ(v.size(), r.size()) << name;
    for (std::size_t i = 0; i < v.size(); ++i) EXPECT_NEAR(v[i], r[i], 1e-10) << name << " element " << i;
  }
}
