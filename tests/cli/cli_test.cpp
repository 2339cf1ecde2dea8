// The `backprop` binary end to end: every command, bad flags (exit 2), bad files (exit 3), divergence (exit
// 4).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <backprop/config.hpp>
#include <backprop/data.hpp>
#include <backprop/io.hpp>
#include <backprop/io/metrics.hpp>
#include <backprop/io/model_file.hpp>
#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "cli_test_util.hpp"
#include "util/require.hpp"

using clitest::run;
using clitest::Scratch;
using ::testing::HasSubstr;
using ::testing::Not;
namespace fs = std::filesystem;
namespace bp = backprop;

namespace {

// A quick Fashion-MNIST run: 1000 training examples, a small network, one epoch, 500 test examples.
const std::string kData =
    "--limit-train 1000 --limit-test 500 --layers 32 --epochs 1 --batch-size 50 --threads 1 ";
const std::string kTiny = kData + "--optimizer momentum --lr 0.05 ";

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// The predicted class probabilities of the first `n` Fashion-MNIST test images under a saved model of dense
// layers (no batch norm), computed here in double precision from the file's tensors: pixels / 255, each
// hidden layer W x + b and its activation, the output layer, then softmax.
struct Prediction {
  std::vector<double> probabilities;
  std::size_t best = 0;
};

std::vector<Prediction> predict_by_hand(const std::string& model_path, std::int64_t n) {
  const bp::io::NamedTensors file = bp::io::load_safetensors(model_path);
  const auto arch = nlohmann::json::parse(file.metadata.at("architecture"));
  const auto pre = nlohmann::json::parse(file.metadata.at("preprocessing"));
  EXPECT_FALSE(arch["batchnorm"].get<bool>());
  EXPECT_FALSE(pre["standardize"].get<bool>());
  const std::string activation = arch["activation"];
  // Dense layers in module order: "0.weight", "2.weight", ... (activations hold no tensors).
  std::vector<std::pair<int, std::string>> layers;
  for (const auto& [name, t] : file.tensors)
    if (name.size() > 7 && name.compare(name.size() - 7, 7, ".weight") == 0)
      layers.emplace_back(std::stoi(name), name.substr(0, name.size() - 7));
  std::sort(layers.begin(), layers.end());
  EXPECT_EQ(layers.size(), arch["hidden"].size() + 1);
  const bp::data::TensorDataset images =
      bp::data::FashionMNIST::load(clitest::kFashionDir, bp::data::Split::test, n).flattened();
  std::vector<Prediction> out;
  for (std::int64_t i = 0; i < n; ++i) {
    std::vector<double> a(784);
    for (std::int64_t k = 0; k < 784; ++k) a[static_cast<std::size_t>(k)] = images.features.at({i, k});
    for (std::size_t l = 0; l < layers.size(); ++l) {
      const bp::Tensor& w = file.at(layers[l].second + ".weight");
      const bp::Tensor& b = file.at(layers[l].second + ".bias");
      std::vector<double> z(static_cast<std::size_t>(w.size(0)));
      for (std::int64_t r = 0; r < w.size(0); ++r) {
        double sum = b.flat(r);
        for (std::int64_t k = 0; k < w.size(1); ++k) sum += w.at({r, k}) * a[static_cast<std::size_t>(k)];
        double& v = z[static_cast<std::size_t>(r)];
        v = sum;
        if (l + 1 == layers.size()) continue;  // the output layer is linear
        if (activation == "relu")
          v = std::max(v, 0.0);
        else if (activation == "tanh")
          v = std::tanh(v);
        else if (activation == "sigmoid")
          v = 1 / (1 + std::exp(-v));
        else if (activation == "leaky_relu")
          v = v > 0 ? v : 0.01 * v;
        else
          ADD_FAILURE() << "activation " << activation;
      }
      a = z;
    }
    Prediction p;
    const double top = *std::max_element(a.begin(), a.end());
    double total = 0;
    for (double v : a) total += std::exp(v - top);
    for (double v : a) p.probabilities.push_back(std::exp(v - top) / total);
    p.best = static_cast<std::size_t>(std::max_element(p.probabilities.begin(), p.probabilities.end()) -
                                      p.probabilities.begin());
    out.push_back(std::move(p));
  }
  return out;
}

}  // namespace

TEST(Cli, HelpListsEveryCommandAndExitCodes) {
  Scratch s;
  const auto r = run(s, "--help");
  EXPECT_EQ(r.code, 0);
  for (const char* c : {"train", "eval", "predict", "info", "report", "explain", "Exit codes"})
    EXPECT_THAT(r.out, HasSubstr(c));
  const auto t = run(s, "train --help");
  EXPECT_EQ(t.code, 0);
  for (const char* f : {"--data",
                        "--target",
                        "--task",
                        "--val-split",
                        "--limit-train",
                        "--layers",
                        "--activation",
                        "--batchnorm",
                        "--dropout",
                        "--dropconnect",
                        "--init",
                        "--loss",
                        "--batch-size",
                        "--grad-reduction",
                        "--optimizer",
                        "--lr",
                        "--momentum",
                        "--schedule",
                        "--l1",
                        "--l2",
                        "--weight-decay",
                        "--clip-grad-norm",
                        "--epochs",
                        "--early-stopping",
                        "--seed",
                        "--threads",
                        "--out",
                        "--checkpoint-every",
                        "--resume",
                        "--grad-flow",
                        "--quiet",
                        "--json",
                        "--config",
                        "--print-config",
                        "--no-standardize"})
    EXPECT_THAT(t.out, HasSubstr(f)) << f;
}

TEST(Cli, UnknownFlagSuggestsTheClosest) {
  Scratch s;
  const auto r = run(s, "train --lrr 0.1");
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("unknown flag --lrr; did you mean --lr?"));
  const auto e = run(s, "eval --model m --data d --limt 3");
  EXPECT_EQ(e.code, 2);
  EXPECT_THAT(e.err, HasSubstr("did you mean --limit?"));
  const auto c = run(s, "trian");
  EXPECT_EQ(c.code, 2);
  EXPECT_THAT(c.err, HasSubstr("unknown command 'trian'; did you mean 'train'?"));
}

TEST(Cli, BadValuesAreUsageErrorsNamingTheFlag) {
  Scratch s;
  auto r = run(s, "train --lr -1");
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--lr: expected a number > 0 and at most 1000000, got '-1'"));
  r = run(s, "train --batch-size half");
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(
      r.err,
      HasSubstr("--batch-size: expected an integer >= 1 and at most 1000000000, or \"full\", got 'half'"));
  r = run(s, "train --activation rleu");
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("did you mean 'relu'?"));
  r = run(s, "train --task regression --loss cross-entropy");
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("cross-entropy needs data.task (--task) = classification"));
  r = run(s, "eval --data fashion-mnist");
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("--model is required"));
  r = run(s, "train --data fashion-mnsit");
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("did you mean 'fashion-mnist'?"));
}

TEST(Cli, PrintConfigAppliesFileThenFlagsAndParsesBack) {
  Scratch s;
  clitest::write(s.path("run.toml"), "[model]\nlayers = [64]\n[optimizer]\nlr = 0.2\nname = \"adam\"\n");
  const auto r = run(s, "train --config " + s.path("run.toml") + " --lr 0.01 --batchnorm --print-config");
  ASSERT_EQ(r.code, 0) << r.err;
  const bp::config::Config c = bp::config::parse_toml(r.out, "printed");
  EXPECT_EQ(c.model.layers, std::vector<std::int64_t>{64});  // from the file
  EXPECT_EQ(c.optimizer.name, "adam");                       // from the file
  EXPECT_EQ(c.optimizer.lr, 0.01);                           // the flag wins
  EXPECT_TRUE(c.model.batchnorm);
  EXPECT_EQ(c.train.epochs, bp::config::Config{}.train.epochs);  // default
}

TEST(Cli, ConfigFileErrorsNameFileLineAndKey) {
  Scratch s;
  clitest::write(s.path("run.toml"), "[optimizer]\nlr = 0.1\nmomentun = 0.5\n");
  auto r = run(s, "train --config " + s.path("run.toml"));
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(
      r.err, HasSubstr("run.toml:3:1: unknown key 'optimizer.momentun'; did you mean 'optimizer.momentum'?"));
  clitest::write(s.path("bad.toml"), "[train]\nepochs = \n");
  r = run(s, "train --config " + s.path("bad.toml"));
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("bad.toml:2:"));
  EXPECT_THAT(r.err, HasSubstr("TOML syntax error"));
  r = run(s, "train --config " + s.path("missing.toml"));
  EXPECT_EQ(r.code, 3);
  EXPECT_THAT(r.err, HasSubstr("missing.toml"));
}

TEST(Cli, TrainWritesTheRunFolder) {
  REQUIRE_INSTALLED(clitest::have_fashion(), "dataset-fashion-mnist",
                    std::string("Fashion-MNIST under ") + clitest::kFashionDir);
  Scratch s;
  const std::string out = s.path("run");
  const auto r = run(s, "train " + kTiny + "--grad-flow 5 --checkpoint-every 1 --out " + out);
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* f : {"model.safetensors", "metrics.jsonl", "config.toml", "summary.json",
                        "checkpoints/epoch-0001.safetensors", "checkpoints/latest"})
    EXPECT_TRUE(fs::exists(fs::path(out) / f)) << f;
  // Not a terminal: plain per-epoch lines on stderr, the summary on stdout.
  EXPECT_THAT(r.err, HasSubstr("epoch   1/1  loss "));
  EXPECT_THAT(r.err, Not(HasSubstr("\r")));
  EXPECT_THAT(r.out, HasSubstr("test        loss"));

  const bp::io::Metrics m = bp::io::read_metrics(out + "/metrics.jsonl");
  ASSERT_EQ(m.epochs.size(), 1u);
  EXPECT_EQ(m.epochs[0].updates, 18);  // 900 training examples (10% validation) / 50
  EXPECT_FALSE(std::isnan(m.epochs[0].val_loss));
  EXPECT_GT(m.epochs[0].samples_per_second, 0);
  ASSERT_EQ(m.grad_flow.size(), 3u);  // steps 5, 10, 15
  EXPECT_EQ(m.grad_flow[1].step, 10);
  EXPECT_EQ(m.grad_flow[0].layers.size(), 2u);
  ASSERT_TRUE(m.test.has_value());
  EXPECT_EQ(m.test->examples, 500);
  EXPECT_EQ(m.test->confusion.size(), 10u);
  EXPECT_FALSE(m.test->misclassified.empty());
  EXPECT_EQ(m.test->misclassified[0].pixels.size(), 784u);

  const auto summary = nlohmann::json::parse(clitest::slurp(out + "/summary.json"));
  EXPECT_EQ(summary["status"], "completed");
  EXPECT_EQ(summary["test"]["examples"], 500);
  EXPECT_GT(summary["test"]["accuracy"].get<double>(), 0.5);  // one epoch on 900 images: far above chance
  const bp::config::Config c = bp::config::load_toml(out + "/config.toml");
  EXPECT_EQ(c.model.layers, std::vector<std::int64_t>{32});

  // info on the model and on the checkpoint
  const auto info = run(s, "info " + out + "/model.safetensors");
  ASSERT_EQ(info.code, 0) << info.err;
  EXPECT_THAT(info.out, HasSubstr("784-32-10"));
  EXPECT_THAT(info.out, HasSubstr("parameters  25,450"));
  EXPECT_THAT(info.out, HasSubstr("Ankle boot"));
  EXPECT_THAT(info.out, HasSubstr("0.weight"));
  const auto ck = run(s, "info --json " + out + "/checkpoints/epoch-0001.safetensors");
  ASSERT_EQ(ck.code, 0) << ck.err;
  const auto j = nlohmann::json::parse(ck.out);
  EXPECT_EQ(j["kind"], "checkpoint");
  EXPECT_EQ(j["checkpoint"]["epoch"], 1);
  EXPECT_EQ(j["checkpoint"]["step"], 18);
  EXPECT_EQ(j["parameters"], 25450);

  // eval on the test split: the same numbers as the run's own test evaluation
  const auto ev =
      run(s, "eval --json --limit 500 --model " + out + "/model.safetensors --data fashion-mnist");
  ASSERT_EQ(ev.code, 0) << ev.err;
  const auto e = nlohmann::json::parse(ev.out);
  EXPECT_DOUBLE_EQ(e["accuracy"].get<double>(), summary["test"]["accuracy"].get<double>());
  EXPECT_EQ(e["confusion"], summary["test"]["confusion"]);
  const auto text = run(s, "eval --limit 500 --model " + out + "/model.safetensors --data fashion-mnist");
  EXPECT_THAT(text.out, HasSubstr("per-class accuracy"));
  EXPECT_THAT(text.out, HasSubstr("confusion matrix"));
  EXPECT_THAT(text.out, HasSubstr("Trouser"));

  // predict from the IDX image file: one "class<TAB>probability" line per image, the model's softmax as
  // computed here by hand (double precision) from the saved weights.
  const std::vector<Prediction> expected = predict_by_hand(out + "/model.safetensors", 20);
  const auto p = run(s, "predict --limit 20 --model " + out + "/model.safetensors --input " +
                            std::string(clitest::kFashionDir) + "/t10k-images-idx3-ubyte.gz");
  ASSERT_EQ(p.code, 0) << p.err;
  const auto rows = lines(p.out);
  ASSERT_EQ(rows.size(), 20u);
  const std::vector<std::string>& names = bp::data::FashionMNIST::class_names();
  for (std::size_t i = 0; i < rows.size(); ++i) {
    const std::string& row = rows[i];
    const auto tab = row.find('\t');
    ASSERT_NE(tab, std::string::npos) << row;
    const auto named = std::find(names.begin(), names.end(), row.substr(0, tab));
    ASSERT_NE(named, names.end()) << row;
    const auto c = static_cast<std::size_t>(named - names.begin());
    const Prediction& e = expected[i];
    // The named class is the most probable one (up to rounding, should two be within 1e-6 of each other).
    EXPECT_NEAR(e.probabilities[c], e.probabilities[e.best], 1e-6) << "row " << i << ": " << row;
    EXPECT_NEAR(std::stod(row.substr(tab + 1)), e.probabilities[e.best], 5e-5 + 1e-6) << "row " << i;  // %.4f
  }
  const auto pj = run(s, "predict --json --limit 20 --model " + out + "/model.safetensors --input " +
                             std::string(clitest::kFashionDir) + "/t10k-images-idx3-ubyte.gz");
  ASSERT_EQ(pj.code, 0) << pj.err;
  const auto json_rows = lines(pj.out);
  ASSERT_EQ(json_rows.size(), 20u);
  for (std::size_t i = 0; i < json_rows.size(); ++i) {
    const auto j = nlohmann::json::parse(json_rows[i]);
    const auto c = j["index"].get<std::size_t>();
    ASSERT_LT(c, 10u);
    EXPECT_EQ(j["class"], names[c]);
    EXPECT_EQ(j["row"], i);
    EXPECT_NEAR(expected[i].probabilities[c], expected[i].probabilities[expected[i].best], 1e-6)
        << "row " << i;
    EXPECT_NEAR(j["probability"].get<double>(), expected[i].probabilities[c], 1e-5) << "row " << i;
  }

  // report rebuilds report.html from the run folder's files: the page shows the run's test confusion matrix.
  fs::remove(out + "/report.html");
  const auto rep = run(s, "report " + out);
  ASSERT_EQ(rep.code, 0) << rep.err;
  ASSERT_TRUE(fs::exists(out + "/report.html"));
  const std::string html = clitest::slurp(out + "/report.html");
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u) << html.substr(0, 100);
  EXPECT_THAT(html, HasSubstr("</html>"));
  EXPECT_THAT(html, HasSubstr("Test loss"));
  const std::size_t table = html.find("<table class=\"confusion\">");
  ASSERT_NE(table, std::string::npos);
  const std::string confusion = html.substr(table, html.find("</table>", table) - table);
  for (std::size_t r = 0; r < 10; ++r) {
    const int diagonal = summary["test"]["confusion"][r][r].get<int>();
    EXPECT_THAT(confusion, HasSubstr("<b>" + std::to_string(diagonal) + "</b>")) << "class " << r;
  }
}

TEST(Cli, CsvTrainEvaluatesOnAnotherCsvWithStringLabels) {
  Scratch s;
  clitest::write(s.path("train.csv"), clitest::blobs_csv(1, 60));
  clitest::write(s.path("test.csv"), clitest::blobs_csv(2, 20));
  clitest::write(s.path("new.csv"), clitest::blobs_csv(3, 2, false));
  const std::string out = s.path("run");
  const auto r = run(s, "train --quiet --data " + s.path("train.csv") +
                            " --target species --layers 16 --dropout 0 --epochs 30 --batch-size 16 "
                            "--optimizer momentum --lr 0.05 --out " +
                            out + " --test-data " + s.path("test.csv"));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, "");  // --quiet
  const bp::io::ModelFile m = bp::io::load_model(out + "/model.safetensors");
  EXPECT_EQ(m.preprocessing.class_names, (std::vector<std::string>{"setosa", "versicolor", "virginica"}));
  EXPECT_EQ(m.preprocessing.feature_names, (std::vector<std::string>{"sepal", "petal", "weight", "height"}));
  ASSERT_TRUE(m.preprocessing.mean.defined());
  EXPECT_NEAR(m.preprocessing.mean.at({2}), 6000, 200);  // the training split's mean, stored in the model

  const auto ev = run(s, "eval --json --model " + out + "/model.safetensors --data " + s.path("test.csv"));
  ASSERT_EQ(ev.code, 0) << ev.err;
  const auto j = nlohmann::json::parse(ev.out);
  EXPECT_EQ(j["examples"], 60);
  EXPECT_GE(j["accuracy"].get<double>(), 0.9);
  EXPECT_TRUE(j["per_class_accuracy"].contains("virginica"));

  // predict on rows without a label column; and on the labelled file, whose label column is dropped
  const auto p = run(s, "predict --model " + out + "/model.safetensors --input " + s.path("new.csv"));
  ASSERT_EQ(p.code, 0) << p.err;
  const auto rows = lines(p.out);
  ASSERT_EQ(rows.size(), 6u);
  const char* expected[] = {"setosa", "versicolor", "virginica"};
  for (std::size_t i = 0; i < rows.size(); ++i)
    EXPECT_EQ(rows[i].substr(0, rows[i].find('\t')), expected[i % 3]) << rows[i];
  const auto pj =
      run(s, "predict --json --model " + out + "/model.safetensors --input " + s.path("test.csv"));
  ASSERT_EQ(pj.code, 0) << pj.err;
  EXPECT_EQ(lines(pj.out).size(), 60u);
  EXPECT_EQ(nlohmann::json::parse(lines(pj.out)[1])["class"], "versicolor");

  // an unknown label in the evaluation file is a data error naming file and line
  clitest::write(s.path("odd.csv"),
                 "sepal,petal,weight,height,species\n1,2,5000,0.001,setosa\n1,2,5000,0.001,daisy\n");
  const auto odd = run(s, "eval --model " + out + "/model.safetensors --data " + s.path("odd.csv"));
  EXPECT_EQ(odd.code, 3);
  EXPECT_THAT(odd.err, HasSubstr("odd.csv:3"));
  EXPECT_THAT(odd.err, HasSubstr("daisy"));
}

TEST(Cli, CsvRegressionPredictsValues) {
  Scratch s;
  clitest::write(s.path("train.csv"), clitest::linear_csv(1, 200));
  clitest::write(s.path("x.csv"), "x1,x2\n0.5,0.0\n0.0,0.5\n");
  const std::string out = s.path("run");
  const auto r =
      run(s, "train --quiet --data " + s.path("train.csv") +
                 " --target y --task regression --layers none --dropout 0 --epochs 40 --batch-size 20"
                 " --optimizer momentum --lr 0.05 --schedule none --out " +
                 out);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto ev = run(s, "eval --json --model " + out + "/model.safetensors --data " + s.path("train.csv"));
  ASSERT_EQ(ev.code, 0) << ev.err;
  EXPECT_LT(nlohmann::json::parse(ev.out)["rmse"].get<double>(), 0.05);
  const auto p = run(s, "predict --model " + out + "/model.safetensors --input " + s.path("x.csv"));
  ASSERT_EQ(p.code, 0) << p.err;
  const auto rows = lines(p.out);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_NEAR(std::stod(rows[0]), 1.5, 0.05);   // 2 * 0.5 + 0.5
  EXPECT_NEAR(std::stod(rows[1]), -1.0, 0.05);  // -3 * 0.5 + 0.5
}

TEST(Cli, BadFilesAreDataErrors) {
  Scratch s;
  auto r = run(s, "eval --model " + s.path("none.safetensors") + " --data fashion-mnist");
  EXPECT_EQ(r.code, 3);
  EXPECT_THAT(r.err, HasSubstr("none.safetensors"));
  clitest::write(s.path("garbage.safetensors"), std::string("\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":", 13));
  r = run(s, "info " + s.path("garbage.safetensors"));
  EXPECT_EQ(r.code, 3);
  EXPECT_THAT(r.err, HasSubstr("garbage.safetensors"));
  EXPECT_THAT(r.err, HasSubstr("byte"));
  bp::io::save_safetensors(s.path("foreign.safetensors"), {.tensors = {{"w", bp::ones({2, 2})}}});
  r = run(s, "info " + s.path("foreign.safetensors"));
  EXPECT_EQ(r.code, 3);
  EXPECT_THAT(r.err, HasSubstr("not a backprop model"));
  r = run(s, "train --data " + s.path("missing.csv"));
  EXPECT_EQ(r.code, 3);
  EXPECT_THAT(r.err, HasSubstr("missing.csv' does not exist"));
  clitest::write(s.path("ragged.csv"), "a,b,label\n1,2,x\n3,y\n");
  r = run(s, "train --data " + s.path("ragged.csv"));
  EXPECT_EQ(r.code, 3);
  EXPECT_THAT(r.err, HasSubstr("ragged.csv:3"));
  r = run(s, "train --resume " + s.path("nowhere"));
  EXPECT_EQ(r.code, 3);
  EXPECT_THAT(r.err, HasSubstr("nowhere"));
  r = run(s, "report " + s.path("nowhere"));
  EXPECT_EQ(r.code, 3);
}

// An output that is also an input is refused before anything is read or trained, and the input is untouched.
TEST(Cli, OutputsThatWouldOverwriteAnInputAreRefusedAtStartUp) {
  Scratch s;
  clitest::write(s.path("train.csv"), clitest::blobs_csv(1, 10));
  const std::string data = clitest::slurp(s.path("train.csv"));
  const std::string quick = "--layers 4 --epochs 1 --quiet ";
  auto r = run(s, "train --data " + s.path("train.csv") + " " + quick + "--out " + s.path("train.csv"));
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("is also the input --data"));
  // A file the run writes into its folder (config.toml, metrics.jsonl, ...) given as an input.
  ASSERT_EQ(run(s, "train --data " + s.path("train.csv") + " " + quick + "--out " + s.path("run")).code, 0);
  const std::string config = clitest::slurp(s.path("run/config.toml"));
  r = run(s, "train --config " + s.path("run/config.toml") + " --out " + s.path("run/../run"));
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("would overwrite its input --config"));
  EXPECT_THAT(r.err, HasSubstr("config.toml"));
  EXPECT_EQ(clitest::slurp(s.path("run/config.toml")), config);
  clitest::write(s.path("run/metrics.jsonl"), data);  // a data file saved where a run writes its metrics
  r = run(s, "train --data " + s.path("run/metrics.jsonl") + " " + quick + "--out " + s.path("run"));
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("would overwrite its input --data"));
  EXPECT_EQ(clitest::slurp(s.path("run/metrics.jsonl")), data);
  // A run folder that is a file, or that cannot be created.
  clitest::write(s.path("afile"), "x");
  r = run(s, "train --data " + s.path("train.csv") + " " + quick + "--out " + s.path("afile"));
  EXPECT_EQ(r.code, 3);
  EXPECT_THAT(r.err, HasSubstr("exists and is not a folder"));
  r = run(s, "train --data " + s.path("train.csv") + " " + quick + "--out " + s.path("afile/sub"));
  EXPECT_EQ(r.code, 3);
  EXPECT_THAT(r.err, HasSubstr("afile/sub: cannot create the run folder"));
  EXPECT_THAT(r.err, HasSubstr("afile is not a folder"));
  EXPECT_EQ(clitest::slurp(s.path("afile")), "x");
  // The check creates nothing: a run that then fails on its data leaves no empty run folder behind.
  r = run(s, "train --data " + s.path("missing.csv") + " " + quick + "--out " + s.path("never/made"));
  EXPECT_EQ(r.code, 3);
  EXPECT_FALSE(std::filesystem::exists(s.path("never")));
  // predict --output over the model or the input.
  r = run(s, "predict --model " + s.path("run/model.safetensors") + " --input " + s.path("train.csv") +
                 " --output " + s.path("./train.csv"));
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("is also the input --input"));
  EXPECT_EQ(clitest::slurp(s.path("train.csv")), data);
  r = run(s, "predict --model " + s.path("run/model.safetensors") + " --input " + s.path("train.csv") +
                 " --output " + s.path("run/model.safetensors"));
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err, HasSubstr("is also the input --model"));
  EXPECT_EQ(run(s, "info " + s.path("run/model.safetensors")).code, 0);
}

TEST(Cli, ModelAndDataThatDoNotFitAreDataErrors) {
  Scratch s;
  clitest::write(s.path("train.csv"), clitest::blobs_csv(1, 10));
  const std::string out = s.path("run");
  ASSERT_EQ(
      run(s, "train --quiet --data " + s.path("train.csv") + " --layers 4 --epochs 1 --out " + out).code, 0);
  clitest::write(s.path("two.csv"), "a,b\n1,2\n");
  const auto r = run(s, "predict --model " + out + "/model.safetensors --input " + s.path("two.csv"));
  EXPECT_EQ(r.code, 3);
  EXPECT_THAT(r.err, HasSubstr("no column named 'sepal', 'petal', 'weight', 'height'"));
  const auto e = run(s, "eval --model " + out + "/model.safetensors --data fashion-mnist");
  EXPECT_EQ(e.code, 3);
}

TEST(Cli, DivergingRunExitsWithFour) {
  REQUIRE_INSTALLED(clitest::have_fashion(), "dataset-fashion-mnist",
                    std::string("Fashion-MNIST under ") + clitest::kFashionDir);
  Scratch s;
  const std::string out = s.path("run");
  const auto r =
      run(s, "train " + kData + "--optimizer sgd --lr 1e6 --grad-reduction sum --schedule none --out " + out);
  EXPECT_EQ(r.code, 4) << r.err;
  EXPECT_THAT(r.err, HasSubstr("diverged"));
  const auto summary = nlohmann::json::parse(clitest::slurp(out + "/summary.json"));
  EXPECT_EQ(summary["status"], "diverged");
  EXPECT_FALSE(fs::exists(out + "/model.safetensors"));
}

TEST(Cli, JsonSummaryOnStdout) {
  REQUIRE_INSTALLED(clitest::have_fashion(), "dataset-fashion-mnist",
                    std::string("Fashion-MNIST under ") + clitest::kFashionDir);
  Scratch s;
  const auto r = run(s, "train --json " + kTiny + "--val-split 0 --out " + s.path("run"));
  ASSERT_EQ(r.code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["status"], "completed");
  EXPECT_EQ(j["data"]["validation_examples"], 0);
  EXPECT_TRUE(j["final"]["val_loss"].is_null());
  EXPECT_EQ(r.err, "");  // --json prints no progress
}

TEST(Cli, ProgressBarOnATerminal) {
  REQUIRE_INSTALLED(clitest::have_fashion(), "dataset-fashion-mnist",
                    std::string("Fashion-MNIST under ") + clitest::kFashionDir);
  if (std::system("command -v script >/dev/null 2>&1") != 0)
    GTEST_SKIP() << "no `script` to provide a terminal";
  Scratch s;
  // script(1) runs the command on a pseudo-terminal and records what it wrote there.
  const std::string cmd =
      "script -qec " +
      clitest::quote(clitest::quote(clitest::kCli) + " train " + kTiny + "--out " + s.path("run")) + " " +
      clitest::quote(s.path("tty.log")) + " >/dev/null 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  const std::string tty = clitest::slurp(s.path("tty.log"));
  EXPECT_THAT(tty, HasSubstr("\r\033[Kepoch 1/1 ["));  // the bar, redrawn in place
  EXPECT_THAT(tty, HasSubstr("samples/s  ETA "));
  EXPECT_THAT(tty, HasSubstr("18/18"));               // batches
  EXPECT_THAT(tty, HasSubstr("epoch   1/1  loss "));  // the epoch's line replaces the bar
}

TEST(Cli, ExplainIsWiredIn) {
  Scratch s;
  const auto r = run(s, "explain");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("autograd engine"));
  const auto bad = run(s, "explain --repeated -3");
  EXPECT_EQ(bad.code, 2);
  EXPECT_THAT(bad.err, HasSubstr("--repeated"));
}

TEST(Cli, ExplainConvShowsOneConvolutionLayerCheckedAgainstTheEngine) {
  Scratch s;
  const auto r = run(s, "explain --conv");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_THAT(r.out, HasSubstr("dC/dx = the transposed convolution of the deltas"));
  EXPECT_THAT(r.out, HasSubstr("all agree"));
  const auto j = run(s, "explain --conv --json");
  ASSERT_EQ(j.code, 0) << j.err;
  EXPECT_EQ(nlohmann::json::parse(j.out)["verification"]["agree"], true);
  const auto graph = run(s, "explain --conv --graph " + s.path("g.dot"));
  EXPECT_EQ(graph.code, 2);
  EXPECT_THAT(graph.err,
              HasSubstr("--conv shows one convolution layer's step; it does not combine with --graph"));
}
