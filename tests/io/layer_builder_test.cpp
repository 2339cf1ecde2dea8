// Networks as data: [[model.layer]] tables read from TOML, written back, checked, and built with the shapes
// inferred from the data (config::LayerSpec, io::build_network).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/config.hpp>
#include <backprop/io/model_file.hpp>
#include <functional>

namespace bp = backprop;
using ::testing::HasSubstr;

namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const bp::ConfigError& e) {
    return e.what();
  }
  return "(no ConfigError)";
}

constexpr const char* kTables = R"(
[model]
init = "auto"

[[model.layer]]
type = "dense"
out = 32

[[model.layer]]
type = "batchnorm"

[[model.layer]]
type = "leaky_relu"
slope = 0.2

[[model.layer]]
type = "dropout"
p = 0.25

[[model.layer]]
type = "dense"

[train]
epochs = 3
)";

}  // namespace

TEST(LayerTables, ReadFromTomlAndWrittenBackUnchanged) {
  const bp::config::Config c = bp::config::parse_toml(kTables, "net.toml");
  EXPECT_EQ(c.model.arch, "custom");  // tables without an arch key
  ASSERT_EQ(c.model.layer.size(), 5u);
  EXPECT_EQ(c.model.layer[0].type, "dense");
  EXPECT_EQ(std::get<std::int64_t>(c.model.layer[0].options.at("out")), 32);
  EXPECT_EQ(std::get<double>(c.model.layer[2].options.at("slope")), 0.2);
  EXPECT_EQ(c.train.epochs, 3);
  const bp::config::Config back = bp::config::parse_toml(bp::config::to_toml(c), "written");
  EXPECT_EQ(back.model.layer, c.model.layer);
  EXPECT_EQ(back.model.arch, "custom");
  EXPECT_EQ(back.train.epochs, 3);
}

TEST(LayerTables, MistakesNameTheLayerTheOptionAndWhatWasExpected) {
  const auto parse = [](const std::string& text) {
    return error_of([&] { bp::config::parse_toml(text, "net.toml"); });
  };
  EXPECT_THAT(parse("[[model.layer]]\ntype = \"conv\"\n"),
              HasSubstr("net.toml:1:1: model.layer #1: unknown layer type 'conv'; did you mean"));
  EXPECT_THAT(
      parse("[[model.layer]]\ntype = \"dense\"\n[[model.layer]]\ntype = \"conv2d\"\nout = 8\nkernal = 3\n"),
      HasSubstr("model.layer #2 (conv2d): unknown option 'kernal'; did you mean 'kernel'?"));
  EXPECT_THAT(parse("[[model.layer]]\ntype = \"conv2d\"\nout = 8\n"),
              HasSubstr("model.layer #1 (conv2d): needs kernel (an integer >= 1 or a list of two)"));
  EXPECT_THAT(parse("[[model.layer]]\ntype = \"conv2d\"\nout = 8\nkernel = 3\npadding = \"valid\"\n"),
              HasSubstr("padding must be an integer >= 0, a list of two, or \"same\", got valid"));
  EXPECT_THAT(parse("[[model.layer]]\ntype = \"dropout\"\np = 1.0\n"),
              HasSubstr("(dropout): p must be a number >= 0 and < 1, got 1.0"));
  EXPECT_THAT(parse("[[model.layer]]\nout = 3\n"), HasSubstr("model.layer #1: needs type = \"...\""));
  EXPECT_THAT(parse("[model]\nlayer = 3\n"), HasSubstr("model.layer must be [[model.layer]] tables"));
  bp::config::Config both =
      bp::config::parse_toml("[model]\narch = \"cnn\"\n[[model.layer]]\ntype = \"relu\"\n");
  EXPECT_THAT(error_of([&] { bp::config::validate(both); }),
              HasSubstr("model.arch (--arch) = cnn and [[model.layer]] tables both say what the network is"));
  bp::config::Config none;
  bp::config::set(none, "model.arch", "custom", "--arch");
  EXPECT_THAT(error_of([&] { bp::config::validate(none); }),
              HasSubstr("needs the network as [[model.layer]]"));
  EXPECT_THAT(error_of([&] { bp::config::set(none, "model.arch", "resnet", "--arch"); }),
              HasSubstr("--arch: expected one of: mlp, lenet5, cnn, custom"));
}

TEST(LayerTables, BuildsTheNetworkWithShapesFromTheData) {
  const bp::config::Config c = bp::config::parse_toml(kTables);
  bp::Generator gen(3);
  const auto net = bp::io::build_network(c.model.layer, {20}, 4, gen);
  ASSERT_EQ(net->size(), 5);
  const auto params = net->named_parameters();
  ASSERT_GE(params.size(), 2u);
  EXPECT_EQ(params[0].first, "0.weight");
  EXPECT_EQ(params[0].second.shape(), (bp::Shape{32, 20}));
  EXPECT_EQ(net->state_dict().at("4.weight").shape(), (bp::Shape{4, 32}));  // `out` from the data
  bp::Generator xgen(4);
  net->eval();
  EXPECT_EQ(net->forward(bp::randn({7, 20}, xgen)).shape(), (bp::Shape{7, 4}));
}

TEST(LayerTables, ShapesThatDoNotFitAreErrorsNamingTheLayer) {
  bp::Generator gen(1);
  using L = bp::config::LayerSpec;
  const std::vector<L> dense_on_image = {L{.type = "dense", .options = {}}};
  EXPECT_THAT(error_of([&] {
                bp::io::build_network(dense_on_image, {1, 28, 28}, 10, gen);
              }),
              HasSubstr("model.layer #1 (dense): needs a 1-D input [features], got an input of shape [1, 28, "
                        "28]; add a flatten layer before it"));
  const std::vector<L> hidden_without_out = {
      L{.type = "dense", .options = {}}, L{.type = "relu", .options = {}}, L{.type = "dense", .options = {}}};
  EXPECT_THAT(error_of([&] { bp::io::build_network(hidden_without_out, {5}, 3, gen); }),
              HasSubstr("model.layer #1 (dense): needs out (only the last dense layer may leave it out"));
  const std::vector<L> wrong_outputs = {L{.type = "dense", .options = {{"out", std::int64_t{7}}}}};
  EXPECT_THAT(error_of([&] { bp::io::build_network(wrong_outputs, {5}, 3, gen); }),
              HasSubstr("the last layer gives [7] per example, but the data needs 3 outputs"));
}

TEST(LayerTables, PresetsAreCheckedLayerLists) {
  for (const char* arch : {"lenet5", "cnn"}) {
    const std::vector<bp::config::LayerSpec> layers = bp::config::preset_layers(arch);
    ASSERT_FALSE(layers.empty()) << arch;
    for (std::size_t i = 0; i < layers.size(); ++i)
      EXPECT_NO_THROW(bp::config::check_layer(layers[i], std::string(arch) + " #" + std::to_string(i + 1)));
    EXPECT_EQ(layers.back().type, "dense");
    EXPECT_FALSE(layers.back().options.contains("out"));  // the outputs come from the data
  }
  bp::config::Config c;
  EXPECT_TRUE(bp::config::network_layers(c.model).empty());  // mlp: the dense keys describe it
  c.model.arch = "lenet5";
  EXPECT_EQ(bp::config::network_layers(c.model), bp::config::preset_layers("lenet5"));
}

TEST(LayerTables, ImagePresetsBuildWithShapesFromTheImage) {
  bp::Generator gen(1);
  bp::Generator xgen(2);
  for (const char* arch : {"lenet5", "cnn"}) {
    const auto net = bp::io::build_network(bp::config::preset_layers(arch), {1, 28, 28}, 10, gen);
    net->eval();
    EXPECT_EQ(net->forward(bp::randn({3, 1, 28, 28}, xgen)).shape(), (bp::Shape{3, 10})) << arch;
  }
  // LeNet-5's first dense layer sees 16 channels of 5 x 5 after two poolings: 400 inputs.
  const auto lenet = bp::io::build_network(bp::config::preset_layers("lenet5"), {1, 28, 28}, 10, gen);
  EXPECT_EQ(lenet->state_dict().at("7.weight").shape(), (bp::Shape{120, 400}));
  // A depthwise convolution, "same" padding, stride, average and adaptive pooling, dropout2d.
  const bp::config::Config c = bp::config::parse_toml(R"(
[[model.layer]]
type = "conv2d"
out = 4
kernel = 3
padding = "same"
[[model.layer]]
type = "conv2d"
out = 4
kernel = [3, 1]
groups = 4
stride = 2
[[model.layer]]
type = "dropout2d"
p = 0.1
[[model.layer]]
type = "avgpool2d"
kernel = 2
[[model.layer]]
type = "adaptive_avgpool2d"
out = 1
[[model.layer]]
type = "flatten"
[[model.layer]]
type = "dense"
)");
  const auto net = bp::io::build_network(c.model.layer, {2, 9, 9}, 3, gen);
  EXPECT_EQ(net->state_dict().at("1.weight").shape(), (bp::Shape{4, 1, 3, 1}));
  net->eval();
  EXPECT_EQ(net->forward(bp::randn({2, 2, 9, 9}, xgen)).shape(), (bp::Shape{2, 3}));
}

TEST(LayerTables, ImageLayersThatDoNotFitAreErrorsNamingTheLayer) {
  bp::Generator gen(1);
  using L = bp::config::LayerSpec;
  const L conv{.type = "conv2d", .options = {{"out", std::int64_t{4}}, {"kernel", std::int64_t{3}}}};
  EXPECT_THAT(error_of([&] { bp::io::build_network({conv}, {20}, 3, gen); }),
              HasSubstr("model.layer #1 (conv2d): needs an image [channels, height, width], got an input of "
                        "shape [20] (image layers need image data"));
  const L big{.type = "conv2d", .options = {{"out", std::int64_t{4}}, {"kernel", std::int64_t{9}}}};
  EXPECT_THAT(error_of([&] {
                bp::io::build_network({big}, {1, 5, 5}, 3, gen);
              }),
              HasSubstr("model.layer #1 (conv2d)"));
  const L groups{
      .type = "conv2d",
      .options = {{"out", std::int64_t{4}}, {"kernel", std::int64_t{1}}, {"groups", std::int64_t{3}}}};
  EXPECT_THAT(error_of([&] {
                bp::io::build_network({groups}, {2, 5, 5}, 3, gen);
              }),
              HasSubstr("model.layer #1 (conv2d): "));
}
