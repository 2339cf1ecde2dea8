// io::describe_file: what a model file and a checkpoint say about themselves, as text and JSON.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/io/checkpoint.hpp>
#include <backprop/io/model_file.hpp>
#include <backprop/io/model_info.hpp>
#include <nlohmann/json.hpp>

#include "io/io_test_util.hpp"

namespace bp = backprop;
namespace io = backprop::io;
using iotest::ScratchDir;
using json = nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

namespace {

// A 4-6-3 classifier with three named classes, a training record and an input shape.
io::ModelFile mlp_file() {
  bp::Generator gen(1);
  io::ModelFile m{.architecture = {.inputs = 4, .hidden = {6}, .outputs = 3, .dropout = 0.25}};
  m.state = io::build_network(m.architecture, gen)->state_dict();
  m.preprocessing.class_names = {"a", "b", "c"};
  m.preprocessing.feature_names = {"w", "x", "y", "z"};
  m.training_json = R"({"status": "completed", "epochs_run": 3, "optimizer": "adam", "lr": 0.001, "seed": 7,)"
                    R"( "test": {"accuracy": 0.5, "loss": 0.7, "examples": 10}})";
  m.input_shape = {4};
  return m;
}

}  // namespace

TEST(DescribeFile, AModelFileItsNetworkTensorsAndTrainingRecord) {
  ScratchDir dir;
  const std::string path = dir.file("m.safetensors");
  io::save_model(path, mlp_file());
  const io::ModelInfo info = io::describe_file(path);
  EXPECT_FALSE(info.checkpoint.has_value());
  EXPECT_FALSE(info.from_code());
  EXPECT_EQ(info.parameters, 4 * 6 + 6 + 6 * 3 + 3);
  ASSERT_GE(info.summary.rows.size(), 2u);
  EXPECT_EQ(info.summary.rows.front().output_shape, "[1, 3]");
  ASSERT_FALSE(info.layers.empty());
  EXPECT_EQ(info.layers.front().first, "0");
  std::vector<std::string> names;
  for (const io::TensorInfo& t : info.tensors) names.push_back(t.name);
  EXPECT_THAT(names, ::testing::Contains("0.weight"));

  const std::string text = info.text();
  EXPECT_THAT(text, HasSubstr("file        " + path + " (model)\n"));
  EXPECT_THAT(text, HasSubstr("network     4-6-3, relu, dropout 0.25, init kaiming_uniform\n"));
  EXPECT_THAT(text, HasSubstr("parameters  51\n"));
  EXPECT_THAT(text, HasSubstr("summary     output shapes for one example of zeros, input [1, 4]\n"));
  EXPECT_THAT(
      text, HasSubstr("layers\n  (0) Linear(in=4, out=6, bias=true)\n  (1) ReLU()\n  (2) Dropout(p=0.25)\n"));
  EXPECT_THAT(text, HasSubstr("  0.weight                     [6, 4]       F32\n"));
  EXPECT_THAT(text, HasSubstr("input       table of 4 features: w, x, y, z\n"));
  EXPECT_THAT(text, HasSubstr("task        classification, 3 classes: a, b, c\n"));
  EXPECT_THAT(text, HasSubstr("training    completed, 3 epochs, adam lr 0.001, seed 7\n"));
  EXPECT_THAT(text, HasSubstr("test        accuracy 50.00%, loss 0.7000 on 10 examples\n"));
  EXPECT_THAT(text, Not(HasSubstr("checkpoint")));

  const json j = json::parse(info.json());
  EXPECT_EQ(j["kind"], "model");
  EXPECT_EQ(j["file"], path);
  EXPECT_EQ(j["network"], "4-6-3");
  EXPECT_EQ(j["parameters"], 51);
  EXPECT_EQ(j["architecture"]["hidden"], json::array({6}));
  EXPECT_EQ(j["preprocessing"]["class_names"], json::array({"a", "b", "c"}));
  EXPECT_EQ(j["training"]["seed"], 7);
  EXPECT_EQ(j["input_shape"], json::array({4}));
  EXPECT_EQ(j["summary"].size(), info.summary.rows.size());
  EXPECT_EQ(j["tensors"].size(), info.tensors.size());
  EXPECT_FALSE(j.contains("checkpoint"));
}

TEST(DescribeFile, ANetworkSavedFromCodeHasNoArchitectureOrPreprocessing) {
  ScratchDir dir;
  bp::Generator gen(2);
  const bp::nn::Sequential net{bp::nn::Linear(3, 5, gen), bp::nn::Tanh(), bp::nn::Linear(5, 2, gen)};
  io::save_model(dir.file("code.safetensors"), net, {.input_shape = {3}});
  const io::ModelInfo info = io::describe_file(dir.file("code.safetensors"));
  EXPECT_TRUE(info.from_code());
  EXPECT_EQ(info.parameters, 3 * 5 + 5 + 5 * 2 + 2);
  const std::string text = info.text();
  EXPECT_THAT(text, HasSubstr("network     Sequential (saved from code)\n"));
  EXPECT_THAT(text, HasSubstr("input       no preprocessing saved (eval and predict need it)\n"));
  EXPECT_THAT(text, Not(HasSubstr("task ")));
  const json j = json::parse(info.json());
  EXPECT_EQ(j["network"], "Sequential");
  EXPECT_FALSE(j.contains("architecture"));
  EXPECT_FALSE(j.contains("preprocessing"));
  EXPECT_EQ(j["module"]["type"], "Sequential");
}

TEST(DescribeFile, ACheckpointSaysWhereTrainingStopped) {
  ScratchDir dir;
  io::ModelFile m = mlp_file();
  bp::Generator gen(1);
  auto net = io::build_network(m.architecture, gen);
  bp::optim::SGD opt(net->parameters(), {.lr = 0.1, .momentum = 0.9});
  bp::loss::CrossEntropy loss;
  bp::data::TensorDataset train{
      .features = bp::rand({8, 4}, gen), .targets = bp::tensor({0, 1, 2, 0, 1, 2, 0, 1}), .num_classes = 3};
  bp::train::Trainer trainer(*net, loss, opt, {.epochs = 2, .batch_size = 4});
  trainer.fit(train);
  m.state = net->state_dict();
  io::save_checkpoint(dir.file("ck.safetensors"), {.model = m, .trainer = trainer.state()});

  const io::ModelInfo info = io::describe_file(dir.file("ck.safetensors"));
  ASSERT_TRUE(info.checkpoint.has_value());
  EXPECT_EQ(info.checkpoint->epoch, 2);
  EXPECT_EQ(info.checkpoint->step, 4);
  EXPECT_GT(info.checkpoint->optimizer_entries, 0u);
  EXPECT_EQ(info.parameters, 51);  // the optimiser's tensors are not the model's
  EXPECT_THAT(info.text(), HasSubstr("file        " + dir.file("ck.safetensors") +
                                     " (checkpoint)\n"
                                     "checkpoint  after epoch 2, step 4; optimiser state: " +
                                     std::to_string(info.checkpoint->optimizer_entries) + " tensors\n"));
  const json j = json::parse(info.json());
  EXPECT_EQ(j["kind"], "checkpoint");
  EXPECT_EQ(j["checkpoint"]["epoch"], 2);
  EXPECT_EQ(j["checkpoint"]["step"], 4);
}

TEST(DescribeFile, ATrainingRecordOfOtherTypesIsLeftOutOfTheText) {
  ScratchDir dir;
  io::ModelFile m = mlp_file();
  m.training_json = R"({"status": "completed", "epochs_run": "three", "seed": 7})";
  io::save_model(dir.file("m.safetensors"), m);
  const io::ModelInfo info = io::describe_file(dir.file("m.safetensors"));
  EXPECT_THAT(info.text(), Not(HasSubstr("training ")));
  EXPECT_EQ(json::parse(info.json())["training"]["epochs_run"], "three");
}

TEST(DescribeFile, NamesTheFileAndTheShapeWhenTheForwardPassFails) {
  ScratchDir dir;
  bp::Generator gen(2);
  const bp::nn::Sequential net{bp::nn::Linear(3, 2, gen)};
  io::save_model(dir.file("wrong.safetensors"), net, {.input_shape = {7}});
  iotest::expect_file_error(
      [&] { io::describe_file(dir.file("wrong.safetensors")); },
      {"wrong.safetensors", "one forward pass of a zero example of the input shape [7]"});
  iotest::expect_file_error([&] { io::describe_file(dir.file("missing.safetensors")); },
                            {"missing.safetensors"});
}

// Every one-bit change of the header (the metadata JSON the description reads) gives a description or a
// backprop::Error, never another exception or a crash (fuzz/fuzz_model_info.cpp searches further).
TEST(DescribeFile, DamagedHeadersAreErrors) {
  ScratchDir dir;
  const std::string path = dir.file("m.safetensors");
  io::save_model(path, mlp_file());
  const std::string valid = iotest::read_bytes(path);
  std::uint64_t header = 0;
  for (int i = 7; i >= 0; --i)
    header = header << 8 | static_cast<unsigned char>(valid[static_cast<std::size_t>(i)]);
  ASSERT_LT(header + 8, valid.size());
  int described = 0, refused = 0;
  for (std::size_t at = 8; at < 8 + header; ++at)
    for (const char bit : {'\x01', '\x20'}) {
      std::string bytes = valid;
      bytes[at] = static_cast<char>(bytes[at] ^ bit);
      iotest::write_bytes(path, bytes);
      try {
        (void)io::describe_file(path).json();
        ++described;
      } catch (const bp::Error&) {
        ++refused;
      }
    }
  EXPECT_EQ(described + refused, static_cast<int>(2 * header));
  EXPECT_GT(refused, 0);
}
