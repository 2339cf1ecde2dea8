// An attention block learns a task that needs it: each sequence of 8 tokens (ids 1..15, 0 = padding) is
// labelled by whether its first token appears again later. Embedding -> (x + MultiheadAttention(x)) ->
// LayerNorm -> (x + MLP(x)) -> LayerNorm -> mean over the tokens -> Linear; trained with Adam on a
// synthetic set, then saved whole and loaded back without this code.
//
//   build/release/examples/example_attention [steps] [model-path]
#include <backprop/backprop.hpp>
#include <backprop/io/model_file.hpp>
#include <cstdio>
#include <string>
#include <vector>

namespace bp = backprop;
namespace nn = backprop::nn;

namespace {

constexpr std::int64_t kLen = 8, kVocab = 16, kDim = 32;

// `n` sequences and their labels (1 when the first token repeats).
std::pair<bp::Tensor, bp::Tensor> make_data(std::int64_t n, bp::Generator& gen) {
  std::vector<double> ids, labels;
  for (std::int64_t i = 0; i < n; ++i) {
    std::vector<double> seq;
    for (std::int64_t t = 0; t < kLen; ++t) seq.push_back(1.0 + static_cast<double>(gen.below(kVocab - 1)));
    bool repeats = false;
    for (std::int64_t t = 1; t < kLen; ++t) repeats = repeats || seq[static_cast<std::size_t>(t)] == seq[0];
    ids.insert(ids.end(), seq.begin(), seq.end());
    labels.push_back(repeats ? 1.0 : 0.0);
  }
  return {bp::from_vector(ids, {n, kLen}), bp::from_vector(labels, {n})};
}

// ids [N, L] -> logits [N, 2]
struct Classifier : nn::Module {
  std::shared_ptr<nn::Sequential> body;
  std::shared_ptr<nn::Linear> head;
  explicit Classifier(bp::Generator& gen)
      : body(std::make_shared<nn::Sequential>(
            nn::Embedding(kVocab, kDim, gen, {.padding_idx = 0}),
            nn::Residual(nn::MultiheadAttention(kDim, 4, gen)), nn::LayerNorm(kDim),
            nn::Residual(
                nn::Sequential{nn::Linear(kDim, 2 * kDim, gen), nn::ReLU(), nn::Linear(2 * kDim, kDim, gen)}),
            nn::LayerNorm(kDim))),
        head(std::make_shared<nn::Linear>(kDim, 2, gen)) {
    register_module("body", body);
    register_module("head", head);
  }
  bp::Tensor forward(const bp::Tensor& ids) override { return (*head)(bp::mean((*body)(ids), 1)); }
  std::string repr() const override { return "Classifier()"; }
};

double accuracy(const bp::Tensor& logits, const bp::Tensor& labels) {
  const bp::Tensor predicted = bp::argmax(logits, 1);
  double right = 0;
  for (std::int64_t i = 0; i < labels.numel(); ++i) right += predicted.flat(i) == labels.flat(i);
  return right / static_cast<double>(labels.numel());
}

}  // namespace

int main(int argc, char** argv) {
  const int steps = argc > 1 ? std::stoi(argv[1]) : 300;
  const std::string path = argc > 2 ? argv[2] : "attention.safetensors";
  try {
    bp::Generator gen(3);
    const auto [x, y] = make_data(2048, gen);
    const auto [x_test, y_test] = make_data(512, gen);
    Classifier net(gen);
    bp::optim::Adam opt(net.parameters(), {.lr = 0.003});
    const std::int64_t batch = 64;
    for (int step = 0; step < steps; ++step) {
      const std::int64_t start = (step * batch) % x.size(0);
      const bp::Tensor xb = bp::narrow(x, 0, start, batch), yb = bp::narrow(y, 0, start, batch);
      opt.zero_grad();
      const bp::Tensor loss = bp::loss::CrossEntropy{}(net(xb), yb);
      loss.backward();
      opt.step();
      if (step % 50 == 0) std::printf("step %4d  loss %.4f\n", step, loss.item());
    }
    net.eval();
    bp::NoGradGuard guard;
    std::printf("test accuracy %.4f\n", accuracy(net(x_test), y_test));

    // The body is built from registered layers only, so it is saved and loaded without code.
    bp::io::save_model(path, *net.body, {.input_shape = {kLen}});
    const auto body = bp::io::load_module(path);
    const bp::Tensor same = (*net.head)(bp::mean(body->forward(x_test), 1));
    std::printf("loaded body from %s: test accuracy %.4f\n", path.c_str(), accuracy(same, y_test));
    return 0;
  } catch (const bp::Error& e) {
    std::fprintf(stderr, "attention: %s\n", e.what());
    return 1;
  }
}
