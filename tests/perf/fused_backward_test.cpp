// The fused activation backward (one pass, used when no graph is recorded) must give exactly the gradient of
// the composed ops it replaces (used under create_graph), bit for bit, in f32 and f64, on sizes that run on
// one thread and on several.
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <cstring>
#include <functional>
#include <string>

namespace bp = backprop;

namespace {

bool bit_identical(const bp::Tensor& a, const bp::Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

TEST(FusedBackward, ActivationsMatchTheComposedGradientExactly) {
  const std::vector<std::pair<const char*, std::function<bp::Tensor(const bp::Tensor&)>>> acts = {
      {"relu", [](const bp::Tensor& x) { return bp::relu(x); }},
      {"sigmoid", [](const bp::Tensor& x) { return bp::sigmoid(x); }},
      {"tanh", [](const bp::Tensor& x) { return bp::tanh(x); }},
  };
  bp::Generator gen(11);
  for (bp::DType dt : {bp::f32, bp::f64}) {
    for (std::int64_t n : {std::int64_t{37}, std::int64_t{1} << 17}) {
      const bp::Tensor x = bp::randn({n}, gen, dt, 0.0, 3.0).requires_grad_();
      const bp::Tensor w = bp::randn({n}, gen, dt);  // a non-uniform upstream gradient
      for (const auto& [name, f] : acts) {
        const bp::Tensor fused = bp::grad({bp::sum(bp::mul(f(x), w))}, {x})[0];
        const bp::Tensor composed = bp::grad({bp::sum(bp::mul(f(x), w))}, {x}, {.create_graph = true})[0];
        EXPECT_TRUE(bit_identical(fused, composed.detach())) << name << " " << dt << " n=" << n;
        // ReLU's derivative is a constant mask, so its composed gradient has no graph either.
        if (std::string(name) != "relu") {
          EXPECT_TRUE(composed.requires_grad()) << name << ": the composed path must still record a graph";
        }
      }
    }
  }
}

}  // namespace
