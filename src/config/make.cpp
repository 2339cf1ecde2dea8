// From a Config to the library objects of a run: architecture or layer network, loss, optimiser, schedule.
#include <algorithm>
#include <backprop/config/make.hpp>
#include <backprop/error.hpp>

namespace backprop::config {

io::Architecture make_architecture(const Config& c, std::int64_t inputs, std::int64_t outputs) {
  io::Architecture a;
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

std::unique_ptr<loss::Loss> make_loss(const std::string& name, data::Task task) {
  const bool regression = task == data::Task::regression;
  const std::string n = name == "auto" ? (regression ? "mse" : "cross-entropy") : name;
  if (n == "cross-entropy") return std::make_unique<loss::CrossEntropy>();
  BP_CHECK(n == "mse", ConfigError, "train.loss: expected auto, cross-entropy or mse, got '", name, "'");
  if (regression) return std::make_unique<loss::MSE>();
  return std::make_unique<loss::SoftmaxMSE>();
}

std::unique_ptr<optim::Optimizer> make_optimizer(const OptimizerConfig& c, const Tensors& params) {
  const std::string& n = c.name;
  if (n == "sgd")
    return std::make_unique<optim::SGD>(params,
                                        optim::SGDOptions{.lr = c.lr, .weight_decay = c.weight_decay});
  if (n == "momentum" || n == "nesterov")
    return std::make_unique<optim::SGD>(
        params,
        optim::SGDOptions{
            .lr = c.lr, .momentum = c.momentum, .nesterov = n == "nesterov", .weight_decay = c.weight_decay});
  if (n == "adam")
    return std::make_unique<optim::Adam>(params,
                                         optim::AdamOptions{.lr = c.lr, .weight_decay = c.weight_decay});
  if (n == "adamw")
    return std::make_unique<optim::AdamW>(params,
                                          optim::AdamWOptions{.lr = c.lr, .weight_decay = c.weight_decay});
  if (n == "rmsprop")
    return std::make_unique<optim::RMSprop>(
        params, optim::RMSpropOptions{.lr = c.lr, .momentum = c.momentum, .weight_decay = c.weight_decay});
  throw ConfigError("optimizer.name: expected sgd, momentum, nesterov, adam, adamw or rmsprop, got '" + n +
                    "'");
}

std::unique_ptr<optim::Scheduler> make_scheduler(const OptimizerConfig& c, optim::Optimizer& opt,
                                                 std::int64_t epochs) {
  const Schedule s = parse_schedule(c.schedule);
  if (s.kind == "cosine") return std::make_unique<optim::CosineAnnealingLR>(opt, static_cast<int>(epochs));
  if (s.kind == "step") return std::make_unique<optim::StepLR>(opt, static_cast<int>(s.epochs), s.gamma);
  if (s.kind == "exponential") return std::make_unique<optim::ExponentialLR>(opt, s.gamma);
  if (s.kind == "warmup") return std::make_unique<optim::LinearWarmup>(opt, static_cast<int>(s.epochs));
  return nullptr;
}

std::shared_ptr<nn::Sequential> make_layer_network(const std::vector<LayerSpec>& layers,
                                                   std::int64_t features, std::int64_t outputs,
                                                   const io::Preprocessing& pre, Generator& gen,
                                                   const std::string& init) {
  BP_CHECK(!layers.empty(), ConfigError, "make_layer_network: the layer list is empty");
  const std::string& first = layers.front().type;
  const bool on_images = first.starts_with("conv2d") || first.starts_with("conv_transpose") ||
                         first.find("pool2d") != std::string::npos || first == "dropout2d";
  if (!(on_images && pre.input == "image" && pre.image_shape.size() == 2))
    return io::build_network(layers, {features}, outputs, gen, init);
  const Shape image{1, pre.image_shape[0], pre.image_shape[1]};
  const auto body = io::build_network(layers, image, outputs, gen, init);
  auto net = std::make_shared<nn::Sequential>(nn::Unflatten(1, image));
  for (std::size_t i = 0; i < body->size(); ++i) net->push_back((*body)[i]);
  return net;
}

void check_layer_list_keys(const std::vector<std::string>& given, const std::string& arch) {
  for (const KeyInfo& k : keys()) {
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

}  // namespace backprop::config
