// `backprop info`, `eval` and `predict` on networks saved whole from code (io::save_model(path, module)), and
// info's summary table on command-line models, old and new.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/io/model_file.hpp>
#include <nlohmann/json.hpp>

#include "cli/cli_test_util.hpp"

namespace bp = backprop;
namespace nn = backprop::nn;
using clitest::run;
using clitest::Scratch;
using ::testing::HasSubstr;

namespace {

const std::string kV1 = std::string(BACKPROP_SOURCE_DIR) + "/tests/io/data/model_v1/";

// Standardisation of the blobs' four columns, with classes named as in the CSV.
bp::io::Preprocessing blobs_preprocessing() {
  bp::io::Preprocessing p;
  p.class_names = {"setosa", "versicolor", "virginica"};
  p.feature_names = {"sepal", "petal", "weight", "height"};
  p.target = "species";
  p.mean = bp::from_vector(std::vector<float>{1, 2, 6000, 0.001f}, {4});
  p.std = bp::from_vector(std::vector<float>{1, 2, 1000, 0.001f}, {4});
  return p;
}

std::shared_ptr<nn::Sequential> small_net() {
  bp::Generator gen(3);
  auto inner = std::make_shared<nn::Sequential>(nn::Linear(8, 8, gen), nn::Tanh());
  return std::make_shared<nn::Sequential>(nn::Linear(4, 8, gen), nn::ReLU(), inner, nn::Linear(8, 3, gen));
}

}  // namespace

TEST(InfoSummary, FirstFormatModelShowsEachLayersOutputShapeAndParameters) {
  Scratch s;
  const auto r = run(s, "info " + kV1 + "model.safetensors");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("summary     output shapes for one example of zeros, input [1, 4]"));
  EXPECT_THAT(r.out, ::testing::ContainsRegex(R"(\(model\) +Sequential +\[1, 3\] +105)"));
  EXPECT_THAT(r.out, ::testing::ContainsRegex(R"( 0 +Linear +\[1, 6\] +30)"));
  EXPECT_THAT(r.out, ::testing::ContainsRegex(R"( 5 +BatchNorm1d +\[1, 5\] +10)"));
  EXPECT_THAT(r.out, ::testing::ContainsRegex(R"( 8 +Linear +\[1, 3\] +18)"));
  EXPECT_THAT(r.out, HasSubstr("total params 129, trainable 105, non-trainable 24"));
  EXPECT_THAT(r.out, HasSubstr("network     4-6-5-3, tanh, batchnorm, dropout 0.1"));

  const auto j = nlohmann::json::parse(run(s, "info --json " + kV1 + "model.safetensors").out);
  EXPECT_EQ(j["summary"][1]["output_shape"], "[1, 6]");
  EXPECT_EQ(j["summary"][1]["type"], "Linear");
  EXPECT_EQ(j["trainable_parameters"], 105);
  EXPECT_EQ(j["buffer_elements"], 24);
  EXPECT_EQ(j["module"]["children"][1]["type"], "BatchNorm1d");
}

TEST(InfoSummary, NetworkFromCodeShowsNestedLayersAndSaysWhatEvalNeeds) {
  Scratch s;
  auto net = small_net();
  bp::io::save_model(s.path("m.safetensors"), *net, {.input_shape = {4}});
  auto r = run(s, "info " + s.path("m.safetensors"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("network     Sequential (saved from code)"));
  EXPECT_THAT(r.out, ::testing::ContainsRegex(R"( 2 +Sequential +\[1, 8\] +72)"));
  EXPECT_THAT(r.out, ::testing::ContainsRegex(R"( 2\.0 +Linear +\[1, 8\] +72)"));
  EXPECT_THAT(r.out, ::testing::ContainsRegex(R"( 3 +Linear +\[1, 3\] +27)"));
  EXPECT_THAT(r.out, HasSubstr("no preprocessing saved"));

  r = run(s, "eval --model " + s.path("m.safetensors") + " --data x.csv");
  EXPECT_EQ(r.code, 3);
  EXPECT_THAT(r.err, HasSubstr("m.safetensors: the network was saved from code without preprocessing"));
  r = run(s, "predict --model " + s.path("m.safetensors") + " --input x.csv");
  EXPECT_EQ(r.code, 3);
  EXPECT_THAT(r.err, HasSubstr("`backprop predict` needs it"));

  // Without an input shape the table still lists the layers, with no output shapes.
  bp::io::save_model(s.path("n.safetensors"), *net);
  r = run(s, "info " + s.path("n.safetensors"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("input shape unknown"));
  EXPECT_THAT(r.out, ::testing::ContainsRegex(R"( 3 +Linear +- +27)"));
}

TEST(InfoSummary, EvalAndPredictWorkOnANetworkFromCodeWithPreprocessing) {
  Scratch s;
  auto net = small_net();
  net->eval();
  bp::io::save_model(s.path("m.safetensors"), *net,
                     {.input_shape = {4}, .preprocessing = blobs_preprocessing()});
  clitest::write(s.path("data.csv"), clitest::blobs_csv(5, 4));
  auto r = run(s, "eval --json --model " + s.path("m.safetensors") + " --data " + s.path("data.csv"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["examples"], 12);

  r = run(s, "predict --json --model " + s.path("m.safetensors") + " --input " + s.path("data.csv"));
  ASSERT_EQ(r.code, 0) << r.err;
  // The same class as the network computes here, row by row.
  const bp::data::TensorDataset d = bp::data::read_csv(s.path("data.csv"), {.target = "species"});
  const bp::Tensor logits = net->forward(blobs_preprocessing().apply(d.features));
  const std::vector<std::string> lines = clitest::words(r.out);
  ASSERT_EQ(lines.size(), 12u);
  for (std::int64_t i = 0; i < 12; ++i) {
    const auto j = nlohmann::json::parse(lines[static_cast<std::size_t>(i)]);
    std::int64_t best = 0;
    for (std::int64_t c = 1; c < 3; ++c)
      if (logits.at({i, c}) > logits.at({i, best})) best = c;
    EXPECT_EQ(j["index"], best) << "row " << i;
  }
}

TEST(InfoSummary, UnknownTypesAndMismatchedTensorsExit3NamingFileAndField) {
  Scratch s;
  auto net = small_net();
  const std::string path = s.path("m.safetensors");
  bp::io::save_model(path, *net, {.input_shape = {4}, .preprocessing = blobs_preprocessing()});
  bp::io::NamedTensors file = bp::io::load_safetensors(path);
  std::string& tree = file.metadata.at("module");
  tree.replace(tree.find("\"Tanh\""), 6, "\"Swish\"");
  bp::io::save_safetensors(s.path("unknown.safetensors"), file);
  for (const std::string& cmd :
       {"info " + s.path("unknown.safetensors"), "eval --data x.csv --model " + s.path("unknown.safetensors"),
        "predict --input x.csv --model " + s.path("unknown.safetensors")}) {
    const auto r = run(s, cmd);
    EXPECT_EQ(r.code, 3) << cmd;
    EXPECT_THAT(r.err,
                HasSubstr("unknown.safetensors: __metadata__ 'module' at '2.1': unknown module type 'Swish'"))
        << cmd;
  }

  file = bp::io::load_safetensors(path);
  file.tensors.erase(file.tensors.begin());
  bp::io::save_safetensors(s.path("short.safetensors"), file);
  const auto r = run(s, "info " + s.path("short.safetensors"));
  EXPECT_EQ(r.code, 3);
  EXPECT_THAT(r.err, HasSubstr("short.safetensors: tensor '0.bias' of the module tree ([8]) is missing"));
}

// The newer layers through the command line: a residual MLP with LayerNorm (info, eval, predict), a network
// with an output layer tied to its embedding and an attention block (info).
TEST(InfoSummary, ResidualTiedAndAttentionNetworksFromCode) {
  Scratch s;
  bp::Generator gen(21);
  auto mlp = std::make_shared<nn::Sequential>(
      nn::Linear(4, 8, gen),
      nn::Residual(nn::Sequential{nn::LayerNorm(8), nn::Linear(8, 8, gen), nn::ReLU()}), nn::LayerNorm(8),
      nn::Linear(8, 3, gen));
  mlp->eval();
  bp::io::save_model(s.path("mlp.safetensors"), *mlp,
                     {.input_shape = {4}, .preprocessing = blobs_preprocessing()});
  auto r = run(s, "info " + s.path("mlp.safetensors"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, ::testing::ContainsRegex(R"( 1 +Residual +\[1, 8\] +88)"));
  EXPECT_THAT(r.out, ::testing::ContainsRegex(R"( 1\.block\.0 +LayerNorm +- +16)"));
  clitest::write(s.path("data.csv"), clitest::blobs_csv(5, 4));
  r = run(s, "eval --json --model " + s.path("mlp.safetensors") + " --data " + s.path("data.csv"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["examples"], 12);
  r = run(s, "predict --json --model " + s.path("mlp.safetensors") + " --input " + s.path("data.csv"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(clitest::words(r.out).size(), 12u);

  auto emb = std::make_shared<nn::Embedding>(11, 6, gen);
  auto head = std::make_shared<nn::Linear>(6, 11, gen);
  head->share_parameter("weight", emb->weight());
  nn::Sequential tied{emb, head};
  bp::io::save_model(s.path("tied.safetensors"), tied, {.input_shape = {5}});
  r = run(s, "info " + s.path("tied.safetensors"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, ::testing::ContainsRegex(R"( 0 +Embedding +\[1, 5, 6\] +66)"));
  EXPECT_THAT(r.out, ::testing::ContainsRegex(R"( 1 +Linear +\[1, 5, 11\])"));
  EXPECT_THAT(r.out, HasSubstr("total params 77"));  // the tied weight counted once

  nn::Sequential block{nn::Residual(nn::MultiheadAttention(8, 2, gen)), nn::LayerNorm(8)};
  bp::io::save_model(s.path("attn.safetensors"), block, {.input_shape = {5, 8}});
  r = run(s, "info " + s.path("attn.safetensors"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, ::testing::ContainsRegex(R"( 0\.block +MultiheadAttention +- +288)"));
}
