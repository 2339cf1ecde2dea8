// Learning-rate schedules, each a closed form in the step count t.
#include <algorithm>
#include <backprop/optim/schedule.hpp>
#include <cmath>
#include <numbers>

namespace backprop::optim {

Scheduler::Scheduler(Optimizer& optimizer)
    : optimizer_(optimizer), base_lr_(optimizer.lr()), lr_(optimizer.lr()) {}

void Scheduler::apply_() {
  lr_ = lr_at(t_);
  optimizer_.set_lr(lr_);
}

void Scheduler::step() {
  ++t_;
  apply_();
}

void Scheduler::set_steps(std::int64_t t) {
  BP_CHECK(t >= 0, ValueError, repr(), ": step count must be >= 0, got ", t);
  t_ = t;
  apply_();
}

StepLR::StepLR(Optimizer& optimizer, int step_size, double gamma)
    : Scheduler(optimizer), step_size_(step_size), gamma_(gamma) {
  BP_CHECK(step_size >= 1, ValueError, "StepLR: step_size must be >= 1, got ", step_size);
  BP_CHECK(gamma > 0, ValueError, "StepLR: gamma must be > 0, got ", gamma);
  apply_();
}
double StepLR::lr_at(std::int64_t t) const {
  return base_lr() * std::pow(gamma_, static_cast<double>(t / step_size_));
}
std::string StepLR::repr() const {
  return detail::cat("StepLR(step_size=", step_size_, ", gamma=", gamma_, ")");
}

ExponentialLR::ExponentialLR(Optimizer& optimizer, double gamma) : Scheduler(optimizer), gamma_(gamma) {
  BP_CHECK(gamma > 0, ValueError, "ExponentialLR: gamma must be > 0, got ", gamma);
  apply_();
}
double ExponentialLR::lr_at(std::int64_t t) const {
  return base_lr() * std::pow(gamma_, static_cast<double>(t));
}
std::string ExponentialLR::repr() const {
  return detail::cat("ExponentialLR(gamma=", gamma_, ")");
}

CosineAnnealingLR::CosineAnnealingLR(Optimizer& optimizer, int t_max, double eta_min)
    : Scheduler(optimizer), t_max_(t_max), eta_min_(eta_min) {
  BP_CHECK(t_max >= 1, ValueError, "CosineAnnealingLR: t_max must be >= 1, got ", t_max);
  BP_CHECK(eta_min >= 0, ValueError, "CosineAnnealingLR: eta_min must be >= 0, got ", eta_min);
  apply_();
}
double CosineAnnealingLR::lr_at(std::int64_t t) const {
  if (t >= t_max_) return eta_min_;
  const double phase = std::numbers::pi * static_cast<double>(t) / static_cast<double>(t_max_);
  return eta_min_ + (base_lr() - eta_min_) * (1.0 + std::cos(phase)) / 2.0;
}
std::string CosineAnnealingLR::repr() const {
  return detail::cat("CosineAnnealingLR(t_max=", t_max_, ", eta_min=", eta_min_, ")");
}

LinearWarmup::LinearWarmup(Optimizer& optimizer, int warmup_steps, double start_factor)
    : Scheduler(optimizer), warmup_steps_(warmup_steps), start_factor_(start_factor) {
  BP_CHECK(warmup_steps >= 1, ValueError, "LinearWarmup: warmup_steps must be >= 1, got ", warmup_steps);
  BP_CHECK(start_factor > 0 && start_factor <= 1, ValueError,
           "LinearWarmup: start_factor must be in (0, 1], got ", start_factor);
  apply_();
}
double LinearWarmup::lr_at(std::int64_t t) const {
  const double done = static_cast<double>(std::min<std::int64_t>(t, warmup_steps_)) / warmup_steps_;
  return base_lr() * (start_factor_ + (1.0 - start_factor_) * done);
}
std::string LinearWarmup::repr() const {
  return detail::cat("LinearWarmup(warmup_steps=", warmup_steps_, ", start_factor=", start_factor_, ")");
}

}  // namespace backprop::optim
