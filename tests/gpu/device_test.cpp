// bp::Device and the device field of tensors and modules: what runs on every machine, GPU or not (these
// tests carry the CTest label gpu with the rest of tests/gpu, and never skip).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <fstream>
#include <sstream>
#include <string>

namespace bp = backprop;
using ::testing::AllOf;
using ::testing::HasSubstr;

namespace {

TEST(Device, ParsesTheThreeForms) {
  EXPECT_EQ(bp::Device::parse("cpu"), bp::Device::cpu());
  EXPECT_EQ(bp::Device::parse("cuda"), bp::Device::cuda(0));
  EXPECT_EQ(bp::Device::parse("cuda:0"), bp::Device::cuda(0));
  const bp::Device d = bp::Device::parse("cuda:12");
  EXPECT_TRUE(d.is_cuda());
  EXPECT_FALSE(d.is_cpu());
  EXPECT_EQ(d.kind(), bp::DeviceKind::cuda);
  EXPECT_EQ(d.index(), 12);
}

TEST(Device, ToStringReadsBack) {
  EXPECT_EQ(bp::Device().to_string(), "cpu");
  EXPECT_EQ(bp::Device::cuda().to_string(), "cuda:0");
  EXPECT_EQ(bp::Device::cuda(3).to_string(), "cuda:3");
  for (const char* text : {"cpu", "cuda:0", "cuda:7"}) EXPECT_EQ(bp::Device::parse(text).to_string(), text);
  std::ostringstream out;
  out << bp::Device::cuda(2);
  EXPECT_EQ(out.str(), "cuda:2");
}

TEST(Device, Equality) {
  EXPECT_EQ(bp::Device(), bp::Device::cpu());
  EXPECT_EQ(bp::Device(bp::DeviceKind::cpu, 5), bp::Device::cpu());  // the CPU has no index
  EXPECT_NE(bp::Device::cpu(), bp::Device::cuda(0));
  EXPECT_NE(bp::Device::cuda(0), bp::Device::cuda(1));
}

TEST(Device, RejectsMalformedText) {
  for (const char* text :
       {"", "gpu", "CUDA", "cuda:", "cuda:-1", "cuda:1x", "cuda:+1", "cuda 1", "cpu:0", "cuda:99999999999"}) {
    try {
      bp::Device::parse(text);
      ADD_FAILURE() << "parsed '" << text << "'";
    } catch (const bp::ValueError& e) {
      EXPECT_THAT(e.what(),
                  AllOf(HasSubstr("'" + std::string(text) + "'"), HasSubstr("expected cpu, cuda or cuda:N")));
    }
  }
}

TEST(Device, RejectsNegativeIndex) {
  EXPECT_THROW(bp::Device::cuda(-1), bp::ValueError);
}

TEST(Device, MixedDevicesNameTheOpAndBoth) {
  EXPECT_NO_THROW(bp::check_same_device("add", bp::Device::cpu(), bp::Device::cpu()));
  EXPECT_NO_THROW(bp::check_same_device("add", bp::Device::cuda(1), bp::Device::cuda(1)));
  try {
    bp::check_same_device("matmul", bp::Device::cpu(), bp::Device::cuda(1));
    FAIL() << "no error";
  } catch (const bp::DeviceError& e) {
    EXPECT_THAT(e.what(), AllOf(HasSubstr("matmul"), HasSubstr("cpu"), HasSubstr("cuda:1"),
                                HasSubstr("different devices")));
  }
}

TEST(DeviceTensor, FactoriesDefaultToTheCpu) {
  bp::Generator gen(1);
  for (const bp::Tensor& t : {bp::zeros({2, 3}), bp::ones({2}), bp::full({1}, 2.0), bp::empty({4}),
                              bp::scalar(1.0), bp::arange(3), bp::tensor({1, 2}), bp::randn({2}, gen),
                              bp::rand({2}, gen), bp::from_vector(std::vector<float>{1, 2})})
    EXPECT_EQ(t.device(), bp::Device::cpu());
}

TEST(DeviceTensor, ExplicitCpuGivesTheSameValues) {
  bp::Generator a(7), b(7);
  EXPECT_TRUE(bp::allclose(bp::randn({3, 4}, a), bp::randn({3, 4}, b, bp::f32, 0.0, 1.0, bp::Device::cpu())));
  EXPECT_TRUE(bp::allclose(bp::arange(0.0, 5.0, 1.0, bp::f64, bp::Device::cpu()), bp::arange(5, bp::f64)));
  EXPECT_TRUE(bp::allclose(bp::full({2, 2}, 3.5, bp::f32, bp::Device::cpu()), bp::full({2, 2}, 3.5)));
}

TEST(DeviceTensor, ToTheSameDeviceIsTheSameTensor) {
  bp::Tensor x = bp::ones({2, 3}).requires_grad_();
  EXPECT_TRUE(x.to(bp::Device::cpu()).is_same(x));  // as PyTorch: no copy, no graph node
  bp::Tensor v = bp::ones({2, 3}).t();
  EXPECT_TRUE(v.to(bp::Device::cpu()).is_same(v));
}

TEST(DeviceTensor, CpuPrintingHasNoDevice) {
  std::ostringstream out;
  out << bp::ones({2});
  EXPECT_THAT(out.str(), ::testing::Not(HasSubstr("device")));
}

TEST(DeviceModule, ToCpuKeepsEveryTensor) {
  bp::Generator gen(3);
  bp::nn::Sequential net{bp::nn::Linear(4, 3, gen), bp::nn::ReLU(), bp::nn::BatchNorm1d(3)};
  const auto before = net.state_dict();
  net.to(bp::Device::cpu());
  for (const auto& [name, t] : net.state_dict()) {
    EXPECT_TRUE(t.is_same(before.at(name))) << name;
    EXPECT_EQ(t.storage(), before.at(name).storage()) << name;
  }
}

// Without a usable CUDA device (here: no GPU, no driver, or a build without CUDA), asking for one is a clear
// DeviceError naming the device and the reason, never a crash. Skips on a machine with a GPU.
TEST(DeviceUnavailable, CudaTensorIsAClearError) {
  if (bp::cuda::device_count() > 0) GTEST_SKIP() << "a CUDA device is present: tests/gpu/cuda_test.cpp runs";
  const std::string reason = bp::cuda::unavailable_reason();
  EXPECT_FALSE(reason.empty());
  for (auto make : {+[] {
                      return bp::zeros({2, 3}, bp::f32, bp::Device::cuda());
                    },
                    +[] { return bp::ones({2}).to(bp::Device::cuda(1)); },
                    +[] {
                      return bp::tensor({1, 2}, bp::f64, bp::Device::parse("cuda"));
                    }}) {
    try {
      make();
      ADD_FAILURE() << "made a cuda tensor without a device";
    } catch (const bp::DeviceError& e) {
      EXPECT_THAT(e.what(),
                  AllOf(HasSubstr("cuda"), HasSubstr(bp::cuda::is_built() ? reason : "BACKPROP_CUDA")));
    }
  }
  bp::Generator gen(1);
  bp::nn::Linear layer(2, 2, gen);
  const auto before = layer.state_dict();
  EXPECT_THROW(layer.to(bp::Device::cuda()), bp::DeviceError);
  for (const auto& [name, t] : layer.state_dict()) EXPECT_EQ(t.device(), bp::Device::cpu()) << name;
  EXPECT_NO_THROW(bp::cuda::synchronize(bp::Device::cpu()));
  EXPECT_THROW(bp::cuda::synchronize(bp::Device::cuda()), bp::DeviceError);
}

TEST(DeviceUnavailable, ReasonMatchesTheBuild) {
  if (!bp::cuda::is_built()) {
    EXPECT_EQ(bp::cuda::device_count(), 0);
    EXPECT_EQ(bp::cuda::unavailable_reason(), "built without CUDA (BACKPROP_CUDA=OFF)");
  } else if (bp::cuda::device_count() == 0) {
    EXPECT_THAT(bp::cuda::unavailable_reason(), HasSubstr("cudaGetDeviceCount returned"));
  } else {
    EXPECT_EQ(bp::cuda::unavailable_reason(), "");
  }
}

// cuBLAS is opened on the first GPU product, not linked: a program that only works on the CPU (here: a
// training step and a query of the devices) does not map it (docs/gpu.md: what linking it cost).
TEST(DeviceUnavailable, CpuWorkDoesNotLoadCublas) {
  bp::Generator gen(1);
  bp::nn::Linear layer(8, 4, gen);
  bp::sum(layer.forward(bp::randn({16, 8}, gen))).backward();
  (void)bp::cuda::device_count();
  std::ifstream maps("/proc/self/maps");
  ASSERT_TRUE(maps.good());
  std::string line;
  while (std::getline(maps, line)) EXPECT_EQ(line.find("libcublas"), std::string::npos) << line;
}

}  // namespace
