// io::load_for_prediction: a model file and its network, with the input and output sizes of a network saved
// from code worked out from its input shape and one forward pass.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/io/model_file.hpp>

#include "io/io_test_util.hpp"

namespace bp = backprop;
namespace io = backprop::io;
using iotest::ScratchDir;
using ::testing::HasSubstr;

namespace {

// 3 features -> 5 -> 2, saved from code.
bp::nn::Sequential code_network() {
  bp::Generator gen(3);
  return bp::nn::Sequential{bp::nn::Linear(3, 5, gen), bp::nn::ReLU(), bp::nn::Linear(5, 2, gen)};
}

std::string file_error(const std::string& path, const std::string& who) {
  try {
    io::load_for_prediction(path, who);
  } catch (const bp::FileError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a FileError";
  return {};
}

}  // namespace

TEST(LoadForPrediction, GivesANetworkSavedFromCodeItsSizes) {
  ScratchDir dir;
  const bp::nn::Sequential net = code_network();
  io::save_model(dir.file("m.safetensors"), net,
                 {.input_shape = {3}, .preprocessing = io::Preprocessing{.class_names = {"a", "b"}}});
  const io::LoadedModel loaded = io::load_for_prediction(dir.file("m.safetensors"));
  EXPECT_EQ(loaded.model.architecture.inputs, 3);
  EXPECT_EQ(loaded.model.architecture.outputs, 2);
  ASSERT_NE(loaded.network, nullptr);
  bp::NoGradGuard no_grad;
  EXPECT_EQ(loaded.network->forward(bp::zeros({4, 3})).shape(), (bp::Shape{4, 2}));
}

TEST(LoadForPrediction, KeepsTheArchitectureOfAnMlpFile) {
  ScratchDir dir;
  bp::Generator gen(1);
  io::ModelFile m{.architecture = {.inputs = 4, .hidden = {6}, .outputs = 3}};
  m.state = io::build_network(m.architecture, gen)->state_dict();
  io::save_model(dir.file("mlp.safetensors"), m);
  const io::LoadedModel loaded = io::load_for_prediction(dir.file("mlp.safetensors"));
  EXPECT_EQ(io::describe(loaded.model.architecture), "4-6-3");
}

TEST(LoadForPrediction, NamesWhatANetworkSavedFromCodeLacks) {
  ScratchDir dir;
  const bp::nn::Sequential net = code_network();
  io::save_model(dir.file("bare.safetensors"), net, {.input_shape = {3}});
  EXPECT_THAT(
      file_error(dir.file("bare.safetensors"), "`backprop eval`"),
      HasSubstr("bare.safetensors: the network was saved from code without preprocessing; `backprop eval` "
                "needs it"));
  io::save_model(dir.file("shapeless.safetensors"), net, {.preprocessing = io::Preprocessing{}});
  EXPECT_THAT(file_error(dir.file("shapeless.safetensors"), "predict"),
              HasSubstr("the input shape is not saved; predict reads rows of D features"));
  io::save_model(dir.file("wrong.safetensors"), net,
                 {.input_shape = {7}, .preprocessing = io::Preprocessing{}});
  EXPECT_THAT(file_error(dir.file("wrong.safetensors"), "predict"),
              HasSubstr("one forward pass of a zero example of the input shape [7] failed"));
}
