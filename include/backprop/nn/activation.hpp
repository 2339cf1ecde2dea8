// backprop/nn/activation.hpp — element-wise activations (and softmax) as modules, for Sequential.
//
// Each is a thin wrapper over the op of the same name in backprop/ops.hpp, which holds the derivative:
//   Sigmoid   y = 1 / (1 + e^-x)               dy/dx = y (1 - y)      (at most 1/4: deep stacks vanish)
//   Tanh      y = tanh x                       dy/dx = 1 - y^2
//   ReLU      y = max(x, 0)                    dy/dx = [x > 0]
//   LeakyReLU y = x if x > 0 else slope x      dy/dx = 1 or slope
//   Softmax   y_i = e^x_i / sum_j e^x_j        along `axis`
//   LogSoftmax y = x - log sum_j e^x_j         along `axis` (pair it with loss::NLL)
//   Identity  y = x
// They have no parameters and accept any shape and either dtype.
//
// Example:
//   bp::nn::Sequential net{bp::nn::Linear(2, 8, gen), bp::nn::Tanh(),
//                          bp::nn::Linear(8, 1, gen), bp::nn::Sigmoid()};
#pragma once

#include <backprop/nn/module.hpp>
#include <cstdint>
#include <string>

namespace backprop::nn {

class Sigmoid : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string repr() const override { return "Sigmoid()"; }
};

class Tanh : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string repr() const override { return "Tanh()"; }
};

class ReLU : public Module {
 public:
  Tensor forward(const Tensor& x) override;
  std::string repr() const override { return "ReLU()"; }
};

class LeakyReLU : public Module {
 public:
  /// Throws ValueError when slope is not finite.
  explicit LeakyReLU(double slope = 0.01);
  Tensor forward(const Tensor& x) override;
  /// "LeakyReLU(slope=0.01)"
  std::string repr() const override;
  double slope() const { return slope_; }

 private:
  double slope_;
};

class Softmax : public Module {
 public:
  explicit Softmax(std::int64_t axis = -1) : axis_(axis) {}
  /// Throws IndexError when the axis does not exist in x.
  Tensor forward(const Tensor& x) override;
  /// "Softmax(axis=-1)"
  std::string repr() const override;
  std::int64_t axis() const { return axis_; }

 private:
  std::int64_t axis_;
};

class LogSoftmax : public Module {
 public:
  explicit LogSoftmax(std::int64_t axis = -1) : axis_(axis) {}
  Tensor forward(const Tensor& x) override;
  /// "LogSoftmax(axis=-1)"
  std::string repr() const override;
  std::int64_t axis() const { return axis_; }

 private:
  std::int64_t axis_;
};

class Identity : public Module {
 public:
  Tensor forward(const Tensor& x) override { return x; }
  std::string repr() const override { return "Identity()"; }
};

}  // namespace backprop::nn
