// backprop/nn/containers.hpp — ModuleList, ModuleDict and Residual.
//
// ModuleList holds modules under the names "0", "1", ... and ModuleDict under string keys (in insertion
// order), so their parameters are named "0.weight", "enc.weight" as in PyTorch. Neither has a forward of its
// own: a custom module registers one as a child and calls its entries in its own forward. Residual(module)
// computes y = x + module(x). Modules are shared, not copied, when given as std::shared_ptr, so one layer can
// sit in several places; its parameters are still listed, saved and counted once (see module.hpp).
//
// Example:
//   bp::Generator gen(0);
//   bp::nn::ModuleList blocks{bp::nn::Linear(8, 8, gen), bp::nn::Linear(8, 8, gen)};
//   bp::nn::ModuleDict heads;
//   heads.insert("cls", bp::nn::Linear(8, 3, gen));
//   bp::Tensor h = bp::randn({4, 8}, gen);
//   for (std::size_t i = 0; i < blocks.size(); ++i) h = bp::relu((*blocks[i])(h));
//   bp::Tensor logits = (*heads["cls"])(h);                    // state_dict: "cls.weight", "cls.bias"
//   bp::nn::Residual block(bp::nn::Sequential{bp::nn::LayerNorm(8), bp::nn::Linear(8, 8, gen)});
//   bp::Tensor y = block(h);                                   // h + Linear(LayerNorm(h))
#pragma once

#include <backprop/nn/module.hpp>
#include <backprop/nn/sequential.hpp>
#include <concepts>
#include <cstddef>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace backprop::nn {

namespace detail {
/// A module value moved or copied into a new shared_ptr, or a shared_ptr kept as given.
template <ModuleLike M>
ModulePtr to_module_ptr(M&& m) {
  if constexpr (std::derived_from<std::remove_cvref_t<M>, Module>)
    return std::make_shared<std::remove_cvref_t<M>>(std::forward<M>(m));
  else
    return ModulePtr(std::forward<M>(m));
}
}  // namespace detail

class ModuleList : public Module {
 public:
  ModuleList() = default;
  /// ModuleList{Linear(...), ptr, ...}: each argument appended in order (values copied or moved, pointers
  /// shared).
  template <ModuleLike... Ms>
  requires(sizeof...(Ms) > 0 &&
           !(sizeof...(Ms) == 1 && (std::same_as<std::remove_cvref_t<Ms>, ModuleList> && ...)))
      ModuleList(Ms&&... modules) {
    (push_back(std::forward<Ms>(modules)), ...);
  }
  /// Appends under the name std::to_string(size()). Throws ValueError on a null pointer.
  template <ModuleLike M>
  void push_back(M&& module) {
    append_(detail::to_module_ptr(std::forward<M>(module)));
  }

  std::size_t size() const { return items_.size(); }
  /// The i-th module. Throws IndexError when i >= size().
  ModulePtr operator[](std::size_t i) const;
  /// The i-th module as an M. Throws IndexError when i >= size(), ValueError when it is not an M.
  template <class M>
  std::shared_ptr<M> at(std::size_t i) const {
    auto p = std::dynamic_pointer_cast<M>((*this)[i]);
    BP_CHECK(p != nullptr, ValueError, "ModuleList::at: module ", i, " is ", (*this)[i]->repr(),
             ", not of the requested type");
    return p;
  }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }

  /// A list has no forward of its own: throws ValueError saying to call its entries.
  Tensor forward(const Tensor& x) override;
  /// "ModuleList(\n  (0): Linear(...)\n)"
  std::string repr() const override;

 private:
  void append_(ModulePtr m);
  std::vector<ModulePtr> items_;
};

class ModuleDict : public Module {
 public:
  ModuleDict() = default;
  /// Adds `module` under `key` (no dots, not empty, not taken). Throws ValueError otherwise or on a null
  /// pointer.
  template <ModuleLike M>
  void insert(std::string key, M&& module) {
    insert_(std::move(key), detail::to_module_ptr(std::forward<M>(module)));
  }
  std::size_t size() const { return items_.size(); }
  bool contains(const std::string& key) const;
  /// The module under `key`. Throws IndexError naming the key and the keys present when there is none.
  ModulePtr operator[](const std::string& key) const;
  /// The module under `key` as an M. Throws like operator[], and ValueError when it is not an M.
  template <class M>
  std::shared_ptr<M> at(const std::string& key) const {
    auto p = std::dynamic_pointer_cast<M>((*this)[key]);
    BP_CHECK(p != nullptr, ValueError, "ModuleDict::at: module '", key, "' is ", (*this)[key]->repr(),
             ", not of the requested type");
    return p;
  }
  /// The keys, in insertion order.
  std::vector<std::string> keys() const;

  /// A dict has no forward of its own: throws ValueError saying to call its entries.
  Tensor forward(const Tensor& x) override;
  /// "ModuleDict(\n  (enc): Linear(...)\n)"
  std::string repr() const override;

 private:
  void insert_(std::string key, ModulePtr m);
  std::vector<std::pair<std::string, ModulePtr>> items_;
};

class Residual : public Module {
 public:
  /// Wraps `module` (registered as the child "block", so its parameters are "block.weight", ...). Throws
  /// ValueError on a null pointer.
  template <ModuleLike M>
  explicit Residual(M&& module) : block_(detail::to_module_ptr(std::forward<M>(module))) {
    init_();
  }

  /// x + block(x). Throws ShapeError naming both shapes when block(x) does not have x's shape.
  Tensor forward(const Tensor& x) override;
  /// "Residual(\n  (block): Linear(...)\n)"
  std::string repr() const override;
  const ModulePtr& block() const { return block_; }

 private:
  void init_();
  ModulePtr block_;
};

}  // namespace backprop::nn
