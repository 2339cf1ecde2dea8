// Flatten, Unflatten, ModuleList, ModuleDict, Residual, and tied weights counted once everywhere.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/nn.hpp>

namespace bp = backprop;
using ::testing::HasSubstr;

namespace {
// A module holding a weight it is given (so two of them can share one tensor), y = x * weight.
class Scale : public bp::nn::Module {
 public:
  explicit Scale(bp::Tensor w) { w_ = register_parameter("weight", std::move(w)); }
  bp::Tensor forward(const bp::Tensor& x) override { return bp::mul(x, w_); }
  std::string repr() const override { return "Scale()"; }

 private:
  bp::Tensor w_;
};

std::vector<std::string> names(const std::vector<std::pair<std::string, bp::Tensor>>& named) {
  std::vector<std::string> out;
  for (const auto& [n, _] : named) out.push_back(n);
  return out;
}
}  // namespace

TEST(Flatten, MergesTheChosenDimensionsAndTheGradientFlowsBack) {
  bp::Generator gen(1);
  bp::Tensor x = bp::randn({2, 3, 4, 5}, gen, bp::f64).requires_grad_();
  EXPECT_EQ(bp::nn::Flatten()(x).shape(), (bp::Shape{2, 60}));
  EXPECT_EQ(bp::nn::Flatten(0, -1)(x).shape(), (bp::Shape{120}));
  EXPECT_EQ(bp::nn::Flatten(1, 2)(x).shape(), (bp::Shape{2, 12, 5}));
  EXPECT_EQ(bp::nn::Flatten(-2, -1)(x).shape(), (bp::Shape{2, 3, 20}));
  bp::Tensor y = bp::nn::Flatten()(x);
  EXPECT_EQ(y.to_vector(), x.to_vector());  // same order of elements
  bp::gradcheck([](const bp::Tensors& in) { return bp::nn::Flatten(1, 2)(in[0]); },
                {bp::randn({2, 2, 3}, gen, bp::f64).requires_grad_()});
  EXPECT_EQ(bp::nn::Flatten().repr(), "Flatten(start_dim=1, end_dim=-1)");
  EXPECT_THAT([&] { bp::nn::Flatten(2, 1)(x); },
              ::testing::ThrowsMessage<bp::ShapeError>(HasSubstr("Flatten(start_dim=2, end_dim=1)")));
  EXPECT_THAT([&] { bp::nn::Flatten(4)(x); },
              ::testing::ThrowsMessage<bp::ShapeError>(HasSubstr("got input [2, 3, 4, 5]")));
}

TEST(Unflatten, SplitsOneDimensionAndInvertsFlatten) {
  bp::Generator gen(2);
  bp::Tensor x = bp::randn({2, 12, 5}, gen, bp::f64);
  bp::Tensor y = bp::nn::Unflatten(1, {3, 4})(x);
  EXPECT_EQ(y.shape(), (bp::Shape{2, 3, 4, 5}));
  EXPECT_EQ(bp::nn::Unflatten(-2, {2, -1})(x).shape(), (bp::Shape{2, 2, 6, 5}));
  EXPECT_EQ(bp::nn::Flatten(1, 2)(y).to_vector(), x.to_vector());
  EXPECT_EQ(bp::nn::Unflatten(1, {3, 4}).repr(), "Unflatten(dim=1, sizes=[3, 4])");
  EXPECT_THAT(
      [&] {
        bp::nn::Unflatten(1, {5, 2})(x);
      },
      ::testing::ThrowsMessage<bp::ShapeError>(
          HasSubstr("sizes [5, 2] do not multiply to 12, the size of dimension 1 of input [2, 12, 5]")));
  EXPECT_THAT(
      [&] { bp::nn::Unflatten(3, {1})(x); },
      ::testing::ThrowsMessage<bp::ShapeError>(HasSubstr("dim is out of range for input [2, 12, 5]")));
  EXPECT_THAT(
      [] {
        bp::nn::Unflatten(0, {-1, -1});
      },
      ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("at most one size may be -1")));
  EXPECT_THAT([] { bp::nn::Unflatten(0, {}); },
              ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("sizes must not be empty")));
}

TEST(ModuleList, NamesChildrenByIndexLikePyTorch) {
  bp::Generator gen(3);
  bp::nn::ModuleList list{bp::nn::Linear(4, 3, gen), bp::nn::ReLU(), bp::nn::Linear(3, 2, gen)};
  EXPECT_EQ(list.size(), 3u);
  EXPECT_EQ(names(list.named_parameters()),
            (std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"}));
  EXPECT_EQ(list.at<bp::nn::Linear>(2)->out_features(), 2);
  bp::Tensor h = bp::randn({5, 4}, gen);
  for (const auto& m : list) h = (*m)(h);
  EXPECT_EQ(h.shape(), (bp::Shape{5, 2}));
  EXPECT_THAT(list.repr(), HasSubstr("ModuleList(\n  (0): Linear(in=4, out=3, bias=true)\n  (1): ReLU()"));
  EXPECT_THAT([&] { list[3]; },
              ::testing::ThrowsMessage<bp::IndexError>(HasSubstr("index 3 out of range for 3")));
  EXPECT_THAT([&] { list.at<bp::nn::Linear>(1); },
              ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("is ReLU()")));
  EXPECT_THAT([&] { list(h); }, ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("no forward of its own")));
  EXPECT_THAT([&] { list.push_back(bp::nn::ModulePtr()); },
              ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("null module at position 3")));
}

TEST(ModuleDict, NamesChildrenByKeyInInsertionOrder) {
  bp::Generator gen(4);
  bp::nn::ModuleDict dict;
  dict.insert("enc", bp::nn::Linear(4, 3, gen));
  dict.insert("act", std::make_shared<bp::nn::Tanh>());
  dict.insert("dec", bp::nn::Linear(3, 4, gen, {.bias = false}));
  EXPECT_EQ(dict.keys(), (std::vector<std::string>{"enc", "act", "dec"}));
  EXPECT_EQ(names(dict.named_parameters()),
            (std::vector<std::string>{"enc.weight", "enc.bias", "dec.weight"}));
  EXPECT_TRUE(dict.contains("act"));
  EXPECT_FALSE(dict.contains("x"));
  EXPECT_EQ((*dict["dec"])((*dict["enc"])(bp::zeros({2, 4}))).shape(), (bp::Shape{2, 4}));
  EXPECT_EQ(dict.at<bp::nn::Linear>("enc")->in_features(), 4);
  EXPECT_THAT([&] { dict["x"]; }, ::testing::ThrowsMessage<bp::IndexError>(HasSubstr(
                                      "no module under key 'x'; the keys are 'enc', 'act', 'dec'")));
  EXPECT_THAT([&] { dict.insert("enc", bp::nn::ReLU()); },
              ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("'enc': the name is already used")));
  EXPECT_THAT([&] { dict.insert("a.b", bp::nn::ReLU()); },
              ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("contain no '.'")));
  EXPECT_THAT(dict.repr(),
              HasSubstr("ModuleDict(\n  (enc): Linear(in=4, out=3, bias=true)\n  (act): Tanh()"));
}

TEST(Residual, AddsTheInputAndChecksTheShape) {
  bp::Generator gen(5);
  auto lin = std::make_shared<bp::nn::Linear>(3, 3, gen, bp::nn::LinearOptions{.dtype = bp::f64});
  bp::nn::Residual res(lin);
  bp::Tensor x = bp::randn({4, 3}, gen, bp::f64).requires_grad_();
  EXPECT_LT(bp::max_abs_diff(res(x), bp::add(x, (*lin)(x))), 1e-15);
  EXPECT_EQ(names(res.named_parameters()), (std::vector<std::string>{"block.weight", "block.bias"}));
  bp::gradcheck([&](const bp::Tensors& in) { return res(in[0]); }, {x});
  EXPECT_EQ(res.repr(), "Residual(\n  (block): Linear(in=3, out=3, bias=true)\n)");
  bp::nn::Residual bad(bp::nn::Linear(3, 2, gen, {.dtype = bp::f64}));
  EXPECT_THAT([&] { bad(x); },
              ::testing::ThrowsMessage<bp::ShapeError>(HasSubstr(
                  "Residual: the block maps input [4, 3] to [4, 2]; x + block(x) needs the same shape")));
  EXPECT_THAT([] { bp::nn::Residual(bp::nn::ModulePtr()); },
              ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("null pointer")));
}

// One Linear in two places: listed, saved, counted and updated once.
TEST(TiedWeights, ASharedLayerIsCountedOnceEverywhere) {
  bp::Generator gen(6);
  auto shared = std::make_shared<bp::nn::Linear>(3, 3, gen, bp::nn::LinearOptions{.dtype = bp::f64});
  bp::nn::Sequential net{shared, bp::nn::Tanh(), shared};
  EXPECT_EQ(names(net.named_parameters()), (std::vector<std::string>{"0.weight", "0.bias"}));
  EXPECT_EQ(net.parameters().size(), 2u);
  EXPECT_EQ(net.num_parameters(), 12);
  const auto sd = net.state_dict();
  EXPECT_EQ(sd.size(), 2u);
  EXPECT_TRUE(sd.contains("0.weight"));
  EXPECT_FALSE(sd.contains("2.weight"));

  // The optimiser steps the shared weight once, by lr times its (summed) gradient.
  const bp::Tensor before = shared->weight().clone();
  bp::optim::SGD opt(net.parameters(), {.lr = 0.5});
  bp::sum(net(bp::randn({4, 3}, gen, bp::f64))).backward();
  const bp::Tensor grad = shared->weight().grad().clone();
  opt.step();
  EXPECT_LT(bp::max_abs_diff(shared->weight(), bp::sub(before, bp::mul(grad, 0.5))), 1e-15);
}

// One weight tensor registered by two modules, and a module that holds the same child twice (ModuleList,
// ModuleDict): the first name is kept, and loading restores the tie.
TEST(TiedWeights, OneTensorInTwoModulesIsSavedOnceAndLoadingKeepsTheTie) {
  bp::Tensor w = bp::ones({3}, bp::f64);
  auto a = std::make_shared<Scale>(w);
  auto b = std::make_shared<Scale>(w);
  bp::nn::ModuleDict dict;
  dict.insert("first", a);
  dict.insert("second", b);
  EXPECT_EQ(names(dict.named_parameters()), (std::vector<std::string>{"first.weight"}));
  EXPECT_EQ(dict.num_parameters(), 3);
  const auto sd = dict.state_dict();
  ASSERT_EQ(sd.size(), 1u);

  // Load other values: both modules see them, and still share one tensor afterwards.
  dict.load_state_dict({{"first.weight", bp::from_vector({2.0, 3.0, 4.0}, {3}, bp::f64)}});
  EXPECT_EQ((*dict["second"])(bp::ones({3}, bp::f64)).to_vector(), (std::vector<double>{2.0, 3.0, 4.0}));
  {
    bp::NoGradGuard guard;
    w.fill_(7.0);
  }
  EXPECT_EQ((*dict["first"])(bp::ones({3}, bp::f64)).to_vector(), (std::vector<double>{7.0, 7.0, 7.0}));
  EXPECT_EQ((*dict["second"])(bp::ones({3}, bp::f64)).to_vector(), (std::vector<double>{7.0, 7.0, 7.0}));
  // The second name is not a key of the state: giving it is an error, as for any unknown name.
  EXPECT_THAT(
      [&] {
        dict.load_state_dict({{"first.weight", w}, {"second.weight", w}});
      },
      ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("unexpected keys (1): second.weight")));

  // The same module twice in a ModuleList.
  bp::nn::ModuleList list{a, a, b};
  EXPECT_EQ(names(list.named_parameters()), (std::vector<std::string>{"0.weight"}));
  EXPECT_EQ(list.num_parameters(), 3);
}
