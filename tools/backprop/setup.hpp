// From a Config to the library objects of a run: architecture, loss, optimiser, schedule.
#pragma once

#include <backprop/config.hpp>
#include <backprop/io/model_file.hpp>
#include <backprop/loss.hpp>
#include <backprop/optim.hpp>
#include <memory>

namespace cli {

/// The network for `config` with `inputs` features and `outputs` outputs; init "auto" resolved (Kaiming for
/// relu / leaky_relu, Xavier for sigmoid / tanh).
backprop::io::Architecture make_architecture(const backprop::config::Config& config, std::int64_t inputs,
                                             std::int64_t outputs);

/// The network of a layer list (--arch lenet5 | cnn | custom) for rows of `features` values. On image data
/// whose first layer works on images (a convolution or pooling), an Unflatten to [1, H, W] comes first, so the
/// network takes the same rows the MLP does (and `predict` / `eval` feed it unchanged).
std::shared_ptr<backprop::nn::Sequential> build_layers(const std::vector<backprop::config::LayerSpec>& layers,
                                                       std::int64_t features,
                                                       const backprop::io::Preprocessing& preprocessing,
                                                       std::int64_t outputs, backprop::Generator& gen,
                                                       const std::string& init);

/// With a layer list (--arch other than mlp) the keys of the dense MLP do not apply: giving one is a
/// ConfigError naming it and saying how to change the layers. `given`: the keys a --config file or flag set.
void check_layer_list_flags(const std::vector<std::string>& given, const std::string& arch);

/// cross-entropy on logits, or mse (for classification: on the softmax probabilities against one-hot targets;
/// for regression: on the outputs). "auto" picks cross-entropy for classification, mse for regression.
std::unique_ptr<backprop::loss::Loss> make_loss(const std::string& name, bool regression);

std::unique_ptr<backprop::optim::Optimizer> make_optimizer(const backprop::config::OptimizerConfig& config,
                                                           const backprop::Tensors& params);

/// The schedule of optimizer.schedule (nullptr for none); cosine anneals over `epochs`.
std::unique_ptr<backprop::optim::Scheduler> make_scheduler(const backprop::config::OptimizerConfig& config,
                                                           backprop::optim::Optimizer& optimizer,
                                                           std::int64_t epochs);

}  // namespace cli
