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
