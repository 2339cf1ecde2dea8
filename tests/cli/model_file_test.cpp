// Model files, checkpoints and the metrics log, through the library API.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/io/checkpoint.hpp>
#include <backprop/io/metrics.hpp>
#include <backprop/io/model_file.hpp>
#include <cmath>

#include "cli_test_util.hpp"

namespace bp = backprop;
using ::testing::HasSubstr;
namespace fs = std::filesystem;

namespace {

bp::io::ModelFile small_model(bp::Generator& gen, bool batchnorm = true) {
  bp::io::ModelFile m;
  m.architecture = {.inputs = 4,
                    .hidden = {5, 3},
                    .outputs = 3,
                    .activation = "tanh",
                    .batchnorm = batchnorm,
                    .dropout = 0.25,
                    .init = "xavier_uniform"};
  m.preprocessing.task = "classification";
  m.preprocessing.input = "table";
  m.preprocessing.class_names = {"a", "b", "c"};
  m.preprocessing.feature_names = {"w", "x", "y", "z"};
  m.preprocessing.target = "label";
  m.preprocessing.mean = bp::tensor({1.0, 2.0, 3.0, 4.0});
  m.preprocessing.std = bp::tensor({0.5, 1.0, 2.0, 4.0});
  m.state = bp::io::build_network(m.architecture, gen)->state_dict();
  m.training_json = R"({"epochs_run": 3})";
  m.config_toml = "[train]\nepochs = 3\n";
  return m;
}

template <class F>
std::string file_error(F&& f) {
  try {
    f();
  } catch (const bp::FileError& e) {
    return e.what();
  }
  return "(no FileError)";
}

}  // namespace

TEST(ModelFile, BuildNetworkNamesAndShapes) {
  bp::Generator gen(3);
  bp::io::Architecture a{.inputs = 784, .hidden = {256, 128}, .outputs = 10, .dropout = 0.2};
  auto net = bp::io::build_network(a, gen);
  const auto names = net->named_parameters();
  ASSERT_EQ(names.size(), 6u);
  EXPECT_EQ(names[0].first, "0.weight");
  EXPECT_EQ(names[2].first, "3.weight");  // Linear, ReLU, Dropout, Linear, ...
  EXPECT_EQ(names[4].first, "6.weight");
  EXPECT_EQ(names[4].second.shape(), (bp::Shape{10, 128}));
  EXPECT_EQ(net->num_parameters(), 784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10);
  EXPECT_THROW(bp::io::build_network({.inputs = 4, .outputs = 2, .activation = "swish"}, gen),
               bp::ConfigError);
  EXPECT_THROW(bp::io::build_network({.inputs = 4, .hidden = {0}, .outputs = 2}, gen), bp::ConfigError);
}

TEST(ModelFile, SaveLoadRoundTripGivesTheSameOutputs) {
  clitest::Scratch s;
  bp::Generator gen(11);
  const bp::io::ModelFile m = small_model(gen);
  bp::io::save_model(s.path("m.safetensors"), m);
  const bp::io::ModelFile back = bp::io::load_model(s.path("m.safetensors"));
  EXPECT_EQ(back.architecture.hidden, m.architecture.hidden);
  EXPECT_EQ(back.architecture.activation, "tanh");
  EXPECT_TRUE(back.architecture.batchnorm);
  EXPECT_EQ(back.architecture.dropout, 0.25);
  EXPECT_EQ(back.preprocessing.class_names, m.preprocessing.class_names);
  EXPECT_EQ(back.preprocessing.feature_names, m.preprocessing.feature_names);
  EXPECT_EQ(back.preprocessing.target, "label");
  EXPECT_EQ(back.config_toml, m.config_toml);
  EXPECT_THAT(back.training_json, HasSubstr("\"epochs_run\":3"));

  bp::Generator data(5);
  const bp::Tensor x = bp::randn({7, 4}, data, bp::f32, 2.0, 3.0);
  bp::io::ModelFile original = m;
  auto a = bp::io::load_network(original, "original");
  auto b = bp::io::load_network(back, "back");
  const bp::Tensor ya = bp::train::predict(*a, m.preprocessing.apply(x));
  const bp::Tensor yb = bp::train::predict(*b, back.preprocessing.apply(x));
  EXPECT_EQ(bp::max_abs_diff(ya, yb), 0.0);
  // The stored standardisation is applied: (x - mean) / std.
  const bp::Tensor z = back.preprocessing.apply(x);
  EXPECT_FLOAT_EQ(static_cast<float>(z.at({0, 3})), static_cast<float>((x.at({0, 3}) - 4.0) / 4.0));
}

TEST(ModelFile, TensorsAreStoredUnderModuleNames) {
  clitest::Scratch s;
  bp::Generator gen(1);
  bp::io::save_model(s.path("m.safetensors"), small_model(gen));
  const bp::io::NamedTensors f = bp::io::load_safetensors(s.path("m.safetensors"));
  for (const char* name :
       {"0.weight", "0.bias", "1.weight", "1.running_mean", "1.running_var", "1.num_batches_tracked",
        "4.weight", "8.weight", "8.bias", "preprocess.mean", "preprocess.std"})
    EXPECT_TRUE(f.contains(name)) << name;
  EXPECT_EQ(f.metadata.at("format"), bp::io::kModelFormat);
  EXPECT_THAT(f.metadata.at("architecture"), HasSubstr("\"hidden\":[5,3]"));
  EXPECT_THAT(f.metadata.at("preprocessing"), HasSubstr("\"class_names\":[\"a\",\"b\",\"c\"]"));
}

TEST(ModelFile, ForeignSafetensorsFileIsRejectedWithItsName) {
  clitest::Scratch s;
  bp::io::save_safetensors(s.path("foreign.safetensors"), {.tensors = {{"w", bp::ones({2, 2})}}});
  const std::string e = file_error([&] { bp::io::load_model(s.path("foreign.safetensors")); });
  EXPECT_THAT(e, HasSubstr("foreign.safetensors"));
  EXPECT_THAT(e, HasSubstr("not a backprop model"));
}

TEST(ModelFile, BrokenMetadataNamesTheKey) {
  clitest::Scratch s;
  bp::Generator gen(1);
  bp::io::NamedTensors f = bp::io::to_named(small_model(gen, false));
  f.metadata["architecture"] = "{\"inputs\": 4}";
  bp::io::save_safetensors(s.path("a.safetensors"), f);
  EXPECT_THAT(file_error([&] { bp::io::load_model(s.path("a.safetensors")); }),
              HasSubstr("__metadata__ 'architecture' has no field \"hidden\""));
  f.metadata["architecture"] = "[1, 2";
  bp::io::save_safetensors(s.path("b.safetensors"), f);
  EXPECT_THAT(file_error([&] { bp::io::load_model(s.path("b.safetensors")); }),
              HasSubstr("__metadata__ 'architecture' is not a JSON object"));
}

TEST(ModelFile, TensorsThatDoNotFitTheArchitectureAreAFileError) {
  bp::Generator gen(1);
  bp::io::ModelFile m = small_model(gen, false);
  m.state.erase("3.bias");
  const std::string e = file_error([&] { bp::io::load_network(m, "m.safetensors"); });
  EXPECT_THAT(e, HasSubstr("m.safetensors"));
  EXPECT_THAT(e, HasSubstr("3.bias"));
}

TEST(Checkpoint, RoundTripRestoresOptimiserAndGeneratorsBitForBit) {
  clitest::Scratch s;
  bp::Generator gen(21);
  bp::io::ModelFile m = small_model(gen, false);
  auto net = bp::io::build_network(m.architecture, gen);
  bp::optim::Adam opt(net->parameters(), {.lr = 0.01});
  // One step so that the optimiser has state, and draw from the dropout generators.
  net->train();
  const bp::Tensor x = bp::randn({6, 4}, gen);
  net->forward(x).sum().backward();
  opt.step();
  bp::io::Checkpoint c{.model = m,
                       .trainer = {.model = net->state_dict(),
                                   .optimizer = opt.state(),
                                   .data_seed = ~0ull - 5,
                                   .epoch = 7,
                                   .step = 123}};
  c.trainer.generators = bp::io::module_generators(*net);
  c.trainer.scheduler_steps = 7;
  c.trainer.early_stopping.best_val_loss = 0.125;
  c.trainer.early_stopping.best_epoch = 6;
  ASSERT_EQ(c.trainer.generators.size(), 2u);  // two Dropout layers
  const std::string path = bp::io::write_checkpoint(s.path("checkpoints"), c);
  EXPECT_EQ(clitest::slurp(s.path("checkpoints/latest")), "epoch-0007.safetensors\n");

  const bp::io::Checkpoint back = bp::io::load_checkpoint(bp::io::resolve_checkpoint(s.dir().string()));
  EXPECT_EQ(back.trainer.epoch, 7);
  EXPECT_EQ(back.trainer.step, 123);
  EXPECT_EQ(back.trainer.data_seed, ~0ull - 5);
  EXPECT_EQ(back.trainer.scheduler_steps, 7);
  EXPECT_EQ(back.trainer.early_stopping.best_val_loss, 0.125);
  EXPECT_EQ(back.trainer.early_stopping.best_epoch, 6);
  ASSERT_EQ(back.trainer.optimizer.size(), c.trainer.optimizer.size());
  for (const auto& [k, t] : c.trainer.optimizer)
    EXPECT_EQ(bp::max_abs_diff(back.trainer.optimizer.at(k), t), 0.0) << k;

  // A fresh network restored from the checkpoint draws the same dropout masks as the original.
  bp::Generator other(99);
  auto net2 = bp::io::build_network(m.architecture, other);
  net2->load_state_dict(back.model.state);
  bp::io::restore_module_generators(*net2, back.trainer.generators);
  net->train();
  net2->train();
  EXPECT_EQ(bp::max_abs_diff(net->forward(x), net2->forward(x)), 0.0);
  // ...and the model part loads as a model.
  EXPECT_EQ(bp::io::load_model(path).architecture.hidden, m.architecture.hidden);
}

TEST(Checkpoint, ResolveAndErrors) {
  clitest::Scratch s;
  EXPECT_THAT(file_error([&] { bp::io::resolve_checkpoint(s.dir().string()); }),
              HasSubstr("no checkpoint found"));
  EXPECT_THAT(file_error([&] { bp::io::resolve_checkpoint(s.path("nope")); }),
              HasSubstr("no such checkpoint file or run directory"));
  fs::create_directories(s.path("checkpoints"));
  clitest::write(s.path("checkpoints/latest"), "epoch-0003.safetensors\n");
  EXPECT_THAT(file_error([&] { bp::io::resolve_checkpoint(s.dir().string()); }),
              HasSubstr("names epoch-0003.safetensors, which does not exist"));
  bp::Generator gen(1);
  bp::io::save_model(s.path("model.safetensors"), small_model(gen));
  EXPECT_THAT(file_error([&] { bp::io::load_checkpoint(s.path("model.safetensors")); }),
              HasSubstr("is a model, not a checkpoint"));
}

TEST(Checkpoint, KeepsOnlyTheNewest) {
  clitest::Scratch s;
  bp::Generator gen(1);
  bp::io::Checkpoint c{.model = small_model(gen, false)};
  c.trainer.model = c.model.state;
  for (int e = 1; e <= 5; ++e) {
    c.trainer.epoch = e;
    bp::io::write_checkpoint(s.path("ck"), c, 2);
  }
  EXPECT_FALSE(fs::exists(s.path("ck/epoch-0003.safetensors")));
  EXPECT_TRUE(fs::exists(s.path("ck/epoch-0004.safetensors")));
  EXPECT_TRUE(fs::exists(s.path("ck/epoch-0005.safetensors")));
  EXPECT_EQ(bp::io::resolve_checkpoint(s.path("ck")), s.path("ck/epoch-0005.safetensors"));
}

TEST(Metrics, WriteReadTruncate) {
  clitest::Scratch s;
  const std::string path = s.path("metrics.jsonl");
  {
    bp::io::MetricsWriter w(path, true);
    for (int e = 1; e <= 3; ++e) {
      w.grad_flow({.epoch = e,
                   .step = 10 * e,
                   .layers = {{.name = "0.weight", .grad_norm = 0.5 / e, .activation = "relu"}}});
      w.epoch({.epoch = e, .train_loss = 1.0 / e, .lr = 0.1, .updates = 10});
    }
    w.test(
        {.loss = 0.3,
         .accuracy = 0.9,
         .examples = 4,
         .class_names = {"x", "y"},
         .per_class_accuracy = {1.0, bp::io::kMissing},
         .confusion = {{2, 0}, {2, 0}},
         .misclassified = {
             {.index = 2, .true_class = 1, .predicted = 0, .pixels = {0, 0.5, 1, 0.25}, .shape = {2, 2}}}});
  }
  const bp::io::Metrics m = bp::io::read_metrics(path);
  ASSERT_EQ(m.epochs.size(), 3u);
  EXPECT_EQ(m.epochs[1].train_loss, 0.5);
  EXPECT_TRUE(std::isnan(m.epochs[1].val_loss));  // written as null
  ASSERT_EQ(m.grad_flow.size(), 3u);
  EXPECT_EQ(m.grad_flow[2].step, 30);
  EXPECT_EQ(m.grad_flow[2].layers[0].activation, "relu");
  ASSERT_TRUE(m.test.has_value());
  EXPECT_EQ(m.test->confusion[1][0], 2);
  EXPECT_TRUE(std::isnan(m.test->per_class_accuracy[1]));
  ASSERT_EQ(m.test->misclassified.size(), 1u);
  EXPECT_EQ(m.test->misclassified[0].pixels[1], 0.5);
  EXPECT_THAT(clitest::slurp(path), HasSubstr("\"val_loss\":null"));

  // A crash mid-line leaves a partial last line: readers skip it; truncation drops it too.
  { std::ofstream(path, std::ios::app) << "{\"type\":\"epoch\",\"epo"; }
  EXPECT_EQ(bp::io::read_metrics(path).epochs.size(), 3u);
  bp::io::truncate_metrics(path, 2);
  const bp::io::Metrics t = bp::io::read_metrics(path);
  EXPECT_EQ(t.epochs.size(), 2u);
  EXPECT_EQ(t.grad_flow.size(), 2u);
  EXPECT_FALSE(t.test.has_value());
}

TEST(Metrics, BadLineNamesFileAndLine) {
  clitest::Scratch s;
  clitest::write(s.path("m.jsonl"),
                 "{\"type\":\"epoch\",\"epoch\":1}\nnot json\n{\"type\":\"epoch\",\"epoch\":2}\n");
  EXPECT_THAT(file_error([&] { bp::io::read_metrics(s.path("m.jsonl")); }),
              HasSubstr("m.jsonl:2: expected a JSON object"));
  clitest::write(s.path("n.jsonl"), "{\"type\":\"epoch\",\"epoch\":\"one\"}\n");
  EXPECT_THAT(file_error([&] { bp::io::read_metrics(s.path("n.jsonl")); }),
              HasSubstr("n.jsonl:1: a \"epoch\" record: field \"epoch\" must be an integer"));
}
