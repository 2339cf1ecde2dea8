// nn::Mean: the average over one dimension as a layer, its gradient, errors and its place in model files.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <backprop/backprop.hpp>
#include <backprop/io/model_file.hpp>
#include <backprop/nn.hpp>
#include <backprop/nn/reduce.hpp>
#include <filesystem>

namespace bp = backprop;
using ::testing::HasSubstr;

TEST(Mean, AveragesOneDimensionAndSpreadsTheGradientEvenly) {
  const bp::Tensor x =
      bp::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, {2, 3, 2}, bp::f64)
          .requires_grad_();
  bp::nn::Mean pool(1);
  const bp::Tensor y = pool(x);
  ASSERT_EQ(y.shape(), (bp::Shape{2, 2}));
  EXPECT_EQ(y.to_vector(), (std::vector<double>{3, 4, 9, 10}));
  bp::sum(y).backward();
  for (double g : x.grad().to_vector()) EXPECT_DOUBLE_EQ(g, 1.0 / 3.0);

  EXPECT_EQ(bp::nn::Mean(-1, true)(x).shape(), (bp::Shape{2, 3, 1}));
  EXPECT_EQ(bp::nn::Mean(-1, true)(x).to_vector()[0], 1.5);
  EXPECT_EQ(pool.repr(), "Mean(dim=1, keepdim=false)");
  EXPECT_TRUE(pool.parameters().empty());
}

TEST(Mean, DimOutOfRangeIsAShapeErrorNamingTheInput) {
  bp::nn::Mean pool(3);
  try {
    pool(bp::zeros({2, 3}));
    FAIL() << "no error";
  } catch (const bp::ShapeError& e) {
    EXPECT_THAT(e.what(), HasSubstr("Mean(dim=3, keepdim=false): dim is out of range for input [2, 3]"));
  }
  EXPECT_THROW(bp::nn::Mean(-3)(bp::zeros({2, 3})), bp::ShapeError);
}

TEST(Mean, TextClassifierRoundTripsThroughAModelFile) {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("bp_mean_" + std::to_string(::getpid()) + ".safetensors"))
          .string();
  bp::Generator gen(3);
  bp::nn::Sequential net{bp::nn::Embedding(10, 4, gen), bp::nn::Mean(1, true), bp::nn::Flatten(),
                         bp::nn::Linear(4, 2, gen)};
  bp::io::save_model(path, net, {.input_shape = {5}});
  const bp::nn::ModulePtr back = bp::io::load_module(path);
  std::filesystem::remove(path);
  EXPECT_EQ(back->repr(), net.repr());
  const bp::Tensor ids = bp::from_vector(std::vector<double>{1, 2, 3, 4, 5, 9, 8, 7, 6, 0}, {2, 5}, bp::i64);
  EXPECT_EQ(back->forward(ids).to_vector(), net.forward(ids).to_vector());
}
