// backprop/nn/reshape.hpp — layers that only change the shape: Flatten and Unflatten.
//
// Flatten(start_dim, end_dim) merges dimensions start_dim..end_dim (inclusive; negative counts from the end)
// into one, so the default Flatten() turns images [N, C, H, W] into rows [N, C*H*W]. Unflatten(dim, sizes)
// splits dimension `dim` into `sizes` (one entry may be -1, inferred).
// Neither has parameters; both are reshapes of contiguous tensors, so they copy nothing in the forward pass and the
// gradient is reshaped back.
//
// Example:
//   bp::Generator gen(0);
//   bp::nn::Sequential net{bp::nn::Flatten(), bp::nn::Linear(28 * 28, 10, gen)};
//   bp::Tensor logits = net(bp::randn({8, 1, 28, 28}, gen));   // [8, 1, 28, 28] -> [8, 784] -> [8, 10]
//   bp::Tensor img = bp::nn::Unflatten(1, {1, 28, 28})(bp::randn({8, 784}, gen));   // -> [8, 1, 28, 28]
#pragma once

#include <backprop/nn/module.hpp>
#include <cstdint>
#include <string>

namespace backprop::nn {

class Flatten : public Module {
 public:
  explicit Flatten(std::int64_t start_dim = 1, std::int64_t end_dim = -1)
      : start_(start_dim), end_(end_dim) {}
  /// Throws ShapeError naming the input shape when start_dim or end_dim is out of range for x, or when
  /// start_dim comes after end_dim.
  Tensor forward(const Tensor& x) override;
  /// "Flatten(start_dim=1, end_dim=-1)"
  std::string repr() const override;
  std::int64_t start_dim() const { return start_; }
  std::int64_t end_dim() const { return end_; }

 private:
  std::int64_t start_, end_;
};

class Unflatten : public Module {
 public:
  /// Throws ValueError when sizes is empty, has an entry below 1 other than a single -1.
  Unflatten(std::int64_t dim, Shape sizes);
  /// Throws ShapeError naming the input shape when dim is out of range or sizes do not multiply to the size of
  /// dimension dim.
  Tensor forward(const Tensor& x) override;
  /// "Unflatten(dim=1, sizes=[1, 28, 28])"
  std::string repr() const override;
  std::int64_t dim() const { return dim_; }
  const Shape& sizes() const { return sizes_; }

 private:
  std::int64_t dim_;
  Shape sizes_;
};

}  // namespace backprop::nn
