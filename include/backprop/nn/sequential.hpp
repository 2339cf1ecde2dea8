// backprop/nn/sequential.hpp — a chain of modules applied in order.
//
// Sequential is built from module values of any type (each is moved into a std::shared_ptr) or from shared
// pointers to modules (kept as given, so a layer can be shared). Children are named "0", "1", ..., so the
// parameters of `Sequential{Linear, ReLU, Linear}` are "0.weight", "0.bias", "2.weight", "2.bias".
//
// Example:
//   bp::Generator gen(0);
//   bp::nn::Sequential net{bp::nn::Linear(784, 256, gen), bp::nn::ReLU(), bp::nn::Dropout(0.2, gen),
//                          bp::nn::Linear(256, 10, gen)};
//   bp::Tensor logits = net(x);                             // [N, 784] -> [N, 10]
//   auto first = net.at<bp::nn::Linear>(0);                 // std::shared_ptr<Linear>
//   bp::Tensors acts = net.forward_all(x);                  // each layer's output, for diagnostics
#pragma once

#include <backprop/error.hpp>
#include <backprop/nn/module.hpp>
#include <concepts>
#include <cstddef>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

namespace backprop::nn {

class Sequential;

namespace detail {
template <class T>
struct is_module_ptr : std::false_type {};
template <class M>
struct is_module_ptr<std::shared_ptr<M>> : std::bool_constant<std::derived_from<M, Module>> {};
}  // namespace detail

/// A module value (Linear(...), ReLU()) or a std::shared_ptr to one.
template <class T>
concept ModuleLike =
    std::derived_from<std::remove_cvref_t<T>, Module> || detail::is_module_ptr<std::remove_cvref_t<T>>::value;

class Sequential : public Module {
 public:
  Sequential() = default;
  /// Sequential{Linear(...), ReLU(), ...}: each argument is appended in order (see push_back). A single
  /// Sequential argument is copied or moved (shallow: the children are shared), not nested.
  template <ModuleLike... Ms>
  requires(sizeof...(Ms) > 0 &&
           !(sizeof...(Ms) == 1 && (std::same_as<std::remove_cvref_t<Ms>, Sequential> && ...)))
      Sequential(Ms&&... modules) {
    (push_back(std::forward<Ms>(modules)), ...);
  }

  /// Appends a module value (moved or copied into a new shared_ptr) under the name std::to_string(size()).
  template <class M>
  requires std::derived_from<std::remove_cvref_t<M>, Module>
  void push_back(M&& module) {
    push_back(ModulePtr(std::make_shared<std::remove_cvref_t<M>>(std::forward<M>(module))));
  }
  /// Appends a shared module (not copied). Throws ValueError on a null pointer.
  void push_back(ModulePtr module);

  std::size_t size() const { return layers_.size(); }
  /// The i-th module. Throws IndexError when i >= size().
  ModulePtr operator[](std::size_t i) const;
  /// The i-th module as an M. Throws IndexError when i >= size(), ValueError naming the module's repr() when
  /// it is not an M.
  template <class M>
  std::shared_ptr<M> at(std::size_t i) const {
    auto p = std::dynamic_pointer_cast<M>((*this)[i]);
    BP_CHECK(p != nullptr, ValueError, "Sequential::at: module ", i, " is ", (*this)[i]->repr(),
             ", not of the requested type");
    return p;
  }

  /// Applies each module in order; an empty Sequential returns x.
  Tensor forward(const Tensor& x) override;
  /// Several tensors through the chain: each module's outputs are the next one's inputs (Module::forward(
  /// const Tensors&)), so a two-input module may come first and one-tensor modules after it.
  Tensors forward(const Tensors& inputs) override;
  /// The output of every module, in order: result[i] = module i applied to result[i - 1] (result[-1] = x), so
  /// result.back() is forward(x). For diagnostics (activation statistics, the delta rule step by step).
  Tensors forward_all(const Tensor& x);
  /// "Sequential(\n  (0): Linear(in=784, out=256, bias=true)\n  (1): ReLU()\n)"
  std::string repr() const override;

 private:
  std::vector<ModulePtr> layers_;
};

}  // namespace backprop::nn
