// train::evaluate_model and train::predict_model: a saved model's figures and predictions against values
// worked out by hand for a network whose outputs are known.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/config/make.hpp>
#include <backprop/train/saved_model.hpp>
#include <cmath>
#include <nlohmann/json.hpp>

namespace bp = backprop;
namespace train = backprop::train;
using json = nlohmann::json;
using ::testing::HasSubstr;

namespace {

// One Linear layer with the given weight [out, in] and bias [out], as a loaded model of `task`.
bp::io::LoadedModel linear_model(const std::vector<double>& weight, const std::vector<double>& bias,
                                 std::int64_t in, const std::string& task,
                                 const std::vector<std::string>& class_names = {}) {
  const auto out = static_cast<std::int64_t>(bias.size());
  bp::io::ModelFile m{.architecture = {.inputs = in, .outputs = out}};
  m.preprocessing.task = task;
  m.preprocessing.class_names = class_names;
  bp::Generator gen(0);
  auto net = bp::io::build_network(m.architecture, gen);
  net->load_state_dict(
      {{"0.weight", bp::from_vector(weight, {out, in})}, {"0.bias", bp::from_vector(bias, {out})}});
  return {.model = m, .network = net};
}

// Identity logits: the class is the larger feature. Row 2 ([3, 0], label 1) is the one mistake.
bp::io::LoadedModel identity_classifier() {
  return linear_model({1, 0, 0, 1}, {0, 0}, 2, "classification", {"left", "right"});
}
bp::data::TensorDataset four_rows() {
  return {.features = bp::from_vector(std::vector<double>{2, 0, 0, 2, 3, 0, 0, -1}, {4, 2}),
          .targets = bp::tensor({0, 1, 1, 0}),
          .num_classes = 2};
}

// -log softmax(z)[c] for two logits.
double nll(double z0, double z1, int c) {
  return std::log(std::exp(z0) + std::exp(z1)) - (c == 0 ? z0 : z1);
}

}  // namespace

TEST(EvaluateModel, ClassifierAccuracyConfusionAndLossByHand) {
  const train::ModelEvaluation e =
      train::evaluate_model(identity_classifier(), four_rows(), {.model = "m.safetensors", .data = "t.csv"});
  EXPECT_FALSE(e.regression);
  EXPECT_EQ(e.network, "2-2");
  EXPECT_EQ(e.evaluation.examples, 4);
  EXPECT_DOUBLE_EQ(e.evaluation.accuracy, 0.75);
  EXPECT_EQ(e.evaluation.confusion, (std::vector<std::vector<std::int64_t>>{{2, 0}, {1, 1}}));
  const double loss = (nll(2, 0, 0) + nll(0, 2, 1) + nll(3, 0, 1) + nll(0, -1, 0)) / 4;
  EXPECT_NEAR(e.evaluation.loss, loss, 1e-6);

  EXPECT_THAT(e.text(), HasSubstr("model     m.safetensors (2-2)\n"
                                  "data      t.csv: 4 examples\n"));
  EXPECT_THAT(e.text(), HasSubstr("accuracy  75.00%\n\nper-class accuracy\n"
                                  "  left   100.00%\n"
                                  "  right   50.00%\n"));
  EXPECT_THAT(e.text(), HasSubstr("columns: predicted class)\n"
                                  "             0      1\n"
                                  "  left       2      0\n"
                                  "  right      1      1\n"));
  const json j = json::parse(e.json());
  EXPECT_EQ(j["model"], "m.safetensors");
  EXPECT_EQ(j["data"], "t.csv");
  EXPECT_EQ(j["examples"], 4);
  EXPECT_EQ(j["accuracy"], 0.75);
  EXPECT_EQ(j["per_class_accuracy"]["right"], 0.5);
  EXPECT_EQ(j["confusion"], json::parse("[[2, 0], [1, 1]]"));
  EXPECT_FALSE(j.contains("rmse"));
}

TEST(EvaluateModel, UsesTheCostTheModelWasTrainedWith) {
  bp::io::LoadedModel model = identity_classifier();
  const double cross_entropy = train::evaluate_model(model, four_rows()).evaluation.loss;
  model.model.config_toml = "[train]\nloss = \"mse\"\n";
  const double mse = train::evaluate_model(model, four_rows()).evaluation.loss;
  const auto softmax_mse = bp::config::make_loss("mse", bp::data::Task::classification);
  EXPECT_DOUBLE_EQ(mse, train::evaluate(*model.network, *softmax_mse, four_rows()).loss);
  EXPECT_NE(mse, cross_entropy);
}

TEST(EvaluateModel, RegressionErrorsByHand) {
  // y = 2x + 1 on x = 0, 1, 2 gives 1, 3, 5 against targets 1, 3, 6: errors 0, 0, 1.
  const bp::io::LoadedModel model = linear_model({2}, {1}, 1, "regression");
  const bp::data::TensorDataset data{.features = bp::from_vector(std::vector<double>{0, 1, 2}, {3, 1}),
                                     .targets = bp::from_vector(std::vector<double>{1, 3, 6}, {3, 1}),
                                     .task = bp::data::Task::regression};
  const train::ModelEvaluation e = train::evaluate_model(model, data, {.model = "r", .data = "d"});
  EXPECT_TRUE(e.regression);
  EXPECT_NEAR(e.errors.rmse, std::sqrt(1.0 / 3), 1e-6);
  EXPECT_NEAR(e.errors.mae, 1.0 / 3, 1e-6);
  EXPECT_THAT(e.text(), HasSubstr("rmse      0.57735\nmae       0.333333\n"));
  EXPECT_THAT(e.text(), ::testing::Not(HasSubstr("accuracy")));
  const json j = json::parse(e.json());
  EXPECT_NEAR(j["mae"].get<double>(), 1.0 / 3, 1e-6);
  EXPECT_FALSE(j.contains("accuracy"));
}

TEST(EvaluateModel, NoExamplesIsAFileErrorNamingTheData) {
  bp::data::TensorDataset empty = four_rows().subset({});
  try {
    train::evaluate_model(identity_classifier(), empty, {.data = "empty.csv"});
    ADD_FAILURE() << "expected a FileError";
  } catch (const bp::FileError& e) {
    EXPECT_THAT(e.what(), HasSubstr("empty.csv: no examples to evaluate"));
  }
}

TEST(PredictModel, ClassesAndProbabilitiesByHand) {
  bp::io::LoadedModel model = identity_classifier();
  const train::Predictions p = train::predict_model(model, four_rows().features);
  ASSERT_EQ(p.rows(), 4);
  EXPECT_EQ(p.classes, (std::vector<std::int64_t>{0, 1, 0, 0}));
  const double p0 = 1 / (1 + std::exp(-2.0));  // softmax of [2, 0] at 0
  EXPECT_NEAR(p.probabilities[0], p0, 1e-6);
  EXPECT_EQ(p.label(1), "right");
  EXPECT_EQ(p.text(), "left\t0.8808\nright\t0.8808\nleft\t0.9526\nleft\t0.7311\n");
  const std::string lines = p.json_lines();
  const json first = json::parse(lines.substr(0, lines.find('\n')));
  EXPECT_EQ(first["row"], 0);
  EXPECT_EQ(first["class"], "left");
  EXPECT_EQ(first["index"], 0);
  EXPECT_NEAR(first["probability"].get<double>(), p0, 1e-6);

  model.model.preprocessing.class_names = {"left"};  // a class without a name is shown by its index
  EXPECT_EQ(train::predict_model(model, four_rows().features).label(1), "1");
}

TEST(PredictModel, RegressionValuesOneOrMany) {
  const bp::io::LoadedModel one = linear_model({2}, {1}, 1, "regression");
  const bp::Tensor x = bp::from_vector(std::vector<double>{0, 1, 2.5}, {3, 1});
  const train::Predictions p = train::predict_model(one, x);
  EXPECT_TRUE(p.classes.empty());
  EXPECT_EQ(p.text(), "1\n3\n6\n");
  EXPECT_EQ(p.json_lines(),
            "{\"row\":0,\"value\":1.0}\n{\"row\":1,\"value\":3.0}\n{\"row\":2,\"value\":6.0}\n");

  const bp::io::LoadedModel two = linear_model({1, -1}, {0, 0.5}, 1, "regression");
  const train::Predictions q = train::predict_model(two, x);
  EXPECT_EQ(q.text(), "0\t0.5\n1\t-0.5\n2.5\t-2\n");
  EXPECT_EQ(json::parse(q.json_lines().substr(0, q.json_lines().find('\n')))["value"],
            json::parse("[0.0, 0.5]"));
}
