// io::export_model_file: a model file exported as it was saved, and the files it refuses. io::is_stream: which
// outputs are written in place.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <backprop/backprop.hpp>
#include <backprop/io/checkpoint.hpp>
#include <backprop/io/model_file.hpp>
#include <backprop/io/onnx.hpp>
#include <filesystem>

#include "io/io_test_util.hpp"

namespace bp = backprop;
namespace io = backprop::io;
using iotest::ScratchDir;
using ::testing::HasSubstr;

namespace {

io::ModelFile classifier() {
  bp::Generator gen(1);
  io::ModelFile m{.architecture = {.inputs = 4, .hidden = {5}, .outputs = 3}};
  m.state = io::build_network(m.architecture, gen)->state_dict();
  m.preprocessing.class_names = {"a", "b", "c"};
  m.preprocessing.mean = bp::from_vector(std::vector<float>{1, 2, 3, 4});
  m.preprocessing.std = bp::from_vector(std::vector<float>{1, 1, 2, 2});
  m.input_shape = {4};
  return m;
}

}  // namespace

TEST(ExportModelFile, WritesTheNetworkWithItsPreprocessing) {
  ScratchDir dir;
  const io::ModelFile m = classifier();
  io::save_model(dir.file("m.safetensors"), m);
  const io::ModelFile back = io::export_model_file(dir.file("m.safetensors"), dir.file("m.onnx"));
  EXPECT_EQ(back.input_shape, (std::vector<std::int64_t>{4}));
  auto net = io::load_network(m);
  EXPECT_EQ(iotest::read_bytes(dir.file("m.onnx")),
            io::to_onnx(*net, {4}, {.preprocessing = m.preprocessing}));
}

TEST(ExportModelFile, RefusesACheckpointAFileWithoutInputShapeAndAMissingFile) {
  ScratchDir dir;
  io::ModelFile m = classifier();
  bp::Generator gen(1);
  auto net = io::build_network(m.architecture, gen);
  bp::optim::SGD opt(net->parameters(), {.lr = 0.1});
  bp::loss::CrossEntropy loss;
  bp::train::Trainer trainer(*net, loss, opt);
  io::save_checkpoint(dir.file("ck.safetensors"), {.model = m, .trainer = trainer.state()});
  try {
    io::export_model_file(dir.file("ck.safetensors"), dir.file("ck.onnx"));
    ADD_FAILURE() << "expected a ConfigError";
  } catch (const bp::ConfigError& e) {
    EXPECT_THAT(e.what(), HasSubstr("ck.safetensors: is a checkpoint (training state), not a model"));
  }
  EXPECT_FALSE(std::filesystem::exists(dir.file("ck.onnx")));

  io::save_model(dir.file("shapeless.safetensors"), *net, {.preprocessing = m.preprocessing});  // no shape
  iotest::expect_file_error(
      [&] { io::export_model_file(dir.file("shapeless.safetensors"), dir.file("s.onnx")); },
      {"shapeless.safetensors", "does not record its input shape"});
  iotest::expect_file_error([&] { io::export_model_file(dir.file("none.safetensors"), dir.file("n.onnx")); },
                            {"none.safetensors: no such file (expected a model file)"});
  EXPECT_FALSE(std::filesystem::exists(dir.file("s.onnx")));
}

TEST(IsStream, StandardOutputFifosAndDevicesButNotFiles) {
  ScratchDir dir;
  EXPECT_TRUE(io::is_stream("-"));
  EXPECT_TRUE(io::is_stream("/dev/null"));
  ASSERT_EQ(::mkfifo(dir.file("fifo").c_str(), 0600), 0);
  EXPECT_TRUE(io::is_stream(dir.file("fifo")));
  std::filesystem::create_symlink(dir.file("fifo"), dir.file("link"));
  EXPECT_TRUE(io::is_stream(dir.file("link")));  // through the link
  iotest::write_bytes(dir.file("plain.txt"), "text");
  EXPECT_FALSE(io::is_stream(dir.file("plain.txt")));
  EXPECT_FALSE(io::is_stream(dir.file("missing.txt")));
  EXPECT_FALSE(io::is_stream(dir.path().string()));  // a directory
}
