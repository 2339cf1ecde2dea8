// Modules with several inputs and outputs (a gated two-input layer trained a few steps, inside a Sequential),
// and Embedding: lookup, padding_idx, gradients (gradcheck, gradgradcheck), errors, tied output weights.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/nn.hpp>

namespace bp = backprop;
using ::testing::HasSubstr;

namespace {

// y = sigmoid(gate(b)) * value(a): two inputs, one output.
struct Gated : bp::nn::Module {
  std::shared_ptr<bp::nn::Linear> value, gate;
  Gated(std::int64_t in_a, std::int64_t in_b, std::int64_t out, bp::Generator& gen)
      : value(std::make_shared<bp::nn::Linear>(in_a, out, gen)),
        gate(std::make_shared<bp::nn::Linear>(in_b, out, gen)) {
    register_module("value", value);
    register_module("gate", gate);
  }
  bp::Tensors forward(const bp::Tensors& in) override {
    if (in.size() != 2) throw bp::ValueError("Gated takes {a, b}");
    return {bp::mul(bp::sigmoid((*gate)(in[1])), (*value)(in[0]))};
  }
  bp::Tensor forward(const bp::Tensor&) override { throw bp::ValueError("Gated takes two inputs"); }
  std::string repr() const override { return "Gated()"; }
};

}  // namespace

TEST(MultiInput, GatedLayerInASequentialTrainsAndLossFalls) {
  bp::Generator gen(7);
  auto gated = std::make_shared<Gated>(3, 2, 4, gen);
  bp::nn::Sequential net{gated, bp::nn::Tanh(), bp::nn::Linear(4, 1, gen)};
  const bp::Tensor a = bp::randn({16, 3}, gen), b = bp::randn({16, 2}, gen);
  // A target the gate can express: depends on both inputs.
  const bp::Tensor target = bp::mul(bp::sigmoid(bp::sum(b, 1, true)), bp::sum(a, 1, true));
  bp::optim::SGD opt(net.parameters(), {.lr = 0.2});
  double first = 0, last = 0;
  for (int step = 0; step < 30; ++step) {
    opt.zero_grad();
    const bp::Tensors out = net(a, b);
    ASSERT_EQ(out.size(), 1u);
    const bp::Tensor d = bp::sub(out[0], target);
    const bp::Tensor loss = bp::mean(bp::mul(d, d));
    loss.backward();
    opt.step();
    (step == 0 ? first : last) = loss.item();
  }
  EXPECT_LT(last, 0.5 * first);
  // Both inputs' branches got gradients.
  EXPECT_TRUE(gated->gate->weight().grad().defined());
  EXPECT_TRUE(gated->value->weight().grad().defined());
  // Called as module(a, b) directly, and through the list form.
  EXPECT_EQ((*gated)(a, b)[0].shape(), (bp::Shape{16, 4}));
  EXPECT_EQ((*gated)(bp::Tensors{a, b})[0].shape(), (bp::Shape{16, 4}));
}

TEST(MultiInput, OneTensorModuleTakesOneInputInTheListForm) {
  bp::nn::ReLU relu;
  const bp::Tensor x = bp::from_vector(std::vector<double>{-1.0, 2.0}, {2});
  const bp::Tensors y = relu(bp::Tensors{x});
  ASSERT_EQ(y.size(), 1u);
  EXPECT_EQ(y[0].to_vector(), (std::vector<double>{0.0, 2.0}));
  EXPECT_THAT([&] { relu(x, x); },
              ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("ReLU() takes one input, got 2")));
  // An empty Sequential passes its inputs through.
  bp::nn::Sequential empty;
  EXPECT_EQ(empty(x, x).size(), 2u);
}

TEST(Embedding, LooksUpRowsForAnyIndexShape) {
  bp::Generator gen(1);
  bp::nn::Embedding emb(5, 3, gen, {.dtype = bp::f64});
  const bp::Tensor ids = bp::from_vector(std::vector<double>{4.0, 0.0, 2.0, 4.0}, {2, 2});
  const bp::Tensor y = emb(ids);
  EXPECT_EQ(y.shape(), (bp::Shape{2, 2, 3}));
  const bp::Tensor w = emb.weight();
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 3; ++j)
      EXPECT_EQ(y.flat(i * 3 + j), w.flat(static_cast<std::int64_t>(ids.flat(i)) * 3 + j));
  EXPECT_EQ(emb.repr(), "Embedding(5, 3)");
  EXPECT_EQ(emb.num_parameters(), 15);
}

TEST(Embedding, GradientAddsRowsAtTheirIndicesAndSkipsPadding) {
  bp::Generator gen(2);
  bp::nn::Embedding emb(4, 2, gen, {.padding_idx = -1, .dtype = bp::f64});  // row 3
  EXPECT_EQ(emb.padding_idx(), 3);
  EXPECT_EQ(emb.repr(), "Embedding(4, 2, padding_idx=3)");
  EXPECT_EQ(bp::narrow(emb.weight(), 0, 3, 1).to_vector(), (std::vector<double>{0.0, 0.0}));
  const bp::Tensor ids = bp::from_vector(std::vector<double>{1.0, 3.0, 1.0, 0.0}, {4});
  bp::sum(bp::mul(emb(ids), bp::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8}, {4, 2}, bp::f64)))
      .backward();
  // Row 1 gets (1, 2) + (5, 6); row 0 gets (7, 8); rows 2 and 3 (padding) nothing.
  EXPECT_EQ(emb.weight().grad().to_vector(), (std::vector<double>{7, 8, 6, 8, 0, 0, 0, 0}));
}

TEST(Embedding, GradcheckAndGradgradcheckInF64) {
  bp::Generator gen(3);
  const bp::Tensor w = bp::randn({6, 3}, gen, bp::f64).requires_grad_();
  const bp::Tensor ids = bp::from_vector(std::vector<double>{5.0, 1.0, 1.0, 2.0, 0.0, 5.0}, {3, 2});
  const auto fn = [&](const bp::Tensors& in) { return bp::tanh(bp::embedding(ids, in[0])); };
  EXPECT_TRUE(bp::gradcheck(fn, {w}).ok);
  EXPECT_TRUE(bp::gradgradcheck(fn, {w}).ok);
}

TEST(Embedding, BadIndicesAndOptionsAreClearErrors) {
  bp::Generator gen(4);
  bp::nn::Embedding emb(3, 2, gen);
  EXPECT_THAT(
      [&] {
        emb(bp::from_vector(std::vector<double>{0.0, 3.0}, {2}));
      },
      ::testing::ThrowsMessage<bp::IndexError>(HasSubstr("index 3 (position 1) is out of range")));
  EXPECT_THAT([&] { emb(bp::from_vector(std::vector<double>{0.5}, {1})); },
              ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("not a whole number")));
  EXPECT_THROW(bp::nn::Embedding(0, 2, gen), bp::ValueError);
  EXPECT_THROW(bp::nn::Embedding(3, 2, gen, {.padding_idx = 3}), bp::IndexError);
  EXPECT_THAT([&] { bp::embedding(bp::zeros({2}), bp::zeros({3})); },
              ::testing::ThrowsMessage<bp::ShapeError>(HasSubstr("weight must be 2-D")));
}

TEST(TiedWeights, OutputLayerSharesTheEmbeddingWeight) {
  bp::Generator gen(5);
  auto emb = std::make_shared<bp::nn::Embedding>(7, 4, gen, bp::nn::EmbeddingOptions{.dtype = bp::f64});
  auto head = std::make_shared<bp::nn::Linear>(4, 7, gen, bp::nn::LinearOptions{.dtype = bp::f64});
  head->share_parameter("weight", emb->weight());
  EXPECT_TRUE(head->weight().is_same(emb->weight()));
  bp::nn::ModuleDict net;
  net.insert("emb", emb);
  net.insert("head", head);
  EXPECT_EQ(net.num_parameters(), 7 * 4 + 7);
  EXPECT_EQ(net.state_dict().size(), 2u);  // emb.weight, head.bias
  // A write through one is seen by the other.
  {
    bp::NoGradGuard guard;
    bp::Tensor(emb->weight()).fill_(0.5);
  }
  EXPECT_EQ(head->weight().flat(0), 0.5);
  // The gradient of both uses lands on the one tensor.
  const bp::Tensor ids = bp::from_vector(std::vector<double>{1.0, 2.0}, {2});
  bp::sum((*head)(emb->forward(ids))).backward();
  EXPECT_TRUE(emb->weight().grad().defined());

  EXPECT_THAT(
      [&] {
        head->share_parameter("weight", bp::zeros({4, 7}, bp::f64));
      },
      ::testing::ThrowsMessage<bp::ShapeError>(HasSubstr("is [7, 4] but the shared tensor is [4, 7]")));
  EXPECT_THAT([&] { head->share_parameter("nope", emb->weight()); },
              ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("has no parameter 'nope'")));
  bp::nn::LayerNorm norm(4, {.dtype = bp::f64});
  EXPECT_THAT([&] { norm.share_parameter("weight", bp::ones({4}, bp::f64)); },
              ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("cannot share its parameter 'weight'")));
}
