// Module: registration of parameters, buffers and children; recursive listing; state dicts; train/eval.
#include <backprop/nn/module.hpp>
#include <set>
#include <sstream>

namespace backprop::nn {

void Module::check_new_name_(const std::string& name, const char* what) const {
  BP_CHECK(!name.empty() && name.find('.') == std::string::npos, ValueError, "Module: ", what, " name '",
           name, "' must be non-empty and contain no '.'");
  BP_CHECK(!names_.contains(name), ValueError, "Module: cannot register ", what, " '", name,
           "': the name is already used in ", repr());
}

Tensor Module::register_parameter(std::string name, Tensor t) {
  check_new_name_(name, "parameter");
  BP_CHECK(t.defined(), ValueError, "Module: parameter '", name, "' is an undefined tensor");
  t.requires_grad_(true);
  names_.insert(name);
  parameters_.emplace_back(std::move(name), t);
  return t;
}

Tensor Module::register_buffer(std::string name, Tensor t) {
  check_new_name_(name, "buffer");
  BP_CHECK(t.defined(), ValueError, "Module: buffer '", name, "' is an undefined tensor");
  names_.insert(name);
  buffers_.emplace_back(std::move(name), t);
  return t;
}

ModulePtr Module::register_module(std::string name, ModulePtr m) {
  check_new_name_(name, "module");
  BP_CHECK(m != nullptr, ValueError, "Module: child module '", name, "' is a null pointer");
  names_.insert(name);
  children_.emplace_back(std::move(name), m);
  return m;
}

// Depth first, own tensors before the children's, so the order is the registration order at every level.
void Module::collect_(const std::string& prefix, bool buffers,
                      std::vector<std::pair<std::string, Tensor>>& out) const {
  for (const auto& [name, t] : buffers ? buffers_ : parameters_) out.emplace_back(prefix + name, t);
  for (const auto& [name, child] : children_) child->collect_(prefix + name + ".", buffers, out);
}

namespace {
// A shared layer appears under several names; keep the first so optimisers update each tensor once.
std::vector<std::pair<std::string, Tensor>> dedupe(std::vector<std::pair<std::string, Tensor>> all) {
  std::set<const TensorImpl*> seen;
  std::vector<std::pair<std::string, Tensor>> out;
  out.reserve(all.size());
  for (auto& entry : all)
    if (seen.insert(entry.second.impl()).second) out.push_back(std::move(entry));
  return out;
}
}  // namespace

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect_("", false, out);
  return dedupe(std::move(out));
}

std::vector<std::pair<std::string, Tensor>> Module::named_buffers() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect_("", true, out);
  return dedupe(std::move(out));
}

Tensors Module::parameters() const {
  Tensors out;
  for (auto& [_, t] : named_parameters()) out.push_back(t);
  return out;
}

std::vector<std::pair<std::string, ModulePtr>> Module::named_children() const {
  return children_;
}

std::vector<std::pair<std::string, ModulePtr>> Module::named_modules() const {
  std::vector<std::pair<std::string, ModulePtr>> out;
  for (const auto& [name, child] : children_) {
    out.emplace_back(name, child);
    for (auto& [sub, m] : child->named_modules()) out.emplace_back(name + "." + sub, m);
  }
  return out;
}

std::map<std::string, Tensor> Module::state_dict() const {
  std::map<std::string, Tensor> out;
  for (auto& [name, t] : named_parameters()) out.emplace(name, t);
  for (auto& [name, t] : named_buffers()) out.emplace(name, t);
  return out;
}

void Module::load_state_dict(const std::map<std::string, Tensor>& state) {
  const std::map<std::string, Tensor> mine = state_dict();
  std::vector<std::string> missing, unexpected, shape_bad, dtype_bad;
  for (const auto& [name, t] : mine) {
    auto it = state.find(name);
    if (it == state.end()) {
      missing.push_back(name);
    } else if (!it->second.defined()) {
      shape_bad.push_back(detail::cat(name, ": expected ", t.shape(), ", got an undefined tensor"));
    } else if (it->second.shape() != t.shape()) {
      shape_bad.push_back(detail::cat(name, ": expected ", t.shape(), ", got ", it->second.shape()));
    } else if (it->second.dtype() != t.dtype()) {
      dtype_bad.push_back(detail::cat(name, ": expected ", t.dtype(), ", got ", it->second.dtype()));
    }
  }
  for (const auto& [name, _] : state)
    if (!mine.contains(name)) unexpected.push_back(name);

  if (!missing.empty() || !unexpected.empty() || !shape_bad.empty() || !dtype_bad.empty()) {
    std::ostringstream msg;
    msg << "load_state_dict: the state does not match the model";
    auto list = [&](const char* title, const std::vector<std::string>& items) {
      if (items.empty()) return;
      msg << "; " << title << " (" << items.size() << "): ";
      for (std::size_t i = 0; i < items.size(); ++i) msg << (i ? ", " : "") << items[i];
    };
    list("missing keys", missing);
    list("unexpected keys", unexpected);
    list("shape mismatch", shape_bad);
    list("dtype mismatch", dtype_bad);
    if (!missing.empty() || !unexpected.empty()) throw ValueError(msg.str());
    if (!shape_bad.empty()) throw ShapeError(msg.str());
    throw DTypeError(msg.str());
  }

  NoGradGuard guard;
  for (const auto& [name, t] : mine) {
    const Tensor& src = state.at(name);
    const bool same = src.storage() == t.storage() && src.storage_offset() == t.storage_offset() &&
                      src.strides() == t.strides();
    if (!same) Tensor(t).copy_(src);  // loading a model's own state_dict is a no-op
  }
}

void Module::train(bool on) {
  const bool changed = training_ != on;
  training_ = on;
  for (auto& [_, child] : children_) child->train(on);
  if (changed) on_train_mode(on);
}

void Module::zero_grad() {
  for (auto& t : parameters()) t.zero_grad();
}

Module& Module::to(Device device) {
  struct Move {
    TensorImpl* impl;
    Tensor data, grad;
  };
  std::vector<Move> moves;
  auto plan = [&](const Tensor& t) {
    if (t.device() == device) return;
    for (const Move& m : moves)
      if (m.impl == t.impl()) return;  // a tensor shared by two modules moves once
    const Tensor g = t.grad();
    moves.push_back({t.impl(), t.detach().to(device), g.defined() ? g.detach().to(device) : Tensor()});
  };
  for (const auto& [name, t] : named_parameters()) plan(t);
  for (const auto& [name, t] : named_buffers()) plan(t);
  for (Move& m : moves) {  // the copies exist: swap storage in (nothing below can throw)
    TensorImpl& to = *m.impl;
    const TensorImpl& from = *m.data.impl();
    to.storage = from.storage;
    to.offset = from.offset;
    to.strides = from.strides;
    to.contiguous = from.contiguous;
    to.grad = m.grad;
  }
  return *this;
}

Tensors Module::forward(const Tensors& inputs) {
  BP_CHECK(inputs.size() == 1, ValueError, repr().substr(0, repr().find('\n')), " takes one input, got ",
           inputs.size(), "; call it as module(x)");
  return {forward(inputs[0])};
}

void Module::share_parameter(const std::string& name, const Tensor& t) {
  auto it = parameters_.begin();
  while (it != parameters_.end() && it->first != name) ++it;
  BP_CHECK(it != parameters_.end(), ValueError, "share_parameter: ", repr().substr(0, repr().find('\n')),
           " has no parameter '", name, "' of its own");
  BP_CHECK(t.defined() && t.shape() == it->second.shape(), ShapeError, "share_parameter: parameter '", name,
           "' is ", it->second.shape(), " but the shared tensor is ", t.defined() ? t.shape() : Shape{});
  BP_CHECK(t.dtype() == it->second.dtype(), DTypeError, "share_parameter: parameter '", name, "' is ",
           it->second.dtype(), " but the shared tensor is ", t.dtype());
  Tensor shared = t;
  shared.requires_grad_(true);
  BP_CHECK(on_parameter_shared(name, shared), ValueError,
           "share_parameter: ", repr().substr(0, repr().find('\n')), " cannot share its parameter '", name,
           "'");
  it->second = shared;
}

std::int64_t Module::num_parameters() const {
  std::int64_t n = 0;
  for (const auto& t : parameters()) n += t.numel();
  return n;
}

}  // namespace backprop::nn
