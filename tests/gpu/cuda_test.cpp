// Tensors on a CUDA device against the same computation on the CPU. Every test needs a GPU and skips, saying
// why, when none can be used (no GPU, no driver, or a build with BACKPROP_CUDA=OFF); scripts/gpu-check runs
// them on a GPU machine.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <cmath>
#include <sstream>

namespace bp = backprop;
using ::testing::AllOf;
using ::testing::HasSubstr;

namespace {

const bp::Device kCpu = bp::Device::cpu();
const bp::Device kGpu = bp::Device::cuda(0);

class Cuda : public ::testing::Test {
 protected:
  void SetUp() override {
    if (bp::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device: " << bp::cuda::unavailable_reason();
  }
};

bp::Tensor back(const bp::Tensor& t) {
  EXPECT_EQ(t.device(), kGpu);
  return t.to(kCpu);
}

TEST_F(Cuda, RoundTripKeepsEveryDtype) {
  for (bp::DType dt : {bp::f32, bp::f64, bp::i64, bp::bool_}) {
    const bp::Tensor x = bp::tensor({{1, 0, -3}, {4, 5, 0}}).to(dt);
    const bp::Tensor g = x.to(kGpu);
    EXPECT_EQ(g.device(), kGpu);
    EXPECT_EQ(g.dtype(), dt);
    EXPECT_EQ(g.shape(), x.shape());
    EXPECT_TRUE(g.to(kGpu).is_same(g));
    EXPECT_TRUE(bp::allclose(back(g), x, 0, 0)) << bp::dtype_name(dt);
  }
}

TEST_F(Cuda, ViewsCopyTheirOwnElements) {
  const bp::Tensor x = bp::arange(12).reshape({3, 4});
  const bp::Tensor g = x.to(kGpu);
  EXPECT_TRUE(bp::allclose(back(g.t().contiguous()), x.t().contiguous(), 0, 0));
  EXPECT_TRUE(bp::allclose(x.t().to(kGpu).to(kCpu), x.t(), 0, 0));  // a strided CPU view goes up as it reads
  EXPECT_TRUE(bp::allclose(back(bp::narrow(g, 1, 1, 2).contiguous()), bp::narrow(x, 1, 1, 2), 0, 0));
}

TEST_F(Cuda, ElementAccessAndPrinting) {
  const bp::Tensor g = bp::tensor({{1, 2}, {3, 4}}, bp::f32, kGpu);
  EXPECT_EQ(g.at({1, 0}), 3.0);
  EXPECT_EQ(g.flat(3), 4.0);
  std::ostringstream out;
  out << g;
  EXPECT_THAT(out.str(), AllOf(HasSubstr("device=cuda:0"), HasSubstr("[3, 4]")));
  EXPECT_EQ(g.to_vector(), (std::vector<double>{1, 2, 3, 4}));
}

TEST_F(Cuda, FactoriesMakeTheCpuValues) {
  bp::Generator a(5), b(5);
  EXPECT_TRUE(bp::allclose(back(bp::randn({4, 5}, a, bp::f32, 0, 1, kGpu)), bp::randn({4, 5}, b), 0, 0));
  EXPECT_TRUE(bp::allclose(back(bp::zeros({3}, bp::f64, kGpu)), bp::zeros({3}, bp::f64), 0, 0));
  EXPECT_TRUE(bp::allclose(back(bp::full({2, 3}, -2.5, bp::f32, kGpu)), bp::full({2, 3}, -2.5), 0, 0));
  EXPECT_TRUE(bp::allclose(back(bp::ones({5}, bp::i64, kGpu)), bp::ones({5}, bp::i64), 0, 0));
  EXPECT_TRUE(bp::allclose(back(bp::arange(0.0, 3.0, 0.5, bp::f32, kGpu)), bp::arange(0.0, 3.0, 0.5), 0, 0));
  EXPECT_TRUE(bp::allclose(back(bp::zeros_like(bp::ones({2}, bp::f32, kGpu))), bp::zeros({2}), 0, 0));
}

TEST_F(Cuda, ElementwiseMatchesTheCpu) {
  bp::Generator gen(11);
  const bp::Tensor a = bp::rand({4, 5}, gen, bp::f32, 0.5, 2.0), b = bp::rand({5}, gen, bp::f32, 0.5, 2.0);
  const bp::Tensor ga = a.to(kGpu), gb = b.to(kGpu);
  EXPECT_TRUE(bp::allclose(back(bp::add(ga, gb)), bp::add(a, b)));
  EXPECT_TRUE(bp::allclose(back(bp::sub(gb, ga)), bp::sub(b, a)));
  EXPECT_TRUE(bp::allclose(back(bp::mul(ga, gb)), bp::mul(a, b)));
  EXPECT_TRUE(bp::allclose(back(bp::div(ga, gb)), bp::div(a, b)));
  EXPECT_TRUE(bp::allclose(back(bp::maximum(ga, gb)), bp::maximum(a, b)));
  EXPECT_TRUE(bp::allclose(back(bp::add(ga.t(), ga.t())), bp::add(a.t(), a.t())));  // strided inputs
  EXPECT_TRUE(bp::allclose(back(bp::relu(bp::add(ga, -1.0))), bp::relu(bp::add(a, -1.0))));
  EXPECT_TRUE(bp::allclose(back(bp::exp(ga)), bp::exp(a)));
  EXPECT_TRUE(bp::allclose(back(bp::log(ga)), bp::log(a)));
  EXPECT_TRUE(bp::allclose(back(bp::sigmoid(ga)), bp::sigmoid(a)));
  EXPECT_TRUE(bp::allclose(back(bp::tanh(ga)), bp::tanh(a)));
  EXPECT_TRUE(bp::allclose(back(bp::neg(ga)), bp::neg(a)));
  EXPECT_TRUE(bp::allclose(back(bp::mul(ga, 3.0)), bp::mul(a, 3.0)));
}

TEST_F(Cuda, MatmulMatchesTheCpu) {
  bp::Generator gen(12);
  for (bp::DType dt : {bp::f32, bp::f64}) {
    const bp::Tensor a = bp::randn({33, 17}, gen, dt), b = bp::randn({17, 9}, gen, dt);
    const bp::Tensor ga = a.to(kGpu), gb = b.to(kGpu);
    EXPECT_LT(bp::max_abs_diff(back(bp::matmul(ga, gb)), bp::matmul(a, b)), 1e-5);
    EXPECT_LT(bp::max_abs_diff(back(bp::mm(gb, ga, true, true)), bp::mm(b, a, true, true)), 1e-5);
    EXPECT_LT(bp::max_abs_diff(back(bp::matmul(gb.t(), ga.t())), bp::matmul(b.t(), a.t())), 1e-5);
  }
}

// f32 means f32: 16 (1 + 2^-13) is exact in f32 and would round to 16 through TF32's 10-bit mantissa.
TEST_F(Cuda, Tf32IsOffByDefault) {
  ASSERT_FALSE(bp::cuda::allow_tf32());
  const double v = 1.0 + std::ldexp(1.0, -13);
  const bp::Tensor a = bp::full({16, 16}, v, bp::f32, kGpu), b = bp::ones({16, 16}, bp::f32, kGpu);
  EXPECT_EQ(bp::matmul(a, b).at({3, 5}), 16.0 * v);
}

TEST_F(Cuda, LinearModuleMovesInPlace) {
  bp::Generator gen(13);
  bp::nn::Linear layer(6, 4, gen);
  const bp::Tensor x = bp::randn({5, 6}, gen);
  const bp::Tensor want = layer(x);
  const auto before = layer.state_dict();
  layer.to(kGpu);
  for (const auto& [name, t] : layer.state_dict()) {
    EXPECT_TRUE(t.is_same(before.at(name))) << name;  // an optimiser built before still holds these tensors
    EXPECT_EQ(t.device(), kGpu) << name;
    EXPECT_TRUE(t.requires_grad()) << name;
  }
  EXPECT_LT(bp::max_abs_diff(back(layer(x.to(kGpu))), want), 1e-5);
  layer.to(kCpu);
  EXPECT_EQ(bp::max_abs_diff(layer(x), want), 0.0);  // the round trip copies bits
}

TEST_F(Cuda, GradientsFlowThroughTo) {
  bp::Generator gen(14);
  const bp::Tensor x = bp::randn({3, 4}, gen).requires_grad_(), w = bp::randn({4, 2}, gen).requires_grad_();
  const bp::Tensor dy = bp::randn({3, 2}, gen);
  bp::matmul(x.to(kGpu), w.to(kGpu)).backward(dy.to(kGpu));
  ASSERT_TRUE(x.grad().defined());
  EXPECT_EQ(x.grad().device(), kCpu);  // the gradient comes back to where the leaf lives
  EXPECT_LT(bp::max_abs_diff(x.grad(), bp::mm(dy, w.detach(), false, true)), 1e-5);
  EXPECT_LT(bp::max_abs_diff(w.grad(), bp::mm(x.detach(), dy, true, false)), 1e-5);
}

TEST_F(Cuda, MixedDevicesNameTheOpAndBoth) {
  const bp::Tensor c = bp::ones({2, 2}), g = bp::ones({2, 2}, bp::f32, kGpu);
  for (auto f : {+[](const bp::Tensor&a, const bp::Tensor&b) { return bp::add(a, b); },
                 +[](const bp::Tensor&a, const bp::Tensor&b) { return bp::matmul(a, b); }}) {
    try {
      f(c, g);
      ADD_FAILURE() << "no error";
    } catch (const bp::DeviceError& e) {
      EXPECT_THAT(e.what(), AllOf(HasSubstr("cpu"), HasSubstr("cuda:0"), HasSubstr("different devices")));
    }
  }
  try {
    bp::add(c, g);
  } catch (const bp::DeviceError& e) {
    EXPECT_THAT(e.what(), HasSubstr("add: "));
  }
}

TEST_F(Cuda, DeviceOutOfRangeIsAClearError) {
  const int n = bp::cuda::device_count();
  try {
    bp::zeros({2}, bp::f32, bp::Device::cuda(n));
    FAIL() << "no error";
  } catch (const bp::DeviceError& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("cuda:" + std::to_string(n)), HasSubstr("no such device")));
  }
}

TEST_F(Cuda, OutOfMemoryNamesTheDevice) {
  try {
    bp::empty({std::int64_t{1} << 50}, bp::f32, kGpu);  // 4 PiB
    FAIL() << "no error";
  } catch (const bp::OutOfMemoryError& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("cuda:0"), HasSubstr("out of device memory")));
  }
  EXPECT_TRUE(bp::allclose(back(bp::ones({3}, bp::f32, kGpu)), bp::ones({3})));  // the device still works
}

TEST_F(Cuda, OpWithoutAKernelSaysSo) {
  const bp::Tensor g = bp::ones({2, 3}, bp::f32, kGpu);
  try {
    bp::softmax(g);
    FAIL() << "no error";
  } catch (const bp::DeviceError& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("cuda:0"), HasSubstr(".to(bp::Device::cpu())")));
  }
}

}  // namespace
