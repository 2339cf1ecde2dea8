// Module bookkeeping: parameter names and order, state dicts, strict loading, train/eval, zero_grad.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/nn.hpp>

namespace bp = backprop;
using ::testing::HasSubstr;

namespace {
std::vector<std::string> names(const std::vector<std::pair<std::string, bp::Tensor>>& list) {
  std::vector<std::string> out;
  for (const auto& [n, _] : list) out.push_back(n);
  return out;
}

bp::nn::Sequential small_net(bp::Generator& gen) {
  return bp::nn::Sequential{bp::nn::Linear(4, 3, gen), bp::nn::BatchNorm1d(3), bp::nn::ReLU(),
                            bp::nn::Linear(3, 2, gen, {.bias = false})};
}
}  // namespace

TEST(Module, NamedParametersAreDottedAndInRegistrationOrder) {
  bp::Generator gen(1);
  auto net = small_net(gen);
  EXPECT_EQ(names(net.named_parameters()),
            (std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias", "3.weight"}));
  EXPECT_EQ(names(net.named_buffers()),
            (std::vector<std::string>{"1.running_mean", "1.running_var", "1.num_batches_tracked"}));
  EXPECT_EQ(net.parameters().size(), 5u);
  EXPECT_EQ(net.num_parameters(), 4 * 3 + 3 + 3 + 3 + 3 * 2);
  for (const auto& p : net.parameters()) EXPECT_TRUE(p.requires_grad());
  EXPECT_EQ(net.named_children().size(), 4u);
  EXPECT_EQ(net.named_children()[3].first, "3");
}

TEST(Module, NestedSequentialNamesAndSharedLayerListedOnce) {
  bp::Generator gen(2);
  auto shared = std::make_shared<bp::nn::Linear>(3, 3, gen);
  bp::nn::Sequential inner{shared, bp::nn::Tanh()};
  bp::nn::Sequential net{bp::nn::Linear(2, 3, gen), inner, shared};
  EXPECT_EQ(names(net.named_parameters()),
            (std::vector<std::string>{"0.weight", "0.bias", "1.0.weight", "1.0.bias"}));
  std::vector<std::string> modules;
  for (const auto& [n, _] : net.named_modules()) modules.push_back(n);
  EXPECT_EQ(modules, (std::vector<std::string>{"0", "1", "1.0", "1.1", "2"}));
  EXPECT_THAT(net.repr(), HasSubstr("  (1): Sequential(\n    (0): Linear(in=3, out=3, bias=true)"));
}

TEST(Module, SequentialAccessorsAndErrors) {
  bp::Generator gen(3);
  auto net = small_net(gen);
  EXPECT_EQ(net.size(), 4u);
  auto first = net.at<bp::nn::Linear>(0);
  EXPECT_EQ(first->out_features(), 3);
  EXPECT_TRUE(first->weight().is_same(net.named_parameters()[0].second));
  try {
    net.at<bp::nn::Linear>(2);
    FAIL() << "expected ValueError";
  } catch (const bp::ValueError& e) {
    EXPECT_THAT(e.what(), HasSubstr("module 2 is ReLU()"));
  }
  EXPECT_THROW(net[7], bp::IndexError);
  bp::Tensor x = bp::randn({5, 4}, gen);
  net.eval();  // deterministic, so forward_all and forward can be compared
  bp::Tensors all = net.forward_all(x);
  ASSERT_EQ(all.size(), 4u);
  EXPECT_EQ(all[1].shape(), (bp::Shape{5, 3}));
  EXPECT_EQ(bp::max_abs_diff(all[2], bp::relu(all[1])), 0.0);
  EXPECT_EQ(bp::max_abs_diff(all.back(), net(x)), 0.0);
}

TEST(Module, StateDictRoundTripRestoresOutputs) {
  bp::Generator gen(4);
  auto a = small_net(gen);
  auto b = small_net(gen);  // different initial weights
  bp::Tensor x = bp::randn({6, 4}, gen);
  a.forward(x);  // move a's running statistics away from their initial values
  a.eval();
  b.eval();
  ASSERT_GT(bp::max_abs_diff(a(x), b(x)), 1e-3);
  std::map<std::string, bp::Tensor> saved;
  for (auto& [k, t] : a.state_dict()) saved.emplace(k, t.detach().clone());
  EXPECT_EQ(saved.size(), 8u);
  b.load_state_dict(saved);
  EXPECT_EQ(bp::max_abs_diff(a(x), b(x)), 0.0);
  EXPECT_EQ(b.at<bp::nn::BatchNorm1d>(1)->num_batches_tracked(), 1);
  // Loading a model's own live state dict is a no-op, not an aliasing error.
  b.load_state_dict(b.state_dict());
  EXPECT_EQ(bp::max_abs_diff(a(x), b(x)), 0.0);
}

TEST(Module, LoadStateDictListsMissingAndUnexpectedAndLeavesModelUnchanged) {
  bp::Generator gen(5);
  auto net = small_net(gen);
  std::map<std::string, bp::Tensor> before;
  for (auto& [k, t] : net.state_dict()) before.emplace(k, t.detach().clone());

  std::map<std::string, bp::Tensor> bad;
  for (auto& [k, t] : before) bad.emplace(k, bp::full(t.shape(), 7.0, t.dtype()));
  bad.erase("0.bias");
  bad.emplace("4.weight", bp::zeros({2, 2}));
  try {
    net.load_state_dict(bad);
    FAIL() << "expected ValueError";
  } catch (const bp::ValueError& e) {
    EXPECT_THAT(e.what(), HasSubstr("missing keys (1): 0.bias"));
    EXPECT_THAT(e.what(), HasSubstr("unexpected keys (1): 4.weight"));
  }
  for (auto& [k, t] : net.state_dict()) EXPECT_EQ(bp::max_abs_diff(t, before.at(k)), 0.0) << k;
}

TEST(Module, LoadStateDictNamesShapeAndDTypeMismatches) {
  bp::Generator gen(6);
  auto net = small_net(gen);
  std::map<std::string, bp::Tensor> before;
  for (auto& [k, t] : net.state_dict()) before.emplace(k, t.detach().clone());

  auto bad = before;
  bad["3.weight"] = bp::zeros({3, 2});
  bad["0.bias"] = bp::zeros({3}, bp::f64);
  bad["0.weight"] = bp::full({3, 4}, 9.0);  // valid: must not be written either
  try {
    net.load_state_dict(bad);
    FAIL() << "expected ShapeError";
  } catch (const bp::ShapeError& e) {
    EXPECT_THAT(e.what(), HasSubstr("3.weight: expected [2, 3], got [3, 2]"));
    EXPECT_THAT(e.what(), HasSubstr("0.bias: expected f32, got f64"));
  }
  bad["3.weight"] = before["3.weight"];
  EXPECT_THROW(net.load_state_dict(bad), bp::DTypeError);
  for (auto& [k, t] : net.state_dict()) EXPECT_EQ(bp::max_abs_diff(t, before.at(k)), 0.0) << k;
}

TEST(Module, TrainEvalPropagatesToChildren) {
  bp::Generator gen(7);
  auto inner = std::make_shared<bp::nn::Sequential>(bp::nn::Dropout(0.5, gen));
  bp::nn::Sequential net{bp::nn::Linear(2, 2, gen), inner};
  EXPECT_TRUE(net.is_training());
  net.eval();
  EXPECT_FALSE(net.is_training());
  EXPECT_FALSE(inner->is_training());
  EXPECT_FALSE((*inner)[0]->is_training());
  net.train();
  EXPECT_TRUE((*inner)[0]->is_training());
}

TEST(Module, ZeroGradDropsEveryGradient) {
  bp::Generator gen(8);
  bp::nn::Sequential net{bp::nn::Linear(3, 4, gen), bp::nn::Sigmoid(), bp::nn::Linear(4, 1, gen)};
  net(bp::randn({5, 3}, gen)).sum().backward();
  for (const auto& p : net.parameters()) EXPECT_TRUE(p.grad().defined());
  net.zero_grad();
  for (const auto& p : net.parameters()) EXPECT_FALSE(p.grad().defined());
}

TEST(Module, RegistrationRejectsBadNames) {
  struct Bad : bp::nn::Module {
    explicit Bad(const std::string& second) {
      register_parameter("w", bp::zeros({1}));
      register_parameter(second, bp::zeros({1}));
    }
    bp::Tensor forward(const bp::Tensor& x) override { return x; }
    std::string repr() const override { return "Bad()"; }
  };
  EXPECT_THAT([] { Bad b("w"); },
              ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("'w': the name is already used")));
  EXPECT_THAT([] { Bad b("a.b"); }, ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("contain no '.'")));
}
