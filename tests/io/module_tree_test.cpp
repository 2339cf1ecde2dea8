// Whole networks saved as a module tree and loaded without their code; the checks of the tree reader; and the
// model files of the first format (no tree), which must keep loading into the same network.
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/io/model_file.hpp>
#include <backprop/io/module_tree.hpp>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <random>
#include <sstream>

#include "io/io_test_util.hpp"

namespace bp = backprop;
namespace nn = backprop::nn;
using json = nlohmann::json;

namespace {

bool same_bits(const bp::Tensor& a, const bp::Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         std::memcmp(a.raw_data(), b.raw_data(), a.nbytes()) == 0;
}

// Every built-in layer and container, with non-trivial values in every parameter and buffer.
std::shared_ptr<nn::Sequential> every_builtin(bp::Generator& gen) {
  auto inner = std::make_shared<nn::Sequential>(nn::Linear(6, 5, gen), nn::LeakyReLU(0.2), nn::Identity());
  auto net = std::make_shared<nn::Sequential>(
      nn::Linear(4, 6, gen), nn::BatchNorm1d(6, {.eps = 1e-3, .momentum = 0.25}), nn::Tanh(),
      nn::Dropout(0.3, gen), inner, nn::DropConnect(5, 5, 0.4, gen, {.activation = nn::Nonlinearity::relu}),
      nn::ReLU(), nn::Linear(5, 3, gen, {.bias = false}), nn::Sigmoid(), nn::Softmax(1), nn::LogSoftmax(-1));
  bp::Generator values(9);
  bp::NoGradGuard guard;
  for (auto& [name, t] : net->state_dict())
    if (t.dtype() == bp::f32 && name.find("num_batches") == std::string::npos)
      t.copy_(bp::rand(t.shape(), values, bp::f32, 0.5, 1.5));
  return net;
}

// A user-defined block: y = x + scale * child(x).
struct ScaledResidual : nn::Module {
  ScaledResidual(nn::ModulePtr body, double scale)
      : body(register_module("body", std::move(body))), scale(scale) {}
  bp::Tensor forward(const bp::Tensor& x) override { return bp::add(x, bp::mul(body->forward(x), scale)); }
  std::string repr() const override { return "ScaledResidual()"; }
  nn::ModulePtr body;
  double scale;
};

void register_scaled_residual() {
  static const bool once = [] {
    bp::io::register_module<ScaledResidual>(
        "ScaledResidual",
        [](const ScaledResidual& m) { return bp::io::ModuleOptions().set("scale", m.scale); },
        [](const bp::io::ModuleOptions& o, const bp::io::ModuleChildren& children) -> nn::ModulePtr {
          BP_CHECK(children.size() == 1, ValueError, "ScaledResidual needs one child, got ", children.size());
          return std::make_shared<ScaledResidual>(children[0].second, o.number("scale"));
        });
    return true;
  }();
  (void)once;
}

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const bp::FileError& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("not a FileError: ") + e.what();
  }
  return "no error";
}

// The tree and state of a small network, for the reader's checks.
struct Small {
  std::string tree;
  std::map<std::string, bp::Tensor> state;
  Small() {
    bp::Generator gen(3);
    nn::Sequential net(nn::Linear(3, 2, gen), nn::ReLU());
    tree = bp::io::module_tree(net);
    state = net.state_dict();
  }
  std::string error(const std::string& t) const {
    return message_of([&] { bp::io::build_module_tree(t, state, "net.safetensors"); });
  }
  std::string error(const json& t) const { return error(t.dump()); }
};

}  // namespace

TEST(ModuleTree, EveryBuiltinRoundTripsWithBitIdenticalOutputs) {
  iotest::ScratchDir dir;
  bp::Generator gen(1);
  auto net = every_builtin(gen);
  net->eval();
  const bp::Tensor x = bp::randn({7, 4}, gen);
  const bp::Tensor before = net->forward(x);

  bp::io::save_model(dir.file("m.safetensors"), *net, {.input_shape = {4}});
  const nn::ModulePtr back = bp::io::load_module(dir.file("m.safetensors"));
  EXPECT_FALSE(back->is_training());
  EXPECT_TRUE(same_bits(back->forward(x), before));
  EXPECT_EQ(back->repr(), net->repr());
  EXPECT_EQ(bp::io::module_tree(*back), bp::io::module_tree(*net));
  const auto state = back->state_dict();
  ASSERT_EQ(state.size(), net->state_dict().size());
  for (const auto& [name, t] : net->state_dict()) EXPECT_TRUE(same_bits(state.at(name), t)) << name;

  const bp::io::ModelFile file = bp::io::load_model(dir.file("m.safetensors"));
  EXPECT_EQ(file.input_shape, (std::vector<std::int64_t>{4}));
  EXPECT_FALSE(file.has_preprocessing);
  EXPECT_EQ(file.architecture.inputs, 0);
}

TEST(ModuleTree, DoubleNetworkRoundTrips) {
  iotest::ScratchDir dir;
  bp::Generator gen(2);
  nn::Sequential net(nn::Linear(3, 4, gen, {.dtype = bp::f64}),
                     nn::BatchNorm1d(4, {.affine = false, .dtype = bp::f64}), nn::Tanh(),
                     nn::Linear(4, 1, gen, {.dtype = bp::f64}));
  net.eval();
  const bp::Tensor x = bp::randn({5, 3}, gen, bp::f64);
  bp::io::save_model(dir.file("m.safetensors"), net);
  EXPECT_TRUE(same_bits(bp::io::load_module(dir.file("m.safetensors"))->forward(x), net.forward(x)));
}

TEST(ModuleTree, TreeJsonNamesTypesOptionsAndChildrenInOrder) {
  bp::Generator gen(1);
  nn::Sequential net(nn::Linear(4, 2, gen), nn::LeakyReLU(0.5));
  EXPECT_EQ(
      bp::io::module_tree(net),
      R"({"type":"Sequential","options":{},"children":[)"
      R"({"name":"0","type":"Linear","options":{"bias":true,"dtype":"f32","in_features":4,"out_features":2},"children":[]},)"
      R"({"name":"1","type":"LeakyReLU","options":{"negative_slope":0.5},"children":[]}]})");
}

TEST(ModuleTree, SharedLayerIsSavedOnceAndStaysShared) {
  iotest::ScratchDir dir;
  bp::Generator gen(4);
  auto shared = std::make_shared<nn::Linear>(3, 3, gen);
  nn::Sequential net(shared, nn::Tanh(), shared);
  const std::string tree = bp::io::module_tree(net);
  EXPECT_NE(tree.find(R"({"name":"2","same_as":"0"})"), std::string::npos) << tree;
  bp::io::save_model(dir.file("m.safetensors"), net);
  auto back = std::dynamic_pointer_cast<nn::Sequential>(bp::io::load_module(dir.file("m.safetensors")));
  ASSERT_NE(back, nullptr);
  EXPECT_EQ((*back)[0], (*back)[2]);
  EXPECT_EQ(back->num_parameters(), net.num_parameters());
  const bp::Tensor x = bp::randn({2, 3}, gen);
  EXPECT_TRUE(same_bits(back->forward(x), net.forward(x)));
}

TEST(ModuleTree, UserTypeRegisteredByNameRoundTrips) {
  register_scaled_residual();
  iotest::ScratchDir dir;
  bp::Generator gen(5);
  nn::Sequential net(std::make_shared<ScaledResidual>(std::make_shared<nn::Linear>(3, 3, gen), 0.75),
                     nn::ReLU());
  bp::io::save_model(dir.file("m.safetensors"), net);
  const nn::ModulePtr back = bp::io::load_module(dir.file("m.safetensors"));
  auto block = std::dynamic_pointer_cast<ScaledResidual>(back->named_children()[0].second);
  ASSERT_NE(block, nullptr);
  EXPECT_EQ(block->scale, 0.75);
  const bp::Tensor x = bp::randn({4, 3}, gen);
  EXPECT_TRUE(same_bits(back->forward(x), net.forward(x)));
  const auto types = bp::io::registered_module_types();
  EXPECT_NE(std::find(types.begin(), types.end(), "ScaledResidual"), types.end());

  EXPECT_THROW(
      bp::io::register_module<ScaledResidual>(
          "Other", [](const bp::io::ModuleOptions&, const bp::io::ModuleChildren&) { return nullptr; }),
      bp::ValueError);  // the same C++ type twice
  EXPECT_THROW(
      bp::io::register_module<nn::Module>(
          "Linear", [](const bp::io::ModuleOptions&, const bp::io::ModuleChildren&) { return nullptr; }),
      bp::ValueError);  // a name that is taken
  EXPECT_THROW(
      bp::io::register_module<nn::Module>(
          "has space", [](const bp::io::ModuleOptions&, const bp::io::ModuleChildren&) { return nullptr; }),
      bp::ValueError);
}

TEST(ModuleTree, UnregisteredTypeIsRefusedOnSaveNamingThePath) {
  struct Unknown : nn::Module {
    bp::Tensor forward(const bp::Tensor& x) override { return x; }
    std::string repr() const override { return "Unknown()"; }
  };
  iotest::ScratchDir dir;
  nn::Sequential net{nn::ReLU(), Unknown()};
  try {
    bp::io::save_model(dir.file("m.safetensors"), net);
    FAIL() << "saved a module of an unregistered type";
  } catch (const bp::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("'1' (Unknown())"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir.file("m.safetensors")));
}

TEST(ModuleTree, UnknownTypeInAFileNamesTheTypeAndTheFile) {
  iotest::ScratchDir dir;
  bp::Generator gen(1);
  nn::Sequential net(nn::Linear(2, 2, gen));
  const std::string path = dir.file("m.safetensors");
  bp::io::save_model(path, net);
  bp::io::NamedTensors file = bp::io::load_safetensors(path);
  std::string& tree = file.metadata.at("module");
  tree.replace(tree.find("\"Sequential\""), 12, "\"MyBlock\"");
  bp::io::save_safetensors(path, file);
  const std::string e = message_of([&] { bp::io::load_module(path); });
  EXPECT_NE(e.find(path), std::string::npos) << e;
  EXPECT_NE(e.find("unknown module type 'MyBlock'"), std::string::npos) << e;
  EXPECT_NE(e.find("register_module"), std::string::npos) << e;
}

TEST(ModuleTree, MalformedTreesAreFileErrorsNamingTheField) {
  const Small s;
  const json good = json::parse(s.tree);
  EXPECT_EQ(s.error(good), "no error");
  struct Case {
    std::function<void(json&)> edit;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {[](json& t) { t.erase("type"); }, "at '(root)': missing field \"type\""},
      {[](json& t) { t["type"] = 3; }, "at '(root)': field \"type\" is a JSON number, expected a string"},
      {[](json& t) { t["options"] = json::array(); },
       "field \"options\" is a JSON array, expected an object"},
      {[](json& t) { t.erase("children"); }, "at '(root)': missing field \"children\""},
      {[](json& t) { t["children"] = "x"; }, "field \"children\" is a JSON string, expected an array"},
      {[](json& t) { t["extra"] = 1; }, "at '(root)': unexpected field \"extra\""},
      {[](json& t) { t["children"][0].erase("name"); }, "child 0: missing field \"name\""},
      {[](json& t) { t["children"][1]["name"] = "0"; },
       "child 1: the name '0' is empty, contains '.' or repeats"},
      {[](json& t) { t["children"][0]["options"].erase("in_features"); },
       "at '0' (Linear): missing option \"in_features\""},
      {[](json& t) { t["children"][0]["options"]["bias"] = 1; },
       "at '0' (Linear): option \"bias\" must be a boolean"},
      {[](json& t) { t["children"][0]["options"]["dtype"] = "f16"; },
       "at '0' (Linear): option \"dtype\" must be f32"},
      {[](json& t) { t["children"][0]["options"]["x"] = json::object(); },
       "at '0': option \"x\" is a JSON object"},
      {[](json& t) { t["children"][0]["options"]["in_features"] = 18446744073709551615ULL; },
       "more than a 64-bit signed integer holds"},
      {[](json& t) { t["children"][0]["options"]["in_features"] = -3; },
       "at '0' (Linear): a tensor size is negative"},
      {[](json& t) { t["children"][0]["options"]["in_features"] = 1000000000; },
       "at '0' (Linear): the module needs a tensor of 2000000000 elements, more than the 4112 elements left"},
      {[](json& t) { t["children"][1]["name"] = "5"; },
       "at '(root)' (Sequential): the tree lists the children [0, 5] but Sequential built [0, 1]"},
      {[](json& t) {
         t["children"][1]["children"] = json::array(
             {{{"name", "a"}, {"type", "ReLU"}, {"options", json::object()}, {"children", json::array()}}});
       },
       "at '1' (ReLU): the tree lists the children [a] but ReLU built []"},
      {[](json& t) {
         t["children"][1] = {{"name", "1"}, {"same_as", "7"}};
       },
       "at '1': \"same_as\" names '7', which is not a module built earlier"},
      {[&good](json& t) {
         t["children"][1]["type"] = "Linear";
         t["children"][1]["options"] = good["children"][0]["options"];
       },
       "tensor '1.bias' of the module tree ([2]) is missing from the file"},
      {[](json& t) { t["children"][0]["options"]["bias"] = false; },
       "tensor '0.bias' in the file belongs to no module of the tree"},
      {[](json& t) {
         t["children"][0]["options"]["out_features"] = 1;
         t["children"][0]["options"]["in_features"] = 6;
       },
       "tensor '0.bias' is [2] in the file but the module tree makes it [1]"},
      {[](json& t) { t["children"][0]["options"]["dtype"] = "f64"; },
       "tensor '0.bias' is f32 in the file but the module tree makes it f64"},
      {[](json& t) { t = json::array(); }, "at '(root)': expected a JSON object"},
  };
  for (const Case& c : cases) {
    json t = good;
    c.edit(t);
    const std::string e = s.error(t);
    EXPECT_NE(e.find("net.safetensors: "), std::string::npos) << e;
    EXPECT_NE(e.find(c.expect), std::string::npos) << "expected: " << c.expect << "\ngot: " << e;
  }
  auto missing = s.state;
  missing.erase("0.bias");
  EXPECT_NE(message_of([&] {
              bp::io::build_module_tree(s.tree, missing, "net.safetensors");
            }).find("net.safetensors: tensor '0.bias' of the module tree ([2]) is missing from the file"),
            std::string::npos);
  EXPECT_NE(s.error(std::string("{\"type\":")).find("__metadata__ 'module' is not valid JSON"),
            std::string::npos);
  EXPECT_NE(s.error(std::string(100000, '[')).find("nests deeper than"), std::string::npos);
  std::string deep = R"({"type":"Sequential","options":{},"children":[)";
  std::string tail = "]}";
  for (int i = 0; i < 65; ++i) {
    deep += R"({"name":"0","type":"Sequential","options":{},"children":[)";
    tail += "]}";
  }
  EXPECT_NE(s.error(deep + tail).find("the tree nests deeper than 64 modules"), std::string::npos)
      << s.error(deep + tail);
}

// Seeded random edits of a valid tree: each must load or be a FileError (never a crash or another error).
TEST(ModuleTree, RandomEditsLoadOrAreFileErrors) {
  const Small s;
  std::mt19937 rng(12345);
  const std::string alphabet = "{}[]\":,0123456789-.eE truefalsnl\\abcxyzLinearReLUSequential_";
  int loaded = 0, refused = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string t = s.tree;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < edits && !t.empty(); ++k) {
      const std::size_t at = rng() % t.size();
      switch (rng() % 3) {
        case 0:
          t[at] = alphabet[rng() % alphabet.size()];
          break;
        case 1:
          t.erase(at, 1 + rng() % 8);
          break;
        default:
          t.insert(at, 1, alphabet[rng() % alphabet.size()]);
      }
    }
    const std::string e = s.error(t);
    if (e == "no error")
      ++loaded;
    else
      ++refused;
    ASSERT_EQ(e.rfind("not a FileError", 0), std::string::npos) << t << "\n" << e;
  }
  EXPECT_GT(refused, 2000);
}

// A model file written by the command line before module trees were stored (tests/io/data/model_v1: 4-6-5-3,
// tanh, batchnorm, dropout, trained 3 epochs on train.csv; predictions.jsonl is what `backprop predict` printed
// for its first 6 rows then).
TEST(ModelFileV1, LoadsIntoTheSameNetworkThroughBothApis) {
  const std::string dir = std::string(BACKPROP_SOURCE_DIR) + "/tests/io/data/model_v1/";
  const bp::io::ModelFile m = bp::io::load_model(dir + "model.safetensors");
  EXPECT_TRUE(m.module_tree.empty());
  EXPECT_EQ(m.architecture.hidden, (std::vector<std::int64_t>{6, 5}));
  EXPECT_EQ(m.input_shape, (std::vector<std::int64_t>{4}));
  const auto old_net = bp::io::load_network(m, "model_v1");
  const nn::ModulePtr net = bp::io::load_module(dir + "model.safetensors");
  EXPECT_EQ(net->repr(), old_net->repr());
  EXPECT_FALSE(net->is_training());

  std::ifstream csv(dir + "train.csv");
  std::string line;
  std::getline(csv, line);  // header
  std::vector<float> rows;
  for (int r = 0; r < 6 && std::getline(csv, line); ++r) {
    std::stringstream ss(line);
    std::string cell;
    for (int c = 0; c < 4 && std::getline(ss, cell, ','); ++c) rows.push_back(std::stof(cell));
  }
  const bp::Tensor x = m.preprocessing.apply(bp::from_vector(rows, {6, 4}));
  const bp::Tensor logits = net->forward(x);
  EXPECT_TRUE(same_bits(logits, old_net->forward(x)));
  const std::vector<double> p = bp::softmax(logits, 1).to_vector();

  std::ifstream golden(dir + "predictions.jsonl");
  for (int r = 0; r < 6 && std::getline(golden, line); ++r) {
    const json j = json::parse(line);
    const auto c = j.at("index").get<std::int64_t>();
    EXPECT_EQ(m.preprocessing.class_names[static_cast<std::size_t>(c)], j.at("class").get<std::string>());
    for (int k = 0; k < 3; ++k)
      EXPECT_LE(p[static_cast<std::size_t>(r * 3 + k)], p[static_cast<std::size_t>(r * 3 + c)]);
    EXPECT_NEAR(p[static_cast<std::size_t>(r * 3 + c)], j.at("probability").get<double>(), 1e-6)
        << "row " << r;
  }
}

TEST(ModelFileV1, CommandLineModelsNowCarryTheirTree) {
  iotest::ScratchDir dir;
  bp::io::ModelFile m{
      .architecture = {.inputs = 3, .hidden = {4}, .outputs = 2, .batchnorm = true, .dropout = 0.1}};
  bp::Generator gen(1);
  auto net = bp::io::build_network(m.architecture, gen);
  m.state = net->state_dict();
  bp::io::save_model(dir.file("m.safetensors"), m);
  const bp::io::ModelFile back = bp::io::load_model(dir.file("m.safetensors"));
  EXPECT_EQ(back.module_tree, bp::io::module_tree(*net));
  EXPECT_EQ(back.input_shape, (std::vector<std::int64_t>{3}));
  net->eval();
  const bp::Tensor x = bp::randn({2, 3}, gen);
  EXPECT_TRUE(same_bits(bp::io::load_module(dir.file("m.safetensors"))->forward(x), net->forward(x)));
  EXPECT_TRUE(same_bits(bp::io::load_network(back)->forward(x), net->forward(x)));
}

// The fuzz target's seed (fuzz/corpus/module_tree/full.json) loads against the target's tensors, so the
// fuzzer starts from a tree that reaches every check.
TEST(ModuleTree, FuzzSeedLoadsAgainstTheFuzzTargetsTensors) {
  const std::map<std::string, bp::Tensor> state = {{"0.weight", bp::zeros({2, 3})},
                                                   {"0.bias", bp::zeros({2})},
                                                   {"2.0.weight", bp::zeros({2, 2})},
                                                   {"2.0.bias", bp::zeros({2})},
                                                   {"3.weight", bp::zeros({2})},
                                                   {"3.bias", bp::zeros({2})},
                                                   {"3.running_mean", bp::zeros({2})},
                                                   {"3.running_var", bp::zeros({2})},
                                                   {"3.num_batches_tracked", bp::zeros({}, bp::i64)}};
  std::ifstream in(std::string(BACKPROP_SOURCE_DIR) + "/fuzz/corpus/module_tree/full.json");
  std::stringstream text;
  text << in.rdbuf();
  const nn::ModulePtr net = bp::io::build_module_tree(text.str(), state, "full.json");
  EXPECT_EQ(net->named_modules().size(), 5u);
}
