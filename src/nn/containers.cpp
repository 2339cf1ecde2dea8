// ModuleList, ModuleDict and Residual: registration of children under index or key names.
#include <backprop/nn/containers.hpp>
#include <backprop/ops.hpp>
#include <sstream>

namespace backprop::nn {

namespace {
// "Name(\n  (key): child repr, its own lines indented by two more spaces\n)".
std::string container_repr(const std::string& name,
                           const std::vector<std::pair<std::string, ModulePtr>>& children) {
  std::ostringstream out;
  out << name << "(";
  for (const auto& [key, child] : children) {
    std::string indented;
    for (char c : child->repr()) {
      indented += c;
      if (c == '\n') indented += "  ";
    }
    out << "\n  (" << key << "): " << indented;
  }
  out << (children.empty() ? ")" : "\n)");
  return out.str();
}
}  // namespace

void ModuleList::append_(ModulePtr m) {
  BP_CHECK(m != nullptr, ValueError, "ModuleList::push_back: null module at position ", items_.size());
  register_module(std::to_string(items_.size()), m);
  items_.push_back(std::move(m));
}

ModulePtr ModuleList::operator[](std::size_t i) const {
  BP_CHECK(i < items_.size(), IndexError, "ModuleList: index ", i, " out of range for ", items_.size(),
           " modules");
  return items_[i];
}

Tensor ModuleList::forward(const Tensor&) {
  throw ValueError(
      "ModuleList has no forward of its own: call its modules (list[i](x)) from a module's forward");
}

std::string ModuleList::repr() const {
  return container_repr("ModuleList", named_children());
}

void ModuleDict::insert_(std::string key, ModulePtr m) {
  BP_CHECK(m != nullptr, ValueError, "ModuleDict::insert: null module for key '", key, "'");
  register_module(key, m);  // checks the key: not empty, no '.', not taken
  items_.emplace_back(std::move(key), std::move(m));
}

bool ModuleDict::contains(const std::string& key) const {
  for (const auto& [k, _] : items_)
    if (k == key) return true;
  return false;
}

ModulePtr ModuleDict::operator[](const std::string& key) const {
  for (const auto& [k, m] : items_)
    if (k == key) return m;
  std::string present;
  for (const auto& [k, _] : items_) present += (present.empty() ? "'" : ", '") + k + "'";
  throw IndexError(backprop::detail::cat("ModuleDict: no module under key '", key, "'; the keys are ",
                                         present.empty() ? "(none)" : present));
}

std::vector<std::string> ModuleDict::keys() const {
  std::vector<std::string> out;
  for (const auto& [k, _] : items_) out.push_back(k);
  return out;
}

Tensor ModuleDict::forward(const Tensor&) {
  throw ValueError(
      "ModuleDict has no forward of its own: call its modules (dict[key](x)) from a module's forward");
}

std::string ModuleDict::repr() const {
  return container_repr("ModuleDict", items_);
}

void Residual::init_() {
  BP_CHECK(block_ != nullptr, ValueError, "Residual: the wrapped module is a null pointer");
  register_module("block", block_);
}

Tensor Residual::forward(const Tensor& x) {
  const Tensor fx = block_->forward(x);
  BP_CHECK(fx.shape() == x.shape(), ShapeError, "Residual: the block maps input ", x.shape(), " to ",
           fx.shape(), "; x + block(x) needs the same shape (block: ", block_->repr(), ")");
  return add(x, fx);
}

std::string Residual::repr() const {
  return container_repr("Residual", named_children());
}

}  // namespace backprop::nn
