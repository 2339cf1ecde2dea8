// XOR with a 2-2-1 sigmoid network and the quadratic cost: the smallest problem a single layer cannot solve.
#include <backprop/backprop.hpp>
#include <cstdio>

namespace bp = backprop;

int main() {
  bp::data::TensorDataset xor_data;
  xor_data.features = bp::tensor({{0, 0}, {0, 1}, {1, 0}, {1, 1}});
  xor_data.targets = bp::from_vector(std::vector<double>{0.0, 1.0, 1.0, 0.0}, {4, 1});
  xor_data.task = bp::data::Task::regression;

  bp::Generator gen(7);
  const bp::nn::LinearOptions sigmoid_init{.init = bp::nn::Init::xavier_normal,
                                           .nonlinearity = bp::nn::Nonlinearity::sigmoid};
  bp::nn::Sequential net{bp::nn::Linear(2, 2, gen, sigmoid_init), bp::nn::Sigmoid(),
                         bp::nn::Linear(2, 1, gen, sigmoid_init), bp::nn::Sigmoid()};
  bp::optim::SGD opt(net.parameters(), {.lr = 2.0, .momentum = 0.9});
  const auto history =
      bp::train::fit(net, bp::loss::Quadratic{}, opt, xor_data, {.epochs = 2000, .full_batch = true});
  std::printf("final cost %.5f\n", history.epochs.back().train_loss);
  const bp::Tensor out = bp::train::predict(net, xor_data.features);
  for (std::int64_t i = 0; i < 4; ++i)
    std::printf("%g xor %g -> %.3f\n", xor_data.features.at({i, 0}), xor_data.features.at({i, 1}),
                out.at({i, 0}));
}
