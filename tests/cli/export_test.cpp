// `backprop export MODEL --onnx OUT.onnx`: the ONNX model of a trained model predicts in ONNX Runtime what
// `backprop predict` prints for the same raw images (tests/io/onnx_check.py runs it); bad input is refused
// with its reason, and nothing is written.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/io/model_file.hpp>
#include <backprop/nn/reduce.hpp>
#include <nlohmann/json.hpp>

#include "cli_test_util.hpp"
#include "util/require.hpp"

using clitest::quote;
using clitest::run;
using clitest::Scratch;
using ::testing::HasSubstr;

namespace {

bool have_onnxruntime() {
  return std::system("/usr/bin/python3 -c 'import onnx, onnxruntime, numpy' >/dev/null 2>&1") == 0;
}

std::vector<nlohmann::json> json_lines(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(nlohmann::json::parse(l));
  return out;
}

// A model trained on a small table, with a checkpoint beside it.
std::string train_table_model(const Scratch& s) {
  clitest::write(s.path("train.csv"), clitest::blobs_csv(4, 30));
  const std::string out = s.path("run");
  const auto r = run(s, "train --quiet --data " + s.path("train.csv") +
                            " --layers 6 --epochs 2 --batch-size 10 --checkpoint-every 1 --out " + out);
  EXPECT_EQ(r.code, 0) << r.err;
  return out;
}

}  // namespace

TEST(Export, FashionModelPredictsTheSameInOnnxRuntime) {
  REQUIRE_INSTALLED(clitest::have_fashion(), "dataset-fashion-mnist",
                    std::string("Fashion-MNIST under ") + clitest::kFashionDir);
  REQUIRE_INSTALLED(have_onnxruntime(),
                    "python3-onnx, and onnxruntime from pip: /usr/bin/python3 -m pip install "
                    "--break-system-packages --no-deps onnxruntime==1.16.3 (scripts/install-deps does both)",
                    "/usr/bin/python3 with onnx and onnxruntime");
  Scratch s;
  const std::string out = s.path("run");
  const auto t =
      run(s,
          "train --quiet --epochs 1 --limit-train 1000 --limit-test 100 --layers 32,16 --batchnorm "
          "--dropconnect 0.2 --dropout 0.1 --out " +
              out);
  ASSERT_EQ(t.code, 0) << t.err;
  const auto e = run(s, "export " + out + "/model.safetensors --onnx " + s.path("model.onnx"));
  ASSERT_EQ(e.code, 0) << e.err;
  EXPECT_THAT(e.out, HasSubstr("wrote " + s.path("model.onnx") + " (ONNX opset 17, input [batch, 784])"));

  const std::string images = std::string(clitest::kFashionDir) + "/t10k-images-idx3-ubyte.gz";
  const auto ours =
      run(s, "predict --json --limit 1000 --model " + out + "/model.safetensors --input " + images);
  ASSERT_EQ(ours.code, 0) << ours.err;
  const auto theirs = clitest::run_shell(
      s, "/usr/bin/python3 " + quote(std::string(BACKPROP_SOURCE_DIR) + "/tests/io/onnx_check.py") + " " +
             quote(s.path("model.onnx")) + " predict " + images + " 1000");
  ASSERT_EQ(theirs.code, 0) << theirs.err;
  const auto a = json_lines(ours.out);
  const auto b = json_lines(theirs.out);
  ASSERT_EQ(a.size(), 1000u);
  ASSERT_EQ(b.size(), a.size());
  double worst = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i]["class"], b[i]["class"]) << "row " << i;  // the class names come from the metadata
    const double d = std::abs(a[i]["probability"].get<double>() - b[i]["probability"].get<double>());
    worst = std::max(worst, d);
    EXPECT_LE(d, 1e-5) << "row " << i;
  }
  std::cout << "largest probability difference, predict vs ONNX Runtime: " << worst << "\n";
}

TEST(Export, ConvolutionalPresetsPredictTheSameInOnnxRuntime) {
  REQUIRE_INSTALLED(clitest::have_fashion(), "dataset-fashion-mnist",
                    std::string("Fashion-MNIST under ") + clitest::kFashionDir);
  REQUIRE_INSTALLED(have_onnxruntime(),
                    "python3-onnx, and onnxruntime from pip: /usr/bin/python3 -m pip install "
                    "--break-system-packages --no-deps onnxruntime==1.16.3 (scripts/install-deps does both)",
                    "/usr/bin/python3 with onnx and onnxruntime");
  const std::string images = std::string(clitest::kFashionDir) + "/t10k-images-idx3-ubyte.gz";
  for (const char* arch : {"lenet5", "cnn"}) {
    Scratch s;
    const std::string out = s.path("run");
    const auto t = run(s, std::string("train --quiet --epochs 1 --limit-train 600 --limit-test 100 --arch ") +
                              arch + " --out " + out);
    ASSERT_EQ(t.code, 0) << arch << ": " << t.err;
    const auto e = run(s, "export " + out + "/model.safetensors --onnx " + s.path("model.onnx"));
    ASSERT_EQ(e.code, 0) << arch << ": " << e.err;
    const auto ours =
        run(s, "predict --json --limit 500 --model " + out + "/model.safetensors --input " + images);
    ASSERT_EQ(ours.code, 0) << ours.err;
    const auto theirs = clitest::run_shell(
        s, "/usr/bin/python3 " + quote(std::string(BACKPROP_SOURCE_DIR) + "/tests/io/onnx_check.py") + " " +
               quote(s.path("model.onnx")) + " predict " + images + " 500");
    ASSERT_EQ(theirs.code, 0) << arch << ": " << theirs.err;
    const auto a = json_lines(ours.out);
    const auto b = json_lines(theirs.out);
    ASSERT_EQ(a.size(), 500u);
    ASSERT_EQ(b.size(), a.size());
    for (std::size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i]["class"], b[i]["class"]) << arch << " row " << i;
      EXPECT_NEAR(a[i]["probability"].get<double>(), b[i]["probability"].get<double>(), 1e-5)
          << arch << " row " << i;
    }
  }
}

TEST(Export, EmbeddingModelComputesTheSameInOnnxRuntime) {
  REQUIRE_INSTALLED(have_onnxruntime(),
                    "python3-onnx, and onnxruntime from pip: /usr/bin/python3 -m pip install "
                    "--break-system-packages --no-deps onnxruntime==1.16.3 (scripts/install-deps does both)",
                    "/usr/bin/python3 with onnx and onnxruntime");
  namespace bp = backprop;
  Scratch s;
  // A bag-of-tokens classifier saved from code (no preprocessing): documents of 12 token ids out of 40.
  bp::Generator gen(5);
  bp::nn::Sequential net{bp::nn::Embedding(40, 8, gen, {.padding_idx = 0}), bp::nn::Mean(1),
                         bp::nn::Linear(8, 3, gen)};
  net.eval();
  const bp::Tensor ids = (bp::rand({300, 12}, gen) * 40.0).to(bp::i64);  // truncated: 0..39
  bp::Tensor expected;
  {
    bp::NoGradGuard guard;
    expected = net(ids);
  }
  const std::string model = s.path("model.safetensors");
  bp::io::save_model(model, net, {.input_shape = {12}});

  const auto e = run(s, "export " + model + " --onnx " + s.path("model.onnx"));
  ASSERT_EQ(e.code, 0) << e.err;
  EXPECT_THAT(e.out, HasSubstr("(ONNX opset 17, input [batch, 12])"));
  bp::io::save_safetensors(s.path("data.safetensors"), {.tensors = {{"input", ids}, {"expected", expected}}});
  const auto check = clitest::run_shell(
      s, "/usr/bin/python3 " + quote(std::string(BACKPROP_SOURCE_DIR) + "/tests/io/onnx_check.py") + " " +
             quote(s.path("model.onnx")) + " compare " + quote(s.path("data.safetensors")));
  ASSERT_EQ(check.code, 0) << check.err;
  const nlohmann::json r = nlohmann::json::parse(check.out);
  EXPECT_EQ(r["rows"], 300);
  EXPECT_EQ(r["output_shape"], nlohmann::json({300, 3}));
  EXPECT_EQ(r["ops"], nlohmann::json({"Gather", "ReduceMean", "Gemm"}));
  EXPECT_EQ(r["input_type"], "INT64");
  EXPECT_EQ(r["input_shape"], nlohmann::json({"batch", 12}));
  EXPECT_LE(r["max_abs_diff"].get<double>(), 1e-5);
  EXPECT_LE(r["batch1_max_abs_diff"].get<double>(), 1e-5);
  EXPECT_EQ(r["batch1_rows"], 200);
}

TEST(Export, CheckpointIsRefused) {
  Scratch s;
  const std::string out = train_table_model(s);
  const auto r = run(s, "export " + out + "/checkpoints/epoch-0002.safetensors --onnx " + s.path("m.onnx"));
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("is a checkpoint (training state), not a model"));
  EXPECT_FALSE(clitest::fs::exists(s.path("m.onnx")));
}

TEST(Export, OutputFolderOrModelItselfIsRefused) {
  Scratch s;
  const std::string out = train_table_model(s);
  const std::string model = out + "/model.safetensors";
  const std::string before = clitest::slurp(model);
  clitest::fs::create_directory(s.path("folder"));
  auto r = run(s, "export " + model + " --onnx " + s.path("folder"));
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("--onnx"));
  EXPECT_THAT(r.err, HasSubstr("directory"));
  EXPECT_TRUE(clitest::fs::is_empty(s.path("folder")));

  r = run(s, "export " + model + " --onnx " + model);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("is also the MODEL"));
  // Another model is not replaced by an ONNX file unless --force.
  const std::string other = s.path("other.safetensors");
  clitest::write(other, before);
  r = run(s, "export " + model + " --onnx " + other);
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("--force"));
  EXPECT_EQ(clitest::slurp(other), before);
  r = run(s, "export --quiet --force " + model + " --onnx " + other);
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "");
  EXPECT_NE(clitest::slurp(other), before);
  EXPECT_EQ(clitest::slurp(model), before);
}

TEST(Export, MissingOrForeignModelIsADataError) {
  Scratch s;
  auto r = run(s, "export " + s.path("nothing.safetensors") + " --onnx " + s.path("m.onnx"));
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_THAT(r.err, HasSubstr("nothing.safetensors"));
  clitest::write(s.path("notes.txt"), "not a model\n");
  r = run(s, "export " + s.path("notes.txt") + " --onnx " + s.path("m.onnx"));
  EXPECT_EQ(r.code, 3) << r.err;
  EXPECT_FALSE(clitest::fs::exists(s.path("m.onnx")));
  r = run(s, "export " + s.path("notes.txt"));
  EXPECT_EQ(r.code, 2) << r.err;
  EXPECT_THAT(r.err, HasSubstr("--onnx"));
}

TEST(Export, HelpListsTheCommand) {
  Scratch s;
  const auto r = run(s, "--help");
  EXPECT_THAT(r.out, HasSubstr("export"));
  const auto h = run(s, "help export");
  EXPECT_EQ(h.code, 0);
  EXPECT_THAT(h.out, HasSubstr("--onnx"));
  const auto typo = run(s, "exprt");
  EXPECT_EQ(typo.code, 2);
  EXPECT_THAT(typo.err, HasSubstr("did you mean 'export'?"));
}
