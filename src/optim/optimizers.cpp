// SGD, Adam/AdamW, RMSprop and Rprop: each step is one fused loop per parameter over its raw data, in the
// parameter's own precision, split across threads for large tensors (element-wise, so the result does not
// depend on the thread count).
#include <algorithm>
#include <backprop/autograd.hpp>
#include <backprop/optim/optimizers.hpp>
#include <cmath>

#include "kernels/kernels.hpp"
#include "kernels/parallel.hpp"
#include "optim/update_kernels.hpp"

namespace backprop::optim {

namespace {
// Runs f(offset, count) over contiguous chunks of [0, n), on several threads for large tensors (the kernel
// layer decides, kernels::parallel_update).
template <class F>
void for_chunks(std::int64_t n, F&& f) {
  backprop::kernels::parallel_update(n, [&](std::int64_t b, std::int64_t e) { f(b, e - b); });
}

void check_non_negative(const char* who, const char* name, double v) {
  BP_CHECK(std::isfinite(v) && v >= 0.0, ValueError, who, ": ", name, " must be finite and >= 0, got ", v);
}

void check_unit(const char* who, const char* name, double v) {
  BP_CHECK(v >= 0.0 && v < 1.0, ValueError, who, ": ", name, " must be in [0, 1), got ", v);
}

const char* str(bool b) {
  return b ? "true" : "false";
}
}  // namespace

// ---- SGD
// ------------------------------------------------------------------------------------------------------------

SGD::SGD(Tensors params, SGDOptions o)
    : Optimizer(std::move(params), o.lr, {{.name = "momentum_buffer"}}), options_(o) {
  check_non_negative("SGD", "momentum", o.momentum);
  check_non_negative("SGD", "dampening", o.dampening);
  check_non_negative("SGD", "weight_decay", o.weight_decay);
  BP_CHECK(!o.nesterov || (o.momentum > 0 && o.dampening == 0), ValueError,
           "SGD: nesterov needs momentum > 0 and dampening = 0, got momentum=", o.momentum,
           ", dampening=", o.dampening);
}

void SGD::step() {
  NoGradGuard guard;
  const SGDOptions& o = options_;
  for (std::size_t i = 0; i < params().size(); ++i) {
    if (!has_grad(i)) continue;
    Tensor w = params()[i];
    const Tensor g = w.grad();
    const bool use_momentum = o.momentum != 0.0;
    const bool first = use_momentum && !buffer(i, 0).defined();
    Tensor buf = use_momentum ? make_buffer(i, 0) : Tensor();
    ++w.storage()->version;
    dispatch(w.dtype(), [&](auto tag) {
      using T = decltype(tag);
      T* wp = w.data<T>();
      const T* gp = g.data<T>();
      T* bp = use_momentum ? buf.data<T>() : nullptr;
      const kernels::SgdCoeffs<T> c{.lr = static_cast<T>(lr()),
                                    .weight_decay = static_cast<T>(o.weight_decay),
                                    .momentum = static_cast<T>(o.momentum),
                                    .one_minus_dampening = static_cast<T>(1.0 - o.dampening)};
      const kernels::UpdateLoops<T>& loops = kernels::update_loops<T>();
      for_chunks(w.numel(), [&](std::int64_t at, std::int64_t n) {
        if (!use_momentum) return loops.sgd_plain(wp + at, gp + at, n, c);
        loops.sgd_momentum[first][o.nesterov](wp + at, gp + at, bp + at, n, c);
      });
    });
  }
  count_step();
}

std::string SGD::repr() const {
  const SGDOptions& o = options_;
  return detail::cat("SGD(lr=", lr(), ", momentum=", o.momentum, ", dampening=", o.dampening,
                     ", nesterov=", str(o.nesterov), ", weight_decay=", o.weight_decay, ")");
}

// ---- Adam / AdamW
// ---------------------------------------------------------------------------------------------------

Adam::Adam(Tensors params, AdamOptions o) : Adam(std::move(params), o, false) {}

Adam::Adam(Tensors params, AdamOptions o, bool decoupled)
    : Optimizer(std::move(params), o.lr,
                {{.name = "step", .scalar = true}, {.name = "exp_avg"}, {.name = "exp_avg_sq"}}),
      options_(o),
      decoupled_(decoupled) {
  const char* who = decoupled ? "AdamW" : "Adam";
  check_unit(who, "beta1", o.beta1);
  check_unit(who, "beta2", o.beta2);
  check_non_negative(who, "eps", o.eps);
  check_non_negative(who, "weight_decay", o.weight_decay);
}

AdamW::AdamW(Tensors params, AdamWOptions o)
    : Adam(std::move(params),
           AdamOptions{
               .lr = o.lr, .beta1 = o.beta1, .beta2 = o.beta2, .eps = o.eps, .weight_decay = o.weight_decay},
           true) {}

// m and v are biased towards 0 early on (they start at 0); dividing by 1 - beta^t removes that bias.
void Adam::step() {
  NoGradGuard guard;
  const AdamOptions& o = options_;
  for (std::size_t i = 0; i < params().size(); ++i) {
    if (!has_grad(i)) continue;
    Tensor w = params()[i];
    const Tensor g = w.grad();
    Tensor& t_buf = make_buffer(i, 0);
    const double t = t_buf.item() + 1.0;
    t_buf.fill_(t);
    Tensor m = make_buffer(i, 1), v = make_buffer(i, 2);
    const double bc1 = 1.0 - std::pow(o.beta1, t), bc2_sqrt = std::sqrt(1.0 - std::pow(o.beta2, t));
    ++w.storage()->version;
    dispatch(w.dtype(), [&](auto tag) {
      using T = decltype(tag);
      T* wp = w.data<T>();
      const T* gp = g.data<T>();
      T* mp = m.data<T>();
      T* vp = v.data<T>();
      const kernels::AdamCoeffs<T> c{.beta1 = static_cast<T>(o.beta1),
                                     .beta2 = static_cast<T>(o.beta2),
                                     .one_minus_beta1 = static_cast<T>(1.0 - o.beta1),
                                     .one_minus_beta2 = static_cast<T>(1.0 - o.beta2),
                                     .l2 = static_cast<T>(decoupled_ ? 0.0 : o.weight_decay),
                                     .shrink = static_cast<T>(decoupled_ ? 1.0 - lr() * o.weight_decay : 1.0),
                                     .step_size = static_cast<T>(lr() / bc1),
                                     .bias2_sqrt = static_cast<T>(bc2_sqrt),
                                     .eps = static_cast<T>(o.eps)};
      const kernels::UpdateLoops<T>& loops = kernels::update_loops<T>();
      for_chunks(w.numel(), [&](std::int64_t at, std::int64_t n) {
        loops.adam(wp + at, gp + at, mp + at, vp + at, n, c);
      });
    });
  }
  count_step();
}

std::string Adam::repr() const {
  const AdamOptions& o = options_;
  return detail::cat(decoupled_ ? "AdamW" : "Adam", "(lr=", lr(), ", beta1=", o.beta1, ", beta2=", o.beta2,
                     ", eps=", o.eps, ", weight_decay=", o.weight_decay, ")");
}

// ---- RMSprop
// --------------------------------------------------------------------------------------------------------

RMSprop::RMSprop(Tensors params, RMSpropOptions o)
    : Optimizer(std::move(params), o.lr,
                {{.name = "square_avg"}, {.name = "momentum_buffer"}, {.name = "grad_avg"}}),
      options_(o) {
  BP_CHECK(o.alpha >= 0.0 && o.alpha <= 1.0, ValueError, "RMSprop: alpha must be in [0, 1], got ", o.alpha);
  check_non_negative("RMSprop", "eps", o.eps);
  check_non_negative("RMSprop", "momentum", o.momentum);
  check_non_negative("RMSprop", "weight_decay", o.weight_decay);
}

void RMSprop::step() {
  NoGradGuard guard;
  const RMSpropOptions& o = options_;
  for (std::size_t i = 0; i < params().size(); ++i) {
    if (!has_grad(i)) continue;
    Tensor w = params()[i];
    const Tensor g = w.grad();
    Tensor sq = make_buffer(i, 0);
    Tensor buf = o.momentum > 0 ? make_buffer(i, 1) : Tensor();
    Tensor ga = o.centered ? make_buffer(i, 2) : Tensor();
    ++w.storage()->version;
    dispatch(w.dtype(), [&](auto tag) {
      using T = decltype(tag);
      T* wp = w.data<T>();
      const T* gp = g.data<T>();
      T* sp = sq.data<T>();
      T* bp = buf.defined() ? buf.data<T>() : nullptr;
      T* ap = ga.defined() ? ga.data<T>() : nullptr;
      const kernels::RmspropCoeffs<T> c{.lr = static_cast<T>(lr()),
                                        .alpha = static_cast<T>(o.alpha),
                                        .one_minus_alpha = static_cast<T>(1.0 - o.alpha),
                                        .eps = static_cast<T>(o.eps),
                                        .weight_decay = static_cast<T>(o.weight_decay),
                                        .momentum = static_cast<T>(o.momentum)};
      const kernels::UpdateLoops<T>& loops = kernels::update_loops<T>();
      for_chunks(w.numel(), [&](std::int64_t at, std::int64_t n) {
        T* a = ap ? ap + at : nullptr;
        T* b = bp ? bp + at : nullptr;
        loops.rmsprop[a != nullptr][b != nullptr](wp + at, gp + at, sp + at, a, b, n, c);
      });
    });
  }
  count_step();
}

std::string RMSprop::repr() const {
  const RMSpropOptions& o = options_;
  return detail::cat("RMSprop(lr=", lr(), ", alpha=", o.alpha, ", eps=", o.eps, ", momentum=", o.momentum,
                     ", weight_decay=", o.weight_decay, ", centered=", str(o.centered), ")");
}

// ---- Rprop
// ----------------------------------------------------------------------------------------------------------

Rprop::Rprop(Tensors params, RpropOptions o)
    : Optimizer(std::move(params), o.lr, {{.name = "prev"}, {.name = "step_size"}}), options_(o) {
  BP_CHECK(o.lr > 0, ValueError, "Rprop: lr (the initial step size) must be > 0, got ", o.lr);
  BP_CHECK(0 < o.eta_minus && o.eta_minus < 1 && 1 < o.eta_plus, ValueError,
           "Rprop: need 0 < eta_minus < 1 < eta_plus, got eta_minus=", o.eta_minus,
           ", eta_plus=", o.eta_plus);
  BP_CHECK(0 <= o.step_min && o.step_min <= o.step_max, ValueError,
           "Rprop: need 0 <= step_min <= step_max, got step_min=", o.step_min, ", step_max=", o.step_max);
}

// The step size grows while the gradient keeps its sign and shrinks when it flips (a minimum was jumped
// over); after a flip the update is skipped and the stored gradient set to 0, so the next step neither grows
// nor shrinks.
void Rprop::step() {
  NoGradGuard guard;
  const RpropOptions& o = options_;
  for (std::size_t i = 0; i < params().size(); ++i) {
    if (!has_grad(i)) continue;
    Tensor w = params()[i];
    const Tensor g = w.grad();
    Tensor prev = make_buffer(i, 0);
    Tensor size = make_buffer(i, 1, lr());
    ++w.storage()->version;
    dispatch(w.dtype(), [&](auto tag) {
      using T = decltype(tag);
      T* wp = w.data<T>();
      const T* gp = g.data<T>();
      T* pp = prev.data<T>();
      T* sp = size.data<T>();
      const kernels::RpropCoeffs<T> c{.eta_plus = static_cast<T>(o.eta_plus),
                                      .eta_minus = static_cast<T>(o.eta_minus),
                                      .step_min = static_cast<T>(o.step_min),
                                      .step_max = static_cast<T>(o.step_max)};
      const kernels::UpdateLoops<T>& loops = kernels::update_loops<T>();
      for_chunks(w.numel(), [&](std::int64_t at, std::int64_t n) {
        loops.rprop(wp + at, gp + at, pp + at, sp + at, n, c);
      });
    });
  }
  count_step();
}

std::string Rprop::repr() const {
  const RpropOptions& o = options_;
  return detail::cat("Rprop(lr=", lr(), ", eta_minus=", o.eta_minus, ", eta_plus=", o.eta_plus,
                     ", step_min=", o.step_min, ", step_max=", o.step_max, ")");
}

}  // namespace backprop::optim
