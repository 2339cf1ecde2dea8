// Config -> architecture, loss, optimiser and schedule.
#include "setup.hpp"

#include <algorithm>
#include <backprop/error.hpp>
#include <backprop/nn.hpp>
#include <backprop/ops.hpp>

namespace cli {

namespace bp = backprop;

bp::io::Architecture make_architecture(const bp::config::Config& c, std::int64_t inputs,
                                       std::int64_t outputs) {
  bp::io::Architecture a;
  a.inputs = inputs;
  a.outputs = outputs;
  a.hidden = c.model.layers;
  a.activation = c.model.activation;
  a.batchnorm = c.model.batchnorm;
  a.dropout = c.model.dropout;
  a.dropconnect = c.model.dropconnect;
  a.init = c.model.init;
  if (a.init == "auto")
    a.init = a.activation == "sigmoid" || a.activation == "tanh" ? "xavier_uniform" : "kaiming_uniform";
  return a;
}

std::shared_ptr<bp::nn::Sequential> build_layers(const std::vector<bp::config::LayerSpec>& layers,
                                                 std::int64_t features, const bp::io::Preprocessing& pre,
                                                 std::int64_t outputs, bp::Generator& gen,
                                                 const std::string& init) {
  const std::string& first = layers.front().type;
  const bool on_images = first.starts_with("conv2d") || first.starts_with("conv_transpose") ||
                         first.find("pool2d") != std::string::npos || first == "dropout2d";
  if (!(on_images && pre.input == "image" && pre.image_shape.size() == 2))
    return bp::io::build_network(layers, {features}, outputs, gen, init);
  const bp::Shape image{1, pre.image_shape[0], pre.image_shape[1]};
  const auto body = bp::io::build_network(layers, image, outputs, gen, init);
  auto net = std::make_shared<bp::nn::Sequential>(bp::nn::Unflatten(1, image));
  for (std::size_t i = 0; i < body->size(); ++i) net->push_back((*body)[i]);
  return net;
}

void check_layer_list_flags(const std::vector<std::string>& given, const std::string& arch) {
  for (const bp::config::KeyInfo& k : bp::config::keys()) {
    const bool dense_only = k.key == "model.layers" || k.key == "model.activation" ||
                            k.key == "model.batchnorm" || k.key == "model.dropout" ||
                            k.key == "model.dropconnect";
    BP_CHECK(
        !dense_only || std::find(given.begin(), given.end(), k.key) == given.end(), ConfigError, k.key, " (",
        k.flag, ") describes the dense layers of --arch mlp, but --arch is ", arch,
        ", a list of layers; to change them, write the network as [[model.layer]] tables in a --config file "
        "(docs/cli.md, \"Networks as layer tables\")");
  }
}

std::unique_ptr<bp::loss::Loss> make_loss(const std::string& name, bool regression) {
  const std::string n = name == "auto" ? (regression ? "mse" : "cross-entropy") : name;
  if (n == "cross-entropy") return std::make_unique<bp::loss::CrossEntropy>();
  BP_CHECK(n == "mse", ConfigError, "--loss: expected cross-entropy or mse, got '", name, "'");
  if (regression) return std::make_unique<bp::loss::MSE>();
  return std::make_unique<bp::loss::SoftmaxMSE>();
}

std::unique_ptr<bp::optim::Optimizer> make_optimizer(const bp::config::OptimizerConfig& c,
                                                     const bp::Tensors& params) {
  const std::string& n = c.name;
  if (n == "sgd")
    return std::make_unique<bp::optim::SGD>(
        params, bp::optim::SGDOptions{.lr = c.lr, .weight_decay = c.weight_decay});
  if (n == "momentum" || n == "nesterov")
    return std::make_unique<bp::optim::SGD>(
        params,
        bp::optim::SGDOptions{
            .lr = c.lr, .momentum = c.momentum, .nesterov = n == "nesterov", .weight_decay = c.weight_decay});
  if (n == "adam")
    return std::make_unique<bp::optim::Adam>(
        params, bp::optim::AdamOptions{.lr = c.lr, .weight_decay = c.weight_decay});
  if (n == "adamw")
    return std::make_unique<bp::optim::AdamW>(
        params, bp::optim::AdamWOptions{.lr = c.lr, .weight_decay = c.weight_decay});
  if (n == "rmsprop")
    return std::make_unique<bp::optim::RMSprop>(
        params,
        bp::optim::RMSpropOptions{.lr = c.lr, .momentum = c.momentum, .weight_decay = c.weight_decay});
  throw bp::ConfigError("--optimizer: expected sgd, momentum, nesterov, adam, adamw or rmsprop, got '" + n +
                        "'");
}

std::unique_ptr<bp::optim::Scheduler> make_scheduler(const bp::config::OptimizerConfig& c,
                                                     bp::optim::Optimizer& opt, std::int64_t epochs) {
  const bp::config::Schedule s = bp::config::parse_schedule(c.schedule, "--schedule");
  if (s.kind == "cosine")
    return std::make_unique<bp::optim::CosineAnnealingLR>(opt, static_cast<int>(epochs));
  if (s.kind == "step") return std::make_unique<bp::optim::StepLR>(opt, static_cast<int>(s.epochs), s.gamma);
  if (s.kind == "exponential") return std::make_unique<bp::optim::ExponentialLR>(opt, s.gamma);
  if (s.kind == "warmup") return std::make_unique<bp::optim::LinearWarmup>(opt, static_cast<int>(s.epochs));
  return nullptr;
}

}  // namespace cli
