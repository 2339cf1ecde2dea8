// Whole networks of the newer layers saved and loaded without their code, with bit-identical outputs: a
// residual MLP with LayerNorm, containers with Embedding and MultiheadAttention, a network whose output layer
// is tied to its embedding, an embedding + mean-pool text classifier trained a few steps, an attention block;
// and the reader's checks of the "tied" list.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/io/model_file.hpp>
#include <backprop/io/module_tree.hpp>
#include <cstring>
#include <nlohmann/json.hpp>

#include "io/io_test_util.hpp"

namespace bp = backprop;
namespace nn = backprop::nn;
using ::testing::HasSubstr;

namespace {

bool same_bits(const bp::Tensor& a, const bp::Tensor& b) {
  return a.shape() == b.shape() && a.dtype() == b.dtype() &&
         std::memcmp(a.contiguous().raw_data(), b.contiguous().raw_data(), a.nbytes()) == 0;
}

// Saves `net`, loads it back, and checks the tree and every tensor came back bit for bit.
nn::ModulePtr round_trip(const nn::Module& net, const std::string& path) {
  bp::io::save_model(path, net);
  nn::ModulePtr back = bp::io::load_module(path);
  EXPECT_EQ(bp::io::module_tree(*back), bp::io::module_tree(net));
  const auto mine = net.state_dict(), theirs = back->state_dict();
  EXPECT_EQ(theirs.size(), mine.size());
  for (const auto& [name, t] : mine) {
    const auto it = theirs.find(name);
    EXPECT_TRUE(it != theirs.end() && same_bits(it->second, t)) << name;
  }
  EXPECT_EQ(back->num_parameters(), net.num_parameters());
  return back;
}

// The text classifier: token ids [N, L] -> Embedding -> mean over the tokens -> Linear -> logits [N, C].
// A module of one's own: registered by name, so it loads without its code.
struct BagOfWords : nn::Module {
  std::shared_ptr<nn::Embedding> emb;
  std::shared_ptr<nn::Linear> head;
  BagOfWords(std::shared_ptr<nn::Embedding> e, std::shared_ptr<nn::Linear> h)
      : emb(std::move(e)), head(std::move(h)) {
    register_module("emb", emb);
    register_module("head", head);
  }
  bp::Tensor forward(const bp::Tensor& ids) override { return (*head)(bp::mean((*emb)(ids), 1)); }
  std::string repr() const override { return "BagOfWords()"; }
};

void register_bag_of_words() {
  static const bool once = [] {
    bp::io::register_module<BagOfWords>(
        "BagOfWords", [](const bp::io::ModuleOptions&, const bp::io::ModuleChildren& children) {
          if (children.size() != 2) throw bp::ValueError("BagOfWords has two children");
          return std::make_shared<BagOfWords>(std::dynamic_pointer_cast<nn::Embedding>(children[0].second),
                                              std::dynamic_pointer_cast<nn::Linear>(children[1].second));
        });
    return true;
  }();
  (void)once;
}

}  // namespace

TEST(RoundTrip, ResidualMlpWithLayerNormGivesBitIdenticalOutputs) {
  iotest::ScratchDir dir;
  bp::Generator gen(11);
  nn::Sequential net{nn::Linear(4, 8, gen),
                     nn::Residual(nn::Sequential{nn::LayerNorm(8), nn::Linear(8, 8, gen), nn::ReLU()}),
                     nn::LayerNorm(8, {.eps = 1e-6}),
                     nn::Unflatten(1, {2, 4}),
                     nn::LayerNorm({2, 4}, {.elementwise_affine = false}),
                     nn::Flatten(1, -1),
                     nn::Identity(),
                     nn::Linear(8, 3, gen)};
  {
    bp::NoGradGuard guard;
    bp::Generator values(2);
    for (auto& [name, t] : net.state_dict()) t.copy_(bp::rand(t.shape(), values, bp::f32, -1.0, 1.0));
  }
  const nn::ModulePtr back = round_trip(net, dir.file("m.safetensors"));
  const bp::Tensor x = bp::randn({5, 4}, gen);
  EXPECT_TRUE(same_bits(back->forward(x), net.forward(x)));
  EXPECT_NE(back->repr().find("Unflatten(dim=1, sizes=[2, 4])"), std::string::npos) << back->repr();
}

TEST(RoundTrip, ContainersEmbeddingAndAttentionKeepTheirOptions) {
  iotest::ScratchDir dir;
  bp::Generator gen(12);
  auto blocks = std::make_shared<nn::ModuleList>(nn::Linear(4, 4, gen, {.dtype = bp::f64}),
                                                 nn::LayerNorm(4, {.eps = 1e-3, .dtype = bp::f64}));
  auto emb = std::make_shared<nn::Embedding>(10, 4, gen, nn::EmbeddingOptions{.padding_idx = 0});
  auto mha = std::make_shared<nn::MultiheadAttention>(
      4, 2, gen, nn::MultiheadAttentionOptions{.bias = false, .batch_first = false});
  nn::ModuleDict net;
  net.insert("blocks", blocks);
  net.insert("emb", emb);
  net.insert("mha", mha);
  const nn::ModulePtr back = round_trip(net, dir.file("m.safetensors"));
  auto dict = std::dynamic_pointer_cast<nn::ModuleDict>(back);
  ASSERT_NE(dict, nullptr);
  EXPECT_EQ(dict->keys(), (std::vector<std::string>{"blocks", "emb", "mha"}));
  auto emb2 = dict->at<nn::Embedding>("emb");
  EXPECT_EQ(emb2->padding_idx(), 0);
  auto mha2 = dict->at<nn::MultiheadAttention>("mha");
  EXPECT_FALSE(mha2->options().batch_first);
  EXPECT_FALSE(mha2->in_proj_bias().defined());
  auto norm2 = dict->at<nn::ModuleList>("blocks")->at<nn::LayerNorm>(1);
  EXPECT_EQ(norm2->options().eps, 1e-3);
  EXPECT_EQ(norm2->options().dtype, bp::f64);

  const bp::Tensor ids = bp::from_vector(std::vector<double>{3.0, 0.0, 9.0, 1.0, 1.0, 2.0}, {3, 2});
  const bp::Tensor seq = (*emb2)(ids);  // [3, 2, 4], sequence first for this layer
  mha->eval();
  EXPECT_TRUE(same_bits((*mha2)(seq), (*mha)((*emb)(ids))));
}

TEST(RoundTrip, TiedEmbeddingAndOutputWeightAreSavedOnceAndComeBackShared) {
  iotest::ScratchDir dir;
  bp::Generator gen(13);
  auto emb = std::make_shared<nn::Embedding>(11, 6, gen);
  auto head = std::make_shared<nn::Linear>(6, 11, gen);
  head->share_parameter("weight", emb->weight());
  nn::Sequential net{emb, nn::LayerNorm(6), head};  // ids [N, L] -> logits [N, L, 11]
  EXPECT_EQ(net.num_parameters(), 11 * 6 + 2 * 6 + 11);
  const std::string tree = bp::io::module_tree(net);
  EXPECT_NE(tree.find(R"("tied":[{"tensor":"2.weight","same_as":"0.weight"}])"), std::string::npos) << tree;

  const std::string path = dir.file("m.safetensors");
  const nn::ModulePtr back = round_trip(net, path);
  EXPECT_EQ(bp::io::load_safetensors(path).tensors.size(), 4u);  // 0.weight, 1.weight, 1.bias, 2.bias
  auto seq = std::dynamic_pointer_cast<nn::Sequential>(back);
  ASSERT_NE(seq, nullptr);
  auto emb2 = seq->at<nn::Embedding>(0);
  auto head2 = seq->at<nn::Linear>(2);
  EXPECT_TRUE(head2->weight().is_same(emb2->weight()));
  EXPECT_EQ(back->parameters().size(), 4u);
  const bp::Tensor ids = bp::from_vector(std::vector<double>{1.0, 5.0, 10.0, 0.0}, {2, 2});
  EXPECT_TRUE(same_bits(back->forward(ids), net.forward(ids)));
  // A write through one is seen by the other.
  {
    bp::NoGradGuard guard;
    bp::Tensor(emb2->weight()).fill_(0.25);
  }
  EXPECT_EQ(head2->weight().flat(17), 0.25f);
}

TEST(RoundTrip, TextClassifierTrainedAFewStepsGivesBitIdenticalOutputs) {
  register_bag_of_words();
  iotest::ScratchDir dir;
  bp::Generator gen(14);
  // A synthetic corpus: 40 documents of 6 tokens from a vocabulary of 20; class 1 when the document holds
  // more tokens from the upper half of the vocabulary.
  std::vector<double> ids, labels;
  for (int d = 0; d < 40; ++d) {
    int upper = 0;
    for (int t = 0; t < 6; ++t) {
      const auto tok = static_cast<int>(gen.uniform() * 20) % 20;
      upper += tok >= 10;
      ids.push_back(tok);
    }
    labels.push_back(upper > 3 ? 1.0 : 0.0);
  }
  const bp::Tensor x = bp::from_vector(ids, {40, 6}), y = bp::from_vector(labels, {40});
  BagOfWords net(std::make_shared<nn::Embedding>(20, 8, gen), std::make_shared<nn::Linear>(8, 2, gen));
  bp::optim::SGD opt(net.parameters(), {.lr = 0.5});
  double first = 0, last = 0;
  for (int step = 0; step < 20; ++step) {
    opt.zero_grad();
    const bp::Tensor loss = bp::loss::CrossEntropy()(net(x), y);
    loss.backward();
    opt.step();
    (step == 0 ? first : last) = loss.item();
  }
  EXPECT_LT(last, first);
  net.eval();
  const nn::ModulePtr back = round_trip(net, dir.file("m.safetensors"));
  EXPECT_NE(std::dynamic_pointer_cast<BagOfWords>(back), nullptr);
  EXPECT_TRUE(same_bits(back->forward(x), net.forward(x)));
}

TEST(RoundTrip, AttentionBlockGivesBitIdenticalOutputs) {
  iotest::ScratchDir dir;
  bp::Generator gen(15);
  nn::Sequential net{nn::Residual(nn::MultiheadAttention(8, 2, gen)), nn::LayerNorm(8),
                     nn::Residual(nn::Sequential{nn::Linear(8, 16, gen), nn::ReLU(), nn::Linear(16, 8, gen)}),
                     nn::LayerNorm(8)};
  const nn::ModulePtr back = round_trip(net, dir.file("m.safetensors"));
  const bp::Tensor x = bp::randn({3, 5, 8}, gen);
  EXPECT_TRUE(same_bits(back->forward(x), net.forward(x)));
}

TEST(RoundTrip, BadTiedListsAreFileErrorsNamingTheFileAndEntry) {
  iotest::ScratchDir dir;
  bp::Generator gen(16);
  auto emb = std::make_shared<nn::Embedding>(5, 3, gen);
  auto head = std::make_shared<nn::Linear>(3, 5, gen);
  head->share_parameter("weight", emb->weight());
  nn::Sequential net{emb, head};
  const std::string path = dir.file("m.safetensors");
  bp::io::save_model(path, net);
  const auto edit = [&](const std::string& from, const std::string& to) {
    bp::io::NamedTensors file = bp::io::load_safetensors(path);
    std::string& tree = file.metadata.at("module");
    const auto at = tree.find(from);
    EXPECT_NE(at, std::string::npos) << tree;
    tree.replace(at, from.size(), to);
    bp::io::save_safetensors(dir.file("bad.safetensors"), file);
    try {
      bp::io::load_module(dir.file("bad.safetensors"));
      return std::string("loaded");
    } catch (const bp::FileError& e) {
      return std::string(e.what());
    }
  };
  EXPECT_THAT(edit(R"("same_as":"0.weight")", R"("same_as":"9.weight")"),
              HasSubstr("bad.safetensors: __metadata__ 'module' at '(root)', field \"tied\", entry 0: "
                        "\"same_as\" names '9.weight'"));
  EXPECT_THAT(edit(R"("tensor":"1.weight")", R"("tensor":"1.bias")"),
              HasSubstr("is [5] but the shared tensor is [5, 3]"));
  EXPECT_THAT(edit(R"([{"tensor")", R"([7,{"tensor")"), HasSubstr("entry 0: expected an object"));
  // Without the tie the tensor of the second module is missing from the file.
  EXPECT_THAT(edit(R"(,"tied":[{"tensor":"1.weight","same_as":"0.weight"}])", ""),
              HasSubstr("bad.safetensors: tensor '1.weight' of the module tree ([5, 3]) is missing"));
}
