// MultiheadAttention: an attention block (MHA + residual + LayerNorm + head) trained four SGD steps with a
// causal mask equals PyTorch 1.13's same computation (tests/nn/torch_layers.py attention) to 1e-10 in f64 and
// 1e-5 in f32, and so does a forward with a key padding mask, and a run with bool masks; gradcheck; shapes,
// batch_first=false, errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <backprop/backprop.hpp>
#include <backprop/nn.hpp>
#include <limits>

#include "nn/torch_compare.hpp"
#include "util/require.hpp"

namespace bp = backprop;
using ::testing::HasSubstr;

namespace {

// y = LayerNorm(x + MHA(x, x, x)); out = head(mean over the sequence of y). Inputs {x, key_padding_mask,
// attn_mask}; outputs {out, attention weights}.
struct AttentionBlock : bp::nn::Module {
  std::shared_ptr<bp::nn::MultiheadAttention> mha;
  std::shared_ptr<bp::nn::LayerNorm> norm;
  std::shared_ptr<bp::nn::Linear> head;
  AttentionBlock(bp::DType dtype, bp::Generator& gen)
      : mha(std::make_shared<bp::nn::MultiheadAttention>(8, 2, gen,
                                                         bp::nn::MultiheadAttentionOptions{.dtype = dtype})),
        norm(std::make_shared<bp::nn::LayerNorm>(8, bp::nn::LayerNormOptions{.dtype = dtype})),
        head(std::make_shared<bp::nn::Linear>(8, 3, gen, bp::nn::LinearOptions{.dtype = dtype})) {
    register_module("mha", mha);
    register_module("norm", norm);
    register_module("head", head);
  }
  bp::Tensors forward(const bp::Tensors& in) override {
    const bp::Tensor& x = in.at(0);
    const bp::Tensors a =
        mha->attend(x, x, x, in.size() > 1 ? in[1] : bp::Tensor(), in.size() > 2 ? in[2] : bp::Tensor());
    return {(*head)(bp::mean((*norm)(bp::add(x, a[0])), 1)), a[1]};
  }
  bp::Tensor forward(const bp::Tensor& x) override { return forward(bp::Tensors{x})[0]; }
  std::string repr() const override { return "AttentionBlock()"; }
};

void expect_close(const bp::Tensor& t, const std::vector<double>& ref, double tol, const std::string& what) {
  const auto v = t.to_vector();
  ASSERT_EQ(v.size(), ref.size()) << what;
  for (std::size_t i = 0; i < v.size(); ++i) EXPECT_NEAR(v[i], ref[i], tol) << what << " element " << i;
}

constexpr double kInf = std::numeric_limits<double>::infinity();

}  // namespace

TEST(MultiheadAttention, AttentionBlockTrainedFourStepsEqualsPyTorch) {
  REQUIRE_INSTALLED(torchcmp::have_torch(), "python3-torch", "/usr/bin/python3 with torch");
  std::string err;
  const auto ref = torchcmp::run_torch("attention", err);
  ASSERT_FALSE(ref.empty()) << err;

  for (const auto& [tag, dtype, tol] : {std::tuple{"f64", bp::f64, 1e-10}, {"f32", bp::f32, 1e-5}}) {
    SCOPED_TRACE(tag);
    bp::Generator gen(0);
    AttentionBlock net(dtype, gen);
    {
      bp::NoGradGuard guard;
      auto params = net.named_parameters();
      std::sort(params.begin(), params.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      int j = 0;
      for (auto& [name, p] : params)
        p.copy_(bp::to_dtype(torchcmp::filled(p.shape(), double(j++), 0.5), dtype));
    }
    const bp::Tensor x = bp::to_dtype(torchcmp::filled({2, 5, 8}, 10.0), dtype);
    const bp::Tensor target = bp::to_dtype(torchcmp::filled({2, 3}, 20.0), dtype);
    // Key padding: the first sequence's last two keys are blocked.
    const bp::Tensor pad =
        bp::from_vector(std::vector<double>{0.0, 0.0, 0.0, -kInf, -kInf, 0, 0, 0, 0, 0}, {2, 5}, dtype);
    const bp::Tensors padded = net(x, pad);
    expect_close(padded[0], ref.at(std::string(tag) + ".padded"), tol, "padded output");
    expect_close(padded[1], ref.at(std::string(tag) + ".padded_weights"), tol, "padded weights");

    std::vector<double> causal(25, 0.0);
    for (int i = 0; i < 5; ++i)
      for (int j = i + 1; j < 5; ++j) causal[static_cast<std::size_t>(i * 5 + j)] = -kInf;
    const bp::Tensor mask = bp::from_vector(causal, {5, 5}, dtype);
    bp::optim::SGD opt(net.parameters(), {.lr = 0.1});
    for (int step = 0; step < 4; ++step) {
      opt.zero_grad();
      const bp::Tensor d = bp::sub(net(x, bp::Tensor(), mask)[0], target);
      const bp::Tensor loss = bp::mean(bp::mul(d, d));
      loss.backward();
      opt.step();
      EXPECT_NEAR(loss.item(), ref.at(std::string(tag) + ".loss" + std::to_string(step)).at(0), tol)
          << "step " << step;
    }
    const auto params = net.named_parameters();
    ASSERT_EQ(params.size(), 8u);
    for (const auto& [name, p] : params) {
      const std::string key = std::string(tag) + "." + name;
      ASSERT_TRUE(ref.contains(key)) << name << " is not a PyTorch parameter name";
      expect_close(p, ref.at(key), tol, name);
    }
  }
}

// Bool masks mean what they mean in PyTorch (true = not allowed to attend): a block trained four steps with a
// bool key padding mask and a bool causal attn_mask at once equals torch_layers.py's same run.
TEST(MultiheadAttention, BoolMasksTrainedFourStepsEqualPyTorch) {
  REQUIRE_INSTALLED(torchcmp::have_torch(), "python3-torch", "/usr/bin/python3 with torch");
  std::string err;
  const auto ref = torchcmp::run_torch("attention", err);
  ASSERT_FALSE(ref.empty()) << err;

  const bp::Tensor pad =
      bp::from_vector(std::vector<double>{0, 0, 0, 1, 1, 0, 0, 0, 0, 0}, {2, 5}, bp::bool_);
  const bp::Tensor causal = bp::triu(bp::ones({5, 5}, bp::bool_), 1);
  ASSERT_EQ(causal.dtype(), bp::bool_);
  for (const auto& [tag, dtype, tol] : {std::tuple{"f64", bp::f64, 1e-10}, {"f32", bp::f32, 1e-5}}) {
    SCOPED_TRACE(tag);
    const std::string prefix = std::string(tag) + ".bool.";
    bp::Generator gen(0);
    AttentionBlock net(dtype, gen);
    {
      bp::NoGradGuard guard;
      auto params = net.named_parameters();
      std::sort(params.begin(), params.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
      int j = 0;
      for (auto& [name, p] : params)
        p.copy_(bp::to_dtype(torchcmp::filled(p.shape(), double(j++), 0.5), dtype));
    }
    const bp::Tensor x = bp::to_dtype(torchcmp::filled({2, 5, 8}, 10.0), dtype);
    const bp::Tensor target = bp::to_dtype(torchcmp::filled({2, 3}, 20.0), dtype);
    expect_close(net(x, pad, causal)[1], ref.at(prefix + "weights"), tol, "weights");
    bp::optim::SGD opt(net.parameters(), {.lr = 0.1});
    for (int step = 0; step < 4; ++step) {
      opt.zero_grad();
      const bp::Tensor d = bp::sub(net(x, pad, causal)[0], target);
      const bp::Tensor loss = bp::mean(bp::mul(d, d));
      loss.backward();
      opt.step();
      EXPECT_NEAR(loss.item(), ref.at(prefix + "loss" + std::to_string(step)).at(0), tol) << "step " << step;
    }
    for (const auto& [name, p] : net.named_parameters()) expect_close(p, ref.at(prefix + name), tol, name);
  }
}

TEST(MultiheadAttention, BoolAndFloatMasksAgreeAndOtherDtypesAreRefused) {
  bp::Generator gen(2);
  bp::nn::MultiheadAttention mha(8, 2, gen, {.dtype = bp::f64});
  const bp::Tensor x = bp::randn({2, 4, 8}, gen, bp::f64);
  const bp::Tensor blocked = bp::from_vector(std::vector<double>{0, 1, 0, 1, 0, 0, 1, 0}, {2, 4}, bp::bool_);
  const bp::Tensor added = bp::masked_fill(bp::zeros({2, 4}, bp::f64), blocked, -kInf);
  const bp::Tensors a = mha.attend(x, x, x, blocked), b = mha.attend(x, x, x, added);
  EXPECT_EQ(bp::max_abs_diff(a[0], b[0]), 0.0);
  EXPECT_EQ(bp::max_abs_diff(a[1], b[1]), 0.0);
  // Blocked keys get no weight.
  EXPECT_EQ(a[1].to_vector()[1], 0.0);
  try {
    mha.attend(x, x, x, bp::zeros({2, 4}, bp::i64));
    ADD_FAILURE() << "an i64 mask was accepted";
  } catch (const bp::DTypeError& e) {
    EXPECT_THAT(e.what(),
                HasSubstr("key_padding_mask is i64; expected bool (true = not allowed to attend) or "
                          "the layer's f64"));
  }
}

TEST(MultiheadAttention, GradcheckInF64) {
  bp::Generator gen(3);
  bp::nn::MultiheadAttention mha(4, 2, gen, {.dtype = bp::f64});
  const bp::Tensor q = bp::randn({2, 3, 4}, gen, bp::f64), kv = bp::randn({2, 5, 4}, gen, bp::f64);
  const auto fn = [&](const bp::Tensors& in) { return mha.attend(in[0], in[1], in[1])[0]; };
  EXPECT_TRUE(bp::gradcheck(fn, {q.clone().requires_grad_(), kv.clone().requires_grad_()}).ok);
}

TEST(MultiheadAttention, ShapesSelfAttentionSequenceFirstAndErrors) {
  bp::Generator gen(1);
  bp::nn::MultiheadAttention mha(8, 4, gen);
  EXPECT_EQ(mha.num_parameters(), 3 * 8 * 8 + 3 * 8 + 8 * 8 + 8);
  const bp::Tensor x = bp::randn({2, 5, 8}, gen), mem = bp::randn({2, 7, 8}, gen);
  EXPECT_EQ(mha(x).shape(), (bp::Shape{2, 5, 8}));
  const bp::Tensors out = mha(x, mem, mem);
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].shape(), (bp::Shape{2, 5, 8}));
  EXPECT_EQ(out[1].shape(), (bp::Shape{2, 5, 7}));
  // Each query's weights sum to 1.
  EXPECT_LT(bp::max_abs_diff(bp::sum(out[1], -1), bp::ones({2, 5})), 1e-6);

  // Sequence first: the same layer's weights on transposed inputs give the transposed output.
  bp::nn::MultiheadAttention seq(8, 4, gen, {.batch_first = false});
  {
    bp::NoGradGuard guard;
    seq.load_state_dict(mha.state_dict());
  }
  EXPECT_LT(bp::max_abs_diff(seq(bp::transpose(x, 0, 1)), bp::transpose(mha(x), 0, 1)), 1e-6);
  EXPECT_EQ(seq.repr(), "MultiheadAttention(embed_dim=8, num_heads=4, bias=true, batch_first=false)");

  EXPECT_THROW(bp::nn::MultiheadAttention(8, 3, gen), bp::ValueError);
  EXPECT_THAT(
      [&] {
        mha(bp::randn({2, 5, 6}, gen));
      },
      ::testing::ThrowsMessage<bp::ShapeError>(HasSubstr("query must be [N, L, E] with E = 8")));
  EXPECT_THAT(
      [&] {
        mha.attend(x, mem, mem, bp::zeros({2, 5}));
      },
      ::testing::ThrowsMessage<bp::ShapeError>(HasSubstr("key_padding_mask must be [N, S] = [2, 7]")));
  EXPECT_THAT([&] { mha(bp::Tensors{x, x}); }, ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("got 2")));
}
