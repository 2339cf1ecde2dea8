// Config -> architecture, loss, optimiser and schedule.
#include "setup.hpp"

#include <backprop/error.hpp>
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
