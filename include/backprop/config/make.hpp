// backprop/config/make.hpp — the library objects a configuration (backprop/config.hpp) names: the dense
// network's architecture (or a layer list's network), the loss, the optimiser and the learning-rate
// schedule. `backprop train` builds its run with these, so a program that reads the same TOML file trains
// the same way.
//
// Example:
//   bp::config::Config cfg;                                     // or load_toml("run.toml")
//   cfg.model.layers = {16};
//   const bp::io::Architecture arch = bp::config::make_architecture(cfg, 4, 3);   // 4-16-3, init resolved
//   bp::Generator gen(cfg.run.seed);
//   auto net = bp::io::build_network(arch, gen);
//   auto loss = bp::config::make_loss(cfg.train.loss, bp::data::Task::classification);   // CrossEntropy
//   auto opt = bp::config::make_optimizer(cfg.optimizer, net->parameters());              // Adam, lr 0.001
//   auto schedule = bp::config::make_scheduler(cfg.optimizer, *opt, cfg.train.epochs);   // cosine
//   cfg.model.arch = "lenet5";                                   // a layer list: rows of 28x28 images in
//   auto lenet = bp::config::make_layer_network(bp::config::network_layers(cfg.model), 784, 10,
//                                               {.input = "image", .image_shape = {28, 28}}, gen);
#pragma once

#include <backprop/config.hpp>
#include <backprop/data/dataset.hpp>
#include <backprop/io/model_file.hpp>
#include <backprop/loss.hpp>
#include <backprop/nn.hpp>
#include <backprop/optim.hpp>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace backprop::config {

/// The dense network of config.model with `inputs` features and `outputs` outputs; init "auto" resolved
/// (Xavier uniform for sigmoid and tanh, Kaiming uniform otherwise).
io::Architecture make_architecture(const Config& config, std::int64_t inputs, std::int64_t outputs);

/// The network of a layer list (network_layers(config.model): a preset or `[[model.layer]]` tables) for rows
/// of `features` values and `outputs` outputs: io::build_network(layers, {features}, outputs, gen, init).
/// On image data (preprocessing.input "image" with a 2-D image_shape [H, W]) whose first layer works on
/// images (a convolution, pooling or dropout2d), an Unflatten to [1, H, W] comes first, so the network takes
/// the same rows an MLP does (and `predict` / `eval` feed it unchanged). Throws ConfigError as build_network.
std::shared_ptr<nn::Sequential> make_layer_network(const std::vector<LayerSpec>& layers,
                                                   std::int64_t features, std::int64_t outputs,
                                                   const io::Preprocessing& preprocessing, Generator& gen,
                                                   const std::string& init = "auto");

/// With a layer list (model.arch `arch`, not "mlp") the keys of the dense MLP (model.layers, activation,
/// batchnorm, dropout, dropconnect) do not apply: throws ConfigError naming the first of them in `given` (the
/// keys a configuration file or a flag set) and its flag, and saying how to change the layers instead.
void check_layer_list_keys(const std::vector<std::string>& given, const std::string& arch);

/// train.loss: "cross-entropy" on logits, or "mse" (for classification on the softmax probabilities against
/// one-hot targets, loss::SoftmaxMSE; for regression on the outputs); "auto" picks cross-entropy for
/// classification, mse for regression. Throws ConfigError for another name.
std::unique_ptr<loss::Loss> make_loss(const std::string& name, data::Task task);

/// optimizer.name with its lr, momentum and weight decay: sgd, momentum, nesterov (SGD), adam, adamw,
/// rmsprop. Throws ConfigError for another name.
std::unique_ptr<optim::Optimizer> make_optimizer(const OptimizerConfig& config, const Tensors& params);

/// The schedule of optimizer.schedule (parse_schedule()), stepped once per epoch; nullptr for "none".
/// "cosine" anneals over `epochs`. Throws ConfigError for a schedule text parse_schedule() refuses.
std::unique_ptr<optim::Scheduler> make_scheduler(const OptimizerConfig& config, optim::Optimizer& optimizer,
                                                 std::int64_t epochs);

}  // namespace backprop::config
