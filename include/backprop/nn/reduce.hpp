// backprop/nn/reduce.hpp — Mean: the average over one dimension, as a layer.
//
// Mean(dim, keepdim) averages its input over dimension `dim` (negative counts from the end), the pooling step
// of a bag-of-words text classifier: token vectors [N, L, D] from an Embedding become one vector per document
// [N, D] with Mean(1). With keepdim the averaged dimension stays, of size 1. No parameters; the gradient is
// the output gradient spread evenly over the averaged positions (backprop::mean). Include this header
// itself (backprop/nn.hpp does not).
//
// Example:
//   bp::Generator gen(0);
//   bp::nn::Sequential net{bp::nn::Embedding(100, 16, gen), bp::nn::Mean(1), bp::nn::Linear(16, 3, gen)};
//   bp::Tensor ids = bp::from_vector(std::vector<double>{5, 7, 0, 3, 3, 9}, {2, 3});   // 2 documents
//   bp::Tensor logits = net(ids);                       // [2, 3, 16] -> [2, 16] -> [2, 3]
#pragma once

#include <backprop/nn/module.hpp>
#include <cstdint>
#include <string>

namespace backprop::nn {

class Mean : public Module {
 public:
  explicit Mean(std::int64_t dim, bool keepdim = false) : dim_(dim), keepdim_(keepdim) {}
  /// Throws ShapeError naming the input shape when dim is out of range for x.
  Tensor forward(const Tensor& x) override;
  /// "Mean(dim=1, keepdim=false)"
  std::string repr() const override;
  std::int64_t dim() const { return dim_; }
  bool keepdim() const { return keepdim_; }

 private:
  std::int64_t dim_;
  bool keepdim_;
};

}  // namespace backprop::nn
