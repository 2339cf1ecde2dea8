// backprop/io/module_tree.hpp — any network as data: each module's type name, options and named children.
//
// save_model(path, module) (model_file.hpp) stores the module tree as JSON in the model file's metadata,
// beside the tensors, and load_module(path) builds the same network again without its code. Every built-in
// layer and container is registered; a module type of your own is registered once, by name, with a function
// that writes its options and a factory that builds it from them (and from its already built children).
//
// Example:
//   struct Scale : bp::nn::Module {                        // y = factor * x
//     double factor;
//     explicit Scale(double f) : factor(f) {}
//     bp::Tensor forward(const bp::Tensor& x) override { return bp::mul(x, factor); }
//     std::string repr() const override { return "Scale()"; }
//   };
//   bp::io::register_module<Scale>(
//       "Scale", [](const Scale& s) { return bp::io::ModuleOptions().set("factor", s.factor); },
//       [](const bp::io::ModuleOptions& o, const bp::io::ModuleChildren&) {
//         return std::make_shared<Scale>(o.number("factor"));
//       });
//   std::string tree = bp::io::module_tree(Scale(2.0));   // {"type":"Scale","options":{"factor":2.0},...}
#pragma once

#include <backprop/nn/module.hpp>
#include <backprop/tensor.hpp>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <string>
#include <typeindex>
#include <utility>
#include <variant>
#include <vector>

namespace backprop::io {

/// A module's options as the tree stores them: named booleans, integers, numbers, strings and integer lists.
/// The readers throw FileError naming the file, the module's path in the tree, its type and the option when
/// the option is missing or of another kind, so a factory needs no checks of its own for those.
class ModuleOptions {
 public:
  using Value = std::variant<bool, std::int64_t, double, std::string, std::vector<std::int64_t>>;

  ModuleOptions& set(const std::string& name, bool value);
  ModuleOptions& set(const std::string& name, int value) { return set(name, std::int64_t{value}); }
  ModuleOptions& set(const std::string& name, std::int64_t value);
  ModuleOptions& set(const std::string& name, double value);
  ModuleOptions& set(const std::string& name, std::string value);
  ModuleOptions& set(const std::string& name, const char* value) { return set(name, std::string(value)); }
  ModuleOptions& set(const std::string& name, std::vector<std::int64_t> value);

  bool boolean(const std::string& name) const;
  std::int64_t integer(const std::string& name) const;
  double number(const std::string& name) const;  // an integer is accepted too
  const std::string& text(const std::string& name) const;
  std::vector<std::int64_t> integers(const std::string& name) const;
  bool contains(const std::string& name) const { return values_.contains(name); }
  const std::map<std::string, Value>& values() const { return values_; }

  /// Reserves the elements of a tensor the factory is about to allocate, so that a damaged or hostile tree
  /// cannot make loading allocate more than the file's tensors hold: throws FileError when `shape` has a
  /// negative size or more elements than remain. Built-in factories call it before building; outside
  /// loading (no budget) it checks only the sizes.
  void claim(std::initializer_list<std::int64_t> shape) const;

  /// Where these options come from, for error messages: set by the loader.
  void set_context(std::string where, std::shared_ptr<std::int64_t> budget);

 private:
  const Value& find_(const std::string& name, const char* kind) const;
  std::map<std::string, Value> values_;
  std::string where_ = "module options";
  std::shared_ptr<std::int64_t> budget_;  // elements left to claim; null: no limit
};

/// A container's children, built already, in the tree's order, with their names.
using ModuleChildren = std::vector<std::pair<std::string, nn::ModulePtr>>;
/// Builds a module from its options and children. Throw any backprop::Error on bad values; the loader turns it
/// into a FileError naming the file and the module's path.
using ModuleFactory = std::function<nn::ModulePtr(const ModuleOptions&, const ModuleChildren&)>;
using ModuleOptionsWriter = std::function<ModuleOptions(const nn::Module&)>;

/// Registers the C++ type `type` under `name` (letters, digits and '_', unique). The loader checks afterwards
/// that the built module has exactly the children the tree lists, under the same names. Throws ValueError on
/// a bad name, or on a name or C++ type registered already. Thread-safe.
void register_module_type(std::type_index type, const std::string& name, ModuleOptionsWriter options,
                          ModuleFactory factory);

/// register_module_type for a module class M: `options` gets the module as an M.
template <class M>
void register_module(const std::string& name, std::function<ModuleOptions(const M&)> options,
                     ModuleFactory factory) {
  register_module_type(
      typeid(M), name, [options](const nn::Module& m) { return options(static_cast<const M&>(m)); },
      std::move(factory));
}
/// For a module class without options.
template <class M>
void register_module(const std::string& name, ModuleFactory factory) {
  register_module<M>(
      name, [](const M&) { return ModuleOptions(); }, std::move(factory));
}

/// The registered type names, sorted.
std::vector<std::string> registered_module_types();

/// The tree of `module` as compact JSON: {"type", "options", "children": [{"name", ...}, ...]}. A module that
/// appears a second time in the tree (a shared layer) is written as {"name", "same_as": "<first path>"}.
/// Throws ValueError naming the module's path and repr when its C++ type is not registered.
std::string module_tree(const nn::Module& module);

/// Builds the network a tree describes and loads `state` into it (strictly: every tensor the network has,
/// no other, same shapes and dtypes), in eval mode. Throws FileError naming `origin` and the path in the tree
/// (or the tensor) on anything that does not fit: JSON that is not a tree, missing fields or fields of the
/// wrong type, an unknown type name, children that differ from what the factory built, tensors missing,
/// unexpected or of another shape or dtype.
nn::ModulePtr build_module_tree(const std::string& tree_json, const std::map<std::string, Tensor>& state,
                                const std::string& origin);

}  // namespace backprop::io
