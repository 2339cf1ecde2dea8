// From a Config to the library objects of a run: architecture, loss, optimiser, schedule.
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

}  // namespace backprop::config
