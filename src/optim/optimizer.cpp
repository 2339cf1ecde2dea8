// Optimizer base: parameters, learning rate, step count, per-parameter buffers and their (de)serialisation.
#include <backprop/autograd.hpp>
#include <backprop/optim/optimizer.hpp>
#include <cmath>
#include <set>
#include <sstream>

#include "kernels/kernels.hpp"

namespace backprop::optim {

Optimizer::Optimizer(Tensors params) : Optimizer(std::move(params), 0.0, {}) {}

Optimizer::Optimizer(Tensors params, double lr, std::vector<BufferSpec> buffers)
    : params_(std::move(params)), specs_(std::move(buffers)) {
  for (std::size_t i = 0; i < params_.size(); ++i)
    BP_CHECK(params_[i].defined(), ValueError, "Optimizer: parameter ", i, " is an undefined tensor");
  set_lr(lr);
  buffers_.assign(params_.size(), std::vector<Tensor>(specs_.size()));
}

void Optimizer::zero_grad() {
  for (auto& p : params_) p.zero_grad();
}

void Optimizer::set_lr(double lr) {
  BP_CHECK(std::isfinite(lr) && lr >= 0.0, ValueError,
           "Optimizer: learning rate must be finite and >= 0, got ", lr);
  lr_ = lr;
}

Tensor& Optimizer::make_buffer(std::size_t i, std::size_t k, double value) {
  Tensor& b = buffers_[i][k];
  if (!b.defined())
    b = specs_[k].scalar ? scalar(value, f64) : full(params_[i].shape(), value, params_[i].dtype());
  return b;
}

bool Optimizer::has_grad(std::size_t i) const {
  const Tensor g = params_[i].grad();
  if (!g.defined()) return false;
  BP_CHECK(g.shape() == params_[i].shape(), ShapeError, "Optimizer: gradient of parameter ", i, " has shape ",
           g.shape(), ", expected ", params_[i].shape());
  BP_CHECK(g.dtype() == params_[i].dtype(), DTypeError, "Optimizer: gradient of parameter ", i, " is ",
           g.dtype(), ", expected ", params_[i].dtype());
  return true;
}

std::map<std::string, Tensor> Optimizer::state() const {
  std::map<std::string, Tensor> out;
  out.emplace("step", scalar(static_cast<double>(steps_), f64));
  out.emplace("lr", scalar(lr_, f64));
  NoGradGuard guard;
  for (std::size_t i = 0; i < params_.size(); ++i)
    for (std::size_t k = 0; k < specs_.size(); ++k)
      if (buffers_[i][k].defined()) out.emplace(detail::cat(i, ".", specs_[k].name), buffers_[i][k].clone());
  return out;
}

void Optimizer::load_state(const std::map<std::string, Tensor>& state) {
  std::vector<std::string> unknown;
  // (parameter, buffer) -> tensor, collected while validating so nothing is written before all is checked.
  std::vector<std::tuple<std::size_t, std::size_t, Tensor>> found;
  auto check_scalar = [](const std::string& key, const Tensor& t) {
    BP_CHECK(t.defined() && t.numel() == 1, ShapeError, "Optimizer::load_state: '", key,
             "' must hold one number, got ",
             t.defined() ? to_string(t.shape()) : std::string("an undefined tensor"));
  };
  BP_CHECK(state.contains("step"), ValueError, "Optimizer::load_state: the state has no 'step' entry (",
           state.size(), " keys given)");
  for (const auto& [key, t] : state) {
    if (key == "step" || key == "lr") {
      check_scalar(key, t);
      continue;
    }
    const auto dot = key.find('.');
    std::size_t i = 0, used = 0;
    bool ok = dot != std::string::npos && dot > 0;
    if (ok) {
      try {
        i = std::stoul(key.substr(0, dot), &used);
      } catch (const std::exception&) {
        ok = false;
      }
      ok = ok && used == dot && i < params_.size();
    }
    std::size_t k = specs_.size();
    if (ok)
      for (std::size_t s = 0; s < specs_.size(); ++s)
        if (specs_[s].name == key.substr(dot + 1)) k = s;
    if (!ok || k == specs_.size()) {
      unknown.push_back(key);
      continue;
    }
    const Shape expected = specs_[k].scalar ? Shape{} : params_[i].shape();
    const DType dtype = specs_[k].scalar ? f64 : params_[i].dtype();
    BP_CHECK(t.defined() && t.shape() == expected, ShapeError, "Optimizer::load_state: '", key,
             "' has shape ", t.defined() ? to_string(t.shape()) : std::string("(undefined)"), ", expected ",
             expected);
    BP_CHECK(t.dtype() == dtype, DTypeError, "Optimizer::load_state: '", key, "' is ", t.dtype(),
             ", expected ", dtype);
    found.emplace_back(i, k, t);
  }
  if (!unknown.empty()) {
    std::ostringstream msg;
    msg << "Optimizer::load_state: unexpected keys for " << repr() << " with " << params_.size()
        << " parameters: ";
    for (std::size_t u = 0; u < unknown.size(); ++u) msg << (u ? ", " : "") << unknown[u];
    throw ValueError(msg.str());
  }
  const double step = state.at("step").item();
  BP_CHECK(step >= 0 && step == std::floor(step), ValueError,
           "Optimizer::load_state: 'step' must be a whole number >= 0, got ", step);
  if (auto it = state.find("lr"); it != state.end()) set_lr(it->second.item());
  steps_ = static_cast<std::int64_t>(step);
  for (auto& row : buffers_)
    for (auto& b : row) b = Tensor();
  NoGradGuard guard;
  for (auto& [i, k, t] : found) buffers_[i][k] = t.detach().clone();
}

// The norm is accumulated in double over all gradients; each tensor is counted once even if listed twice.
double clip_grad_norm(const Tensors& params, double max_norm) {
  BP_CHECK(max_norm > 0, ValueError, "clip_grad_norm: max_norm must be > 0, got ", max_norm);
  std::set<const TensorImpl*> seen;
  Tensors grads;
  for (const auto& p : params) {
    if (!p.defined() || !seen.insert(p.impl()).second) continue;
    const Tensor g = p.grad();
    if (g.defined()) grads.push_back(g);
  }
  double total = 0.0;
  for (const auto& g : grads) {
    dispatch(g.dtype(), [&](auto tag) {
      using T = decltype(tag);
      const Tensor dense = kernels::dense(g);
      const T* d = dense.data<T>();
      double s = 0.0;
      for (std::int64_t j = 0; j < g.numel(); ++j) s += static_cast<double>(d[j]) * static_cast<double>(d[j]);
      total += s;
    });
  }
  const double norm = std::sqrt(total);
  if (!std::isfinite(norm) || norm <= max_norm) return norm;
  const double factor = max_norm / (norm + 1e-6);
  NoGradGuard guard;
  for (auto& g : grads) Tensor(g).mul_(factor);
  return norm;
}

}  // namespace backprop::optim
