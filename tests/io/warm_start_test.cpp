// Warm starts (io::init_from) and the resume check of a rebuilt model (io::check_same_model).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/io/warm_start.hpp>
#include <backprop/ops.hpp>

#include "io/io_test_util.hpp"

namespace bp = backprop;
namespace io = backprop::io;
using iotest::same_bits;
using iotest::ScratchDir;
using ::testing::HasSubstr;
using ::testing::StartsWith;

namespace {

const io::Architecture kArch{.inputs = 4, .hidden = {16}, .outputs = 3};

// A model of `arch` with weights drawn from `seed`, trained on the classes a, b, c.
io::ModelFile saved_model(const io::Architecture& arch, std::uint64_t seed) {
  bp::Generator gen(seed);
  io::ModelFile m{.architecture = arch};
  m.preprocessing.class_names = {"a", "b", "c"};
  m.state = io::build_network(arch, gen)->state_dict();
  return m;
}

template <class E, class F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an exception";
  return {};
}

// True when every tensor of `net` has the bits of the same-named tensor in `state`.
bool holds(bp::nn::Module& net, const std::map<std::string, bp::Tensor>& state) {
  for (const auto& [name, t] : net.state_dict())
    if (!same_bits(t, state.at(name))) return false;
  return true;
}

}  // namespace

TEST(ArchitectureText, ListsTheLayerSizes) {
  EXPECT_EQ(io::describe(io::Architecture{.inputs = 784, .hidden = {256, 128}, .outputs = 10}),
            "784-256-128-10");
  EXPECT_EQ(io::describe(io::Architecture{.inputs = 2, .hidden = {}, .outputs = 1}), "2-1");
}

TEST(InitFrom, LoadsTheSavedWeights) {
  ScratchDir dir;
  const io::ModelFile saved = saved_model(kArch, 1);
  io::save_model(dir.file("a.safetensors"), saved);
  bp::Generator gen(2);
  auto net = io::build_network(kArch, gen);
  ASSERT_FALSE(holds(*net, saved.state));  // another seed: other weights
  io::init_from(*net, dir.file("a.safetensors"),
                {.architecture = kArch, .preprocessing = saved.preprocessing});
  EXPECT_TRUE(holds(*net, saved.state));
}

TEST(InitFrom, RefusesAnotherNetworkAndLeavesTheWeights) {
  ScratchDir dir;
  io::save_model(dir.file("a.safetensors"), saved_model(kArch, 1));
  const io::Architecture wider{.inputs = 4, .hidden = {32}, .outputs = 3};
  bp::Generator gen(2);
  auto net = io::build_network(wider, gen);
  const auto before = net->state_dict();
  std::map<std::string, bp::Tensor> copy;
  for (const auto& [name, t] : before) copy[name] = t.clone();
  const std::string msg = error_of<bp::ConfigError>(
      [&] { io::init_from(*net, dir.file("a.safetensors"), {.architecture = wider}); });
  EXPECT_THAT(msg, HasSubstr("--init-from " + dir.file("a.safetensors") +
                             ": the model's network is 4-16-3 but this run builds 4-32-3 (set --layers"));
  EXPECT_TRUE(holds(*net, copy));
  // A layer list (inputs 0) is not an MLP.
  EXPECT_THAT(error_of<bp::ConfigError>([&] { io::init_from(*net, dir.file("a.safetensors"), {}); }),
              HasSubstr("the model's network is an MLP but this run builds a layer list (--arch)"));
}

TEST(InitFrom, RefusesOtherClassesAndAMissingFile) {
  ScratchDir dir;
  io::save_model(dir.file("a.safetensors"), saved_model(kArch, 1));
  bp::Generator gen(2);
  auto net = io::build_network(kArch, gen);
  io::ModelFile other{.architecture = kArch};
  other.preprocessing.class_names = {"a", "b", "d"};
  EXPECT_THAT(error_of<bp::ConfigError>([&] { io::init_from(*net, dir.file("a.safetensors"), other); }),
              HasSubstr("trained on other classes than this run's data"));
  EXPECT_THAT(error_of<bp::FileError>([&] { io::init_from(*net, dir.file("none.safetensors"), other); }),
              StartsWith("--init-from: "));
}

TEST(CheckSameModel, AcceptsTheSameModelAndNamesWhatChanged) {
  io::ModelFile saved = saved_model(kArch, 1);
  saved.preprocessing.mean = bp::from_vector(std::vector<float>{1, 2, 3, 4}, {4});
  saved.preprocessing.std = bp::from_vector(std::vector<float>{1, 1, 1, 1}, {4});
  io::ModelFile now = saved;
  EXPECT_NO_THROW(io::check_same_model(saved, now, "ck"));

  now.architecture.outputs = 4;
  EXPECT_THAT(error_of<bp::FileError>([&] { io::check_same_model(saved, now, "ck"); }),
              HasSubstr("ck: the checkpoint's network is 4-16-3 but the data now gives 4-16-4"));
  now = saved;
  now.preprocessing.class_names = {"a", "b", "x"};
  EXPECT_THAT(error_of<bp::FileError>([&] { io::check_same_model(saved, now, "ck"); }),
              HasSubstr("class labels of the training data changed"));
  now = saved;
  now.preprocessing.mean = bp::from_vector(std::vector<float>{1, 2, 3, 5}, {4});
  EXPECT_THAT(error_of<bp::FileError>([&] { io::check_same_model(saved, now, "ck"); }),
              HasSubstr("standardisation statistics of the training data changed"));
}
