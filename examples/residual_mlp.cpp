// A residual network on Fashion-MNIST: a stem Linear, three pre-norm residual blocks
// (x + Linear(ReLU(Linear(LayerNorm(x))))), a final LayerNorm and the classifier; Adam, a few epochs. The
// trained network is saved whole (module tree and tensors) and loaded back without this code, and the test
// accuracy of both is printed.
//
//   build/release/examples/example_residual_mlp [epochs] [data-dir] [model-path]
#include <backprop/backprop.hpp>
#include <backprop/io/model_file.hpp>
#include <cstdio>
#include <string>

namespace bp = backprop;

int main(int argc, char** argv) {
  const int epochs = argc > 1 ? std::stoi(argv[1]) : 3;
  const std::string dir = argc > 2 ? argv[2] : bp::data::FashionMNIST::default_dir;
  const std::string path = argc > 3 ? argv[3] : "residual_mlp.safetensors";

  try {
    const auto all = bp::data::FashionMNIST::load(dir, bp::data::Split::train);
    const auto test = bp::data::FashionMNIST::load(dir, bp::data::Split::test);
    const auto [train, validation] = bp::data::train_validation_split(all, 0.1, 1);

    bp::Generator gen(42);
    const std::int64_t width = 256;
    auto block = [&] {
      return bp::nn::Residual(bp::nn::Sequential{bp::nn::LayerNorm(width), bp::nn::Linear(width, width, gen),
                                                 bp::nn::ReLU(), bp::nn::Linear(width, width, gen)});
    };
    bp::nn::Sequential net{bp::nn::Linear(784, width, gen),
                           block(),
                           block(),
                           block(),
                           bp::nn::LayerNorm(width),
                           bp::nn::Linear(width, 10, gen, {.nonlinearity = bp::nn::Nonlinearity::linear})};
    std::printf("%s\n%lld parameters\n", net.repr().c_str(), static_cast<long long>(net.num_parameters()));
    bp::optim::Adam opt(net.parameters(), {.lr = 0.001});

    bp::train::fit(net, bp::loss::CrossEntropy{}, opt, train,
                   {.epochs = epochs, .batch_size = 128, .seed = 7, .validation = &validation});
    net.eval();
    const auto result = bp::train::evaluate(net, bp::loss::CrossEntropy{}, test);
    std::printf("test accuracy %.4f  test loss %.4f\n", result.accuracy, result.loss);

    bp::io::save_model(path, net, {.input_shape = {784}});
    const auto back = bp::io::load_module(path);  // no code needed: the file holds the module tree
    const auto again = bp::train::evaluate(*back, bp::loss::CrossEntropy{}, test);
    std::printf("loaded from %s: test accuracy %.4f (try `backprop info %s`)\n", path.c_str(), again.accuracy,
                path.c_str());
    return 0;
  } catch (const bp::Error& e) {
    std::fprintf(stderr, "residual_mlp: %s\n", e.what());
    return 1;
  }
}
