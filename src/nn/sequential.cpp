// Sequential: children "0", "1", ... applied in order.
#include <backprop/nn/activation.hpp>
#include <backprop/nn/batchnorm.hpp>
#include <backprop/nn/pooling.hpp>
#include <backprop/nn/sequential.hpp>
#include <sstream>
#include <typeinfo>

namespace backprop::nn {

void Sequential::push_back(ModulePtr module) {
  BP_CHECK(module != nullptr, ValueError, "Sequential::push_back: null module at position ", layers_.size());
  register_module(std::to_string(layers_.size()), module);
  layers_.push_back(std::move(module));
}

ModulePtr Sequential::operator[](std::size_t i) const {
  BP_CHECK(i < layers_.size(), IndexError, "Sequential: index ", i, " out of range for ", layers_.size(),
           " modules");
  return layers_[i];
}

namespace {
/// A MaxPool2d with a 2x2 window, stride 2 and neither padding, dilation nor ceil_mode: the one
/// BatchNorm2d::forward_relu_pool fuses.
bool is_plain_2x2_max_pool(const Module& m) {
  if (typeid(m) != typeid(MaxPool2d)) return false;
  const auto& pool = static_cast<const MaxPool2d&>(m);
  const PoolOptions& o = pool.options();
  const bool stride_2 = (o.stride.h == 0 && o.stride.w == 0) || (o.stride.h == 2 && o.stride.w == 2);
  return pool.kernel_size().h == 2 && pool.kernel_size().w == 2 && stride_2 && o.padding.h == 0 &&
         o.padding.w == 0 && o.dilation.h == 1 && o.dilation.w == 1 && !o.ceil_mode;
}
}  // namespace

Tensor Sequential::forward(const Tensor& x) {
  Tensor h = x;
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    // A BatchNorm2d followed by a ReLU (exactly these classes), and a 2x2 max pool after that, runs as one
    // op: the ReLU's and the pool's passes over the image are folded into the normalisation's (the same
    // values and gradients up to rounding; docs/performance.md).
    Module& layer = *layers_[i];
    if (i + 1 < layers_.size() && typeid(layer) == typeid(BatchNorm2d) &&
        typeid(*layers_[i + 1]) == typeid(ReLU)) {
      auto& bn = static_cast<BatchNorm2d&>(layer);
      if (i + 2 < layers_.size() && is_plain_2x2_max_pool(*layers_[i + 2])) {
        h = bn.forward_relu_pool(h);
        i += 2;
      } else {
        h = bn.forward_relu(h);
        ++i;
      }
      continue;
    }
    h = layer.forward(h);
  }
  return h;
}

Tensors Sequential::forward(const Tensors& inputs) {
  Tensors h = inputs;
  for (auto& layer : layers_) h = layer->forward(h);
  return h;
}

Tensors Sequential::forward_all(const Tensor& x) {
  Tensors outs;
  outs.reserve(layers_.size());
  Tensor h = x;
  for (auto& layer : layers_) {
    h = layer->forward(h);
    outs.push_back(h);
  }
  return outs;
}

std::string Sequential::repr() const {
  std::ostringstream out;
  out << "Sequential(";
  for (std::size_t i = 0; i < layers_.size(); ++i) {
    // Indent nested containers' lines by two more spaces.
    std::string child = layers_[i]->repr();
    std::string indented;
    for (char c : child) {
      indented += c;
      if (c == '\n') indented += "  ";
    }
    out << "\n  (" << i << "): " << indented;
  }
  out << (layers_.empty() ? ")" : "\n)");
  return out.str();
}

}  // namespace backprop::nn
