// io::export_onnx: the exported models pass onnx.checker and compute in ONNX Runtime what backprop computes
// (tests/io/onnx_check.py runs them), on the Fashion-MNIST test set and with batches of 1 and 1000; the
// refusals leave nothing behind.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/io/model_file.hpp>
#include <backprop/io/onnx.hpp>
#include <backprop/nn/reduce.hpp>
#include <cstdlib>
#include <nlohmann/json.hpp>

#include "io_test_util.hpp"
#include "util/require.hpp"

namespace bp = backprop;
using iotest::ScratchDir;

namespace {

const std::string kTestImages = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz";

bool have_onnxruntime() {
  return std::system("/usr/bin/python3 -c 'import onnx, onnxruntime, numpy' >/dev/null 2>&1") == 0;
}
bool have_fashion() {
  return std::filesystem::exists(kTestImages);
}

#define REQUIRE_ONNXRUNTIME()                                                                   \
  REQUIRE_INSTALLED(                                                                            \
      have_onnxruntime(),                                                                       \
      "python3-onnx, and onnxruntime from pip: /usr/bin/python3 -m pip install "                \
      "--break-system-packages --no-deps onnxruntime==1.16.3 (scripts/install-deps does both)", \
      "/usr/bin/python3 with onnx and onnxruntime")

// The raw test images as `backprop predict` reads them: pixel values 0..255 as f32 [10000, 784].
bp::Tensor raw_test_images() {
  const bp::data::IdxArray a = bp::data::read_idx(kTestImages);
  std::vector<float> v(a.data.begin(), a.data.end());
  return bp::from_vector(v, {a.dims[0], a.dims[1] * a.dims[2]});
}

// What predict feeds the network: raw * pixel_scale (in double, as data::load_predict_inputs does), then
// apply().
bp::Tensor preprocess(const bp::io::Preprocessing& p, const bp::Tensor& raw) {
  std::vector<double> v = raw.to_vector();
  std::vector<float> f(v.size());
  for (std::size_t i = 0; i < v.size(); ++i)
    f[i] = static_cast<float>(p.input == "image" ? v[i] * p.pixel_scale : v[i]);
  return p.apply(bp::from_vector(f, raw.shape()));
}

// Exports `net`, runs it in ONNX Runtime on `raw` and returns onnx_check.py's report.
nlohmann::json run_in_onnxruntime(bp::nn::Module& net, const bp::io::Preprocessing& pre,
                                  const bp::Tensor& raw, const ScratchDir& dir) {
  net.eval();
  bp::Tensor expected;
  {
    bp::NoGradGuard guard;
    expected = net.forward(preprocess(pre, raw));
  }
  const std::string model = dir.file("model.onnx");
  bp::io::export_onnx(net, model, {raw.size(1)}, {.preprocessing = pre});
  bp::io::save_safetensors(dir.file("data.safetensors"),
                           {.tensors = {{"input", raw}, {"expected", expected}}});
  const std::string cmd = "/usr/bin/python3 " + std::string(BACKPROP_SOURCE_DIR) +
                          "/tests/io/onnx_check.py " + model + " compare " + dir.file("data.safetensors") +
                          " >" + dir.file("out.json") + " 2>" + dir.file("err.txt");
  const int rc = std::system(cmd.c_str());
  EXPECT_EQ(rc, 0) << iotest::read_bytes(dir.file("err.txt"));
  if (rc != 0) return {};
  const nlohmann::json report = nlohmann::json::parse(iotest::read_bytes(dir.file("out.json")));
  std::cout << "onnxruntime vs backprop: " << report.dump() << "\n";
  return report;
}

void expect_equal_outputs(const nlohmann::json& r, std::int64_t rows, std::int64_t outputs) {
  ASSERT_FALSE(r.empty());
  EXPECT_EQ(r["rows"], rows);
  EXPECT_EQ(r["output_shape"], nlohmann::json({rows, outputs}));
  EXPECT_EQ(r["opset"], nlohmann::json({17}));
  EXPECT_EQ(r["input_shape"], nlohmann::json({"batch", 784}));
  // f32 throughout: equal up to the rounding of a different summation order.
  EXPECT_LE(r["max_rel_diff"].get<double>(), 1e-5);
  EXPECT_LE(r["batch1_max_rel_diff"].get<double>(), 1e-5);
  EXPECT_EQ(r["batch1_rows"], 200);
}

bp::io::Preprocessing fashion_preprocessing() {
  return {.input = "image",
          .pixel_scale = 1.0 / 255.0,
          .image_shape = {28, 28},
          .class_names = bp::data::FashionMNIST::class_names()};
}

// Batches of training-mode forward passes, so that BatchNorm1d's running statistics are far from 0 and 1.
void warm_up_statistics(bp::nn::Module& net, const bp::Tensor& x) {
  bp::NoGradGuard guard;
  net.train();
  for (std::int64_t i = 0; i < 10; ++i) net.forward(bp::narrow(x, 0, i * 100, 100));
}

// Exports `net` for examples of `input_shape`, runs it in ONNX Runtime on `x` and returns onnx_check.py's
// report of the differences to backprop's outputs (in eval mode).
nlohmann::json compare_in_onnxruntime(bp::nn::Module& net, const std::vector<std::int64_t>& input_shape,
                                      const bp::Tensor& x, const ScratchDir& dir,
                                      const bp::io::OnnxOptions& options = {}) {
  net.eval();
  bp::Tensor expected;
  {
    bp::NoGradGuard guard;
    expected = net.forward(x);
  }
  const std::string model = dir.file("model.onnx");
  bp::io::export_onnx(net, model, input_shape, options);
  bp::io::save_safetensors(dir.file("data.safetensors"), {.tensors = {{"input", x}, {"expected", expected}}});
  const std::string cmd = "/usr/bin/python3 " + std::string(BACKPROP_SOURCE_DIR) +
                          "/tests/io/onnx_check.py " + model + " compare " + dir.file("data.safetensors") +
                          " >" + dir.file("out.json") + " 2>" + dir.file("err.txt");
  const int rc = std::system(cmd.c_str());
  EXPECT_EQ(rc, 0) << iotest::read_bytes(dir.file("err.txt"));
  if (rc != 0) return {};
  const nlohmann::json report = nlohmann::json::parse(iotest::read_bytes(dir.file("out.json")));
  std::cout << "onnxruntime vs backprop: " << report.dump() << "\n";
  return report;
}

// Images as token sequences: each pixel 0..255 quantised to one of 16 levels (pixel / 16), i64 [N, 784].
bp::Tensor pixel_tokens(const std::string& idx_path, std::int64_t limit = 0) {
  const bp::data::IdxArray a = bp::data::read_idx(idx_path, limit);
  std::vector<double> v(a.data.size());
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = a.data[i] / 16;
  return bp::from_vector(v, {a.dims[0], a.dims[1] * a.dims[2]}, bp::i64);
}

}  // namespace

TEST(OnnxExport, DefaultMlpMatchesOnnxRuntimeOnFashionMnist) {
  REQUIRE_INSTALLED(have_fashion(), "dataset-fashion-mnist", kTestImages);
  REQUIRE_ONNXRUNTIME();
  ScratchDir dir;
  bp::Generator gen(1);
  const auto net = bp::io::build_network({.inputs = 784, .hidden = {256, 128}, .outputs = 10}, gen);
  const nlohmann::json r = run_in_onnxruntime(*net, fashion_preprocessing(), raw_test_images(), dir);
  expect_equal_outputs(r, 10000, 10);
  EXPECT_EQ(r["ops"], nlohmann::json({"Mul", "Gemm", "Relu", "Gemm", "Relu", "Gemm"}));
  EXPECT_EQ(nlohmann::json::parse(r["metadata"]["class_names"].get<std::string>()),
            nlohmann::json(bp::data::FashionMNIST::class_names()));
}

TEST(OnnxExport, BatchNormDropConnectMlpMatchesOnnxRuntime) {
  REQUIRE_INSTALLED(have_fashion(), "dataset-fashion-mnist", kTestImages);
  REQUIRE_ONNXRUNTIME();
  ScratchDir dir;
  bp::Generator gen(2);
  const auto net = bp::io::build_network({.inputs = 784,
                                          .hidden = {128, 64},
                                          .outputs = 10,
                                          .activation = "leaky_relu",
                                          .batchnorm = true,
                                          .dropout = 0.2,
                                          .dropconnect = 0.3},
                                         gen);
  const bp::io::Preprocessing pre = fashion_preprocessing();
  const bp::Tensor raw = raw_test_images();
  warm_up_statistics(*net, preprocess(pre, raw));
  const nlohmann::json r = run_in_onnxruntime(*net, pre, raw, dir);
  expect_equal_outputs(r, 10000, 10);
  EXPECT_EQ(r["ops"], nlohmann::json({"Mul", "Gemm", "BatchNormalization", "LeakyRelu", "Gemm",
                                      "BatchNormalization", "LeakyRelu", "Gemm"}));
}

TEST(OnnxExport, ResidualLayerNormMlpWithStandardisationMatchesOnnxRuntime) {
  REQUIRE_INSTALLED(have_fashion(), "dataset-fashion-mnist", kTestImages);
  REQUIRE_ONNXRUNTIME();
  ScratchDir dir;
  bp::Generator gen(3);
  // Pixels standardised per column (a table model's preprocessing), then two pre-norm residual blocks.
  const bp::Tensor raw = raw_test_images();
  const bp::data::Standardizer st = bp::data::Standardizer::fit(raw);
  const bp::io::Preprocessing pre{.input = "table", .mean = st.mean, .std = st.std};
  auto block = [&] {
    return bp::nn::Residual(bp::nn::Sequential{bp::nn::LayerNorm(64), bp::nn::Linear(64, 64, gen),
                                               bp::nn::Tanh(), bp::nn::Dropout(0.1, gen)});
  };
  bp::nn::Sequential net{bp::nn::Linear(784, 64, gen),
                         block(),
                         block(),
                         bp::nn::LayerNorm(64, {.eps = 1e-3}),
                         bp::nn::Linear(64, 10, gen),
                         bp::nn::LogSoftmax(1)};
  const nlohmann::json r = run_in_onnxruntime(net, pre, raw, dir);
  expect_equal_outputs(r, 10000, 10);
  EXPECT_EQ(r["ops"], nlohmann::json({"Sub", "Div", "Gemm", "LayerNormalization", "Gemm", "Tanh", "Add",
                                      "LayerNormalization", "Gemm", "Tanh", "Add", "LayerNormalization",
                                      "Gemm", "LogSoftmax"}));
}

TEST(OnnxExport, ShapeLayersAndActivationsMatchOnnxRuntime) {
  REQUIRE_ONNXRUNTIME();
  ScratchDir dir;
  bp::Generator gen(4);
  // Images [N, 1, 28, 28] in, every activation and both shape layers on the way.
  bp::nn::Sequential net{
      bp::nn::Flatten(),
      bp::nn::Linear(784, 32, gen, {.bias = false}),
      bp::nn::Sigmoid(),
      bp::nn::Unflatten(1, {4, 8}),
      bp::nn::LayerNorm({4, 8}, {.elementwise_affine = false}),
      bp::nn::Flatten(),
      bp::nn::Identity(),
      bp::nn::DropConnect(32, 16, 0.5, gen, {.bias = false, .activation = bp::nn::Nonlinearity::tanh}),
      bp::nn::BatchNorm1d(16, {.affine = false}),
      bp::nn::ReLU(),
      bp::nn::Linear(16, 5, gen),
      bp::nn::Softmax(-1)};
  net.eval();
  const bp::Tensor x = bp::rand({300, 1, 28, 28}, gen, bp::f32, 0.0, 255.0);
  bp::Tensor expected;
  {
    bp::NoGradGuard guard;
    expected = net.forward(x);
  }
  const std::string model = dir.file("shapes.onnx");
  bp::io::export_onnx(net, model, {1, 28, 28});
  bp::io::save_safetensors(dir.file("data.safetensors"), {.tensors = {{"input", x}, {"expected", expected}}});
  const std::string cmd = "/usr/bin/python3 " + std::string(BACKPROP_SOURCE_DIR) +
                          "/tests/io/onnx_check.py " + model + " compare " + dir.file("data.safetensors") +
                          " >" + dir.file("out.json") + " 2>" + dir.file("err.txt");
  ASSERT_EQ(std::system(cmd.c_str()), 0) << iotest::read_bytes(dir.file("err.txt"));
  const nlohmann::json r = nlohmann::json::parse(iotest::read_bytes(dir.file("out.json")));
  EXPECT_EQ(r["ops"],
            nlohmann::json({"Flatten", "Gemm", "Sigmoid", "Reshape", "LayerNormalization", "Flatten", "Gemm",
                            "Tanh", "BatchNormalization", "Relu", "Gemm", "Softmax"}));
  EXPECT_EQ(r["input_shape"], nlohmann::json({"batch", 1, 28, 28}));
  EXPECT_EQ(r["output_shape"], nlohmann::json({300, 5}));
  EXPECT_LE(r["max_abs_diff"].get<double>(), 1e-5);
  EXPECT_LE(r["batch1_max_abs_diff"].get<double>(), 1e-5);
}

TEST(OnnxExport, EmbeddingClassifierMatchesOnnxRuntimeOnFashionMnist) {
  REQUIRE_INSTALLED(have_fashion(), "dataset-fashion-mnist", kTestImages);
  REQUIRE_ONNXRUNTIME();
  ScratchDir dir;
  bp::Generator gen(9);
  // Each image a document of 784 pixel tokens (16 levels): Embedding -> mean over the tokens -> Linear. The
  // background (token 0) is the padding token: a zero vector, so the mean sums the object's pixels only.
  bp::nn::Sequential net{bp::nn::Embedding(16, 24, gen, {.padding_idx = 0}), bp::nn::Mean(1),
                         bp::nn::Linear(24, 10, gen)};
  // A few SGD steps on 1000 training images, so that the weights are not the initial ones.
  const bp::Tensor train = pixel_tokens("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", 1000);
  const bp::data::IdxArray labels =
      bp::data::read_idx("/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz", 1000);
  const bp::Tensor y = bp::from_vector(std::vector<double>(labels.data.begin(), labels.data.end()), {1000});
  const bp::Tensor initial = net[0]->parameters()[0].clone();
  bp::optim::SGD opt(net.parameters(), {.lr = 0.05});
  double first = 0, last = 0;
  for (int step = 0; step < 10; ++step) {
    opt.zero_grad();
    const bp::Tensor loss = bp::loss::CrossEntropy()(net(train), y);
    loss.backward();
    opt.step();
    (step == 0 ? first : last) = loss.item();
  }
  EXPECT_LT(last, first);
  std::cout << "cross-entropy over 10 steps: " << first << " -> " << last << "\n";
  EXPECT_FALSE(bp::allclose(net[0]->parameters()[0], initial));

  const nlohmann::json r = compare_in_onnxruntime(net, {784}, pixel_tokens(kTestImages), dir,
                                                  {.preprocessing = fashion_preprocessing()});
  ASSERT_FALSE(r.empty());
  EXPECT_EQ(r["rows"], 10000);
  EXPECT_EQ(r["output_shape"], nlohmann::json({10000, 10}));
  EXPECT_EQ(r["ops"], nlohmann::json({"Gather", "ReduceMean", "Gemm"}));  // no pixel scale for token ids
  EXPECT_EQ(r["input_type"], "INT64");
  EXPECT_EQ(r["input_shape"], nlohmann::json({"batch", 784}));
  EXPECT_EQ(nlohmann::json::parse(r["metadata"]["class_names"].get<std::string>()),
            nlohmann::json(bp::data::FashionMNIST::class_names()));
  EXPECT_LE(r["max_rel_diff"].get<double>(), 1e-5);
  EXPECT_LE(r["batch1_max_rel_diff"].get<double>(), 1e-5);
  EXPECT_EQ(r["batch1_rows"], 200);
}

TEST(OnnxExport, AttentionBlockMatchesOnnxRuntime) {
  REQUIRE_ONNXRUNTIME();
  ScratchDir dir;
  bp::Generator gen(10);
  // Sequences [N, 6, 16]: a transformer encoder block (self-attention with and without biases, LayerNorm,
  // a feed-forward Linear on 3-D input), mean over the sequence, a classifier.
  bp::nn::Sequential net{bp::nn::Residual(bp::nn::MultiheadAttention(16, 4, gen)),
                         bp::nn::LayerNorm(16),
                         bp::nn::Residual(bp::nn::Sequential{bp::nn::Linear(16, 32, gen), bp::nn::ReLU(),
                                                             bp::nn::Linear(32, 16, gen)}),
                         bp::nn::LayerNorm(16),
                         bp::nn::Residual(bp::nn::MultiheadAttention(16, 2, gen, {.bias = false})),
                         bp::nn::Mean(1),
                         bp::nn::Linear(16, 5, gen)};
  {
    bp::NoGradGuard guard;  // biases start at zero: random ones, so that they count
    for (auto& [name, t] : net.state_dict())
      if (name.find("bias") != std::string::npos) t.copy_(bp::randn(t.shape(), gen));
  }
  const bp::Tensor x = bp::randn({300, 6, 16}, gen);
  const nlohmann::json r = compare_in_onnxruntime(net, {6, 16}, x, dir);
  ASSERT_FALSE(r.empty());
  EXPECT_EQ(r["input_shape"], nlohmann::json({"batch", 6, 16}));
  EXPECT_EQ(r["input_type"], "FLOAT");
  EXPECT_EQ(r["output_shape"], nlohmann::json({300, 5}));
  std::map<std::string, int> ops;
  for (const auto& op : r["ops"]) ++ops[op.get<std::string>()];
  EXPECT_EQ(ops["Split"], 3);  // weights of both attention layers, biases of the first
  EXPECT_EQ(ops["Softmax"], 2);
  EXPECT_EQ(ops["MatMul"], 4);  // Q K^T and weights V, per attention layer
  EXPECT_EQ(ops["Gemm"], 2 * 4 + 3);
  EXPECT_EQ(ops["ReduceMean"], 1);
  EXPECT_LE(r["max_rel_diff"].get<double>(), 1e-5);
  EXPECT_LE(r["batch1_max_rel_diff"].get<double>(), 1e-5);
}

TEST(OnnxExport, EmbeddingAfterALayerAttentionSequenceFirstAndBatchMeanAreRefused) {
  bp::Generator gen(11);
  const auto message = [](bp::nn::Module& net, const std::vector<std::int64_t>& shape) {
    try {
      bp::io::to_onnx(net, shape);
    } catch (const bp::ValueError& e) {
      return std::string(e.what());
    }
    return std::string("no ValueError");
  };
  bp::nn::Sequential late{bp::nn::Identity(), bp::nn::Embedding(5, 3, gen)};
  EXPECT_THAT(message(late, {4}), testing::HasSubstr("the module at '1' (Embedding(5, 3)) reads token ids"));
  bp::nn::Sequential seq_first{bp::nn::MultiheadAttention(4, 2, gen, {.batch_first = false})};
  EXPECT_THAT(message(seq_first, {3, 4}), testing::HasSubstr("use batch_first = true"));
  bp::nn::Sequential batch_mean{bp::nn::Linear(4, 4, gen), bp::nn::Mean(0)};  // [2, 2, 4] -> [2, 4]
  EXPECT_THAT(message(batch_mean, {2, 4}), testing::HasSubstr("averages over the batch dimension"));
  // An Embedding that reads the input is exported, inside nested Sequentials too.
  bp::nn::Sequential nested{bp::nn::Sequential{bp::nn::Embedding(5, 3, gen)}, bp::nn::Mean(-2)};
  EXPECT_FALSE(bp::io::to_onnx(nested, {7}).empty());
}

// A module type without a row in the converter table.
struct Doubler : bp::nn::Module {
  bp::Tensor forward(const bp::Tensor& x) override { return bp::mul(x, 2.0); }
  std::string repr() const override { return "Doubler()"; }
};

TEST(OnnxExport, UnsupportedModuleIsNamedAndNothingIsWritten) {
  ScratchDir dir;
  bp::Generator gen(5);
  bp::nn::Sequential net{bp::nn::Linear(4, 3, gen), bp::nn::Residual(bp::nn::Sequential{Doubler()})};
  const std::string path = dir.file("out.onnx");
  iotest::write_bytes(path, "old bytes");
  try {
    bp::io::export_onnx(net, path, {4});
    FAIL() << "no error";
  } catch (const bp::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("the module at '1.block.0' (Doubler()) has no ONNX form"),
              std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("Linear"), std::string::npos) << e.what();
  }
  EXPECT_EQ(iotest::read_bytes(path), "old bytes");
  EXPECT_EQ(dir.entries(), std::vector<std::string>{"out.onnx"});
  EXPECT_TRUE(net.is_training());  // the mode is given back after a failed trace too
}

TEST(OnnxExport, RandomOrBatchMixingModulesAreRefused) {
  bp::Generator gen(6);
  bp::nn::Sequential gaussian{bp::nn::DropConnect(
      4, 3, 0.5, gen,
      {.inference = bp::nn::DropConnectInference::gaussian, .activation = bp::nn::Nonlinearity::relu})};
  EXPECT_THROW(
      {
        try {
          bp::io::to_onnx(gaussian, {4});
        } catch (const bp::ValueError& e) {
          EXPECT_NE(std::string(e.what()).find("gaussian inference"), std::string::npos) << e.what();
          throw;
        }
      },
      bp::ValueError);
  // Gaussian inference without an activation is exactly the mean network: exportable.
  bp::nn::Sequential linear_gaussian{
      bp::nn::DropConnect(4, 3, 0.5, gen, {.inference = bp::nn::DropConnectInference::gaussian})};
  EXPECT_FALSE(bp::io::to_onnx(linear_gaussian, {4}).empty());

  bp::nn::Sequential flatten_batch{bp::nn::Flatten(0)};
  EXPECT_THROW(
      {
        try {
          bp::io::to_onnx(flatten_batch, {4});
        } catch (const bp::ValueError& e) {
          EXPECT_NE(std::string(e.what()).find("its first dimension is not the batch"), std::string::npos)
              << e.what();
          throw;
        }
      },
      bp::ValueError);
}

TEST(OnnxExport, BadShapesAndOutputsAreRefused) {
  ScratchDir dir;
  bp::Generator gen(7);
  bp::nn::Sequential net{bp::nn::Linear(4, 3, gen)};
  EXPECT_THROW(bp::io::to_onnx(net, {}), bp::ValueError);
  EXPECT_THROW(bp::io::to_onnx(net, {0}), bp::ValueError);
  EXPECT_THROW(bp::io::to_onnx(net, {5}), bp::ShapeError);  // Linear(4, 3) refuses 5 features
  bp::io::Preprocessing pre{.input = "table", .mean = bp::zeros({5}), .std = bp::ones({5})};
  EXPECT_THROW(bp::io::to_onnx(net, {4}, {.preprocessing = pre}), bp::ValueError);
  // A directory as the output: FileError, nothing created inside it.
  std::filesystem::create_directory(dir.file("folder"));
  EXPECT_THROW(bp::io::export_onnx(net, dir.file("folder"), {4}), bp::FileError);
  EXPECT_TRUE(std::filesystem::is_empty(dir.file("folder")));
  // A safetensors model is not replaced by an ONNX file unless forced.
  bp::io::save_model(dir.file("m.safetensors"), net, {.input_shape = {4}});
  EXPECT_THROW(bp::io::export_onnx(net, dir.file("m.safetensors"), {4}), bp::FileError);
  bp::io::export_onnx(net, dir.file("m.safetensors"), {4}, {.force = true});
  EXPECT_EQ(iotest::read_bytes(dir.file("m.safetensors")), bp::io::to_onnx(net, {4}));
}

TEST(OnnxExport, SameNetworkGivesTheSameBytesAndKeepsItsMode) {
  bp::Generator gen(8);
  auto net = bp::io::build_network({.inputs = 6, .hidden = {5}, .outputs = 2, .batchnorm = true}, gen);
  net->train();
  const std::string a = bp::io::to_onnx(*net, {6});
  EXPECT_TRUE(net->is_training());
  net->eval();
  EXPECT_EQ(bp::io::to_onnx(*net, {6}), a);
  EXPECT_FALSE(net->is_training());
}
