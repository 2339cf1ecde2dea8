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

void Scheduler::rebase(double base_lr) {
  BP_CHECK(base_lr > 0, ValueError, repr(), ": the base lr must be > 0, got ", base_lr);
  base_lr_ = base_lr;
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

SequentialLR::SequentialLR(Optimizer& optimizer, std::unique_ptr<Scheduler> first,
                           std::unique_ptr<Scheduler> second, std::int64_t milestone)
    : Scheduler(optimizer), first_(std::move(first)), second_(std::move(second)), milestone_(milestone) {
  BP_CHECK(first_ && second_, ValueError, "SequentialLR: needs two schedules");
  BP_CHECK(milestone >= 1, ValueError, "SequentialLR: milestone must be >= 1, got ", milestone);
  second_->rebase(first_->base_lr());
  apply_();
}
double SequentialLR::lr_at(std::int64_t t) const {
  return t < milestone_ ? first_->lr_at(t) : second_->lr_at(t - milestone_);
}
std::string SequentialLR::repr() const {
  return detail::cat("SequentialLR(", first_->repr(), " until ", milestone_, ", then ", second_->repr(), ")");
}

OneCycleLR::OneCycleLR(Optimizer& optimizer, std::int64_t total_steps, OneCycleOptions options)
    : Scheduler(optimizer), total_steps_(total_steps), o_(options) {
  BP_CHECK(total_steps >= 2, ValueError, "OneCycleLR: total_steps must be >= 2, got ", total_steps);
  BP_CHECK(o_.pct_start > 0 && o_.pct_start < 1, ValueError, "OneCycleLR: pct_start must be in (0, 1), got ",
           o_.pct_start);
  BP_CHECK(o_.div_factor > 0 && o_.final_div_factor > 0, ValueError,
           "OneCycleLR: div_factor and final_div_factor must be > 0, got ", o_.div_factor, " and ",
           o_.final_div_factor);
  apply_();
}
double OneCycleLR::lr_at(std::int64_t t) const {
  // As PyTorch: the rise ends at step pct_start * total - 1, the fall at step total - 1.
  const double initial = base_lr() / o_.div_factor, final_lr = initial / o_.final_div_factor;
  const double up_end = o_.pct_start * static_cast<double>(total_steps_) - 1.0;
  const double down_end = static_cast<double>(total_steps_) - 1.0;
  const double s = static_cast<double>(std::min(t, total_steps_ - 1));
  const auto cosine = [](double from, double to, double pct) {
    return to + (from - to) * (1.0 + std::cos(std::numbers::pi * pct)) / 2.0;
  };
  if (s <= up_end) return cosine(initial, base_lr(), up_end > 0 ? s / up_end : 1.0);
  return cosine(base_lr(), final_lr, (s - up_end) / (down_end - up_end));
}
std::string OneCycleLR::repr() const {
  return detail::cat("OneCycleLR(total_steps=", total_steps_, ", pct_start=", o_.pct_start,
                     ", div_factor=", o_.div_factor, ", final_div_factor=", o_.final_div_factor, ")");
}

ReduceLROnPlateau::ReduceLROnPlateau(Optimizer& optimizer, PlateauOptions options)
    : optimizer_(optimizer), o_(options) {
  BP_CHECK(o_.factor > 0 && o_.factor < 1, ValueError, "ReduceLROnPlateau: factor must be in (0, 1), got ",
           o_.factor);
  BP_CHECK(o_.patience >= 0 && o_.cooldown >= 0, ValueError,
           "ReduceLROnPlateau: patience and cooldown must be >= 0, got ", o_.patience, " and ", o_.cooldown);
  BP_CHECK(o_.min_lr >= 0 && o_.threshold >= 0, ValueError,
           "ReduceLROnPlateau: min_lr and threshold must be >= 0, got ", o_.min_lr, " and ", o_.threshold);
}

bool ReduceLROnPlateau::step(double value) {
  if (value < state_.best * (1.0 - o_.threshold)) {
    state_.best = value;
    state_.bad_epochs = 0;
  } else {
    ++state_.bad_epochs;
  }
  if (state_.cooldown > 0) {
    --state_.cooldown;
    state_.bad_epochs = 0;
  }
  if (state_.bad_epochs <= o_.patience) return false;
  state_.cooldown = o_.cooldown;
  state_.bad_epochs = 0;
  const double lowered = std::max(optimizer_.lr() * o_.factor, o_.min_lr);
  if (lowered >= optimizer_.lr()) return false;
  optimizer_.set_lr(lowered);
  return true;
}

void ReduceLROnPlateau::load_state(const train::PlateauState& state) {
  BP_CHECK(state.bad_epochs >= 0 && state.cooldown >= 0, ValueError,
           "ReduceLROnPlateau: bad_epochs and cooldown must be >= 0, got ", state.bad_epochs, " and ",
           state.cooldown);
  state_ = state;
}

std::string ReduceLROnPlateau::repr() const {
  return detail::cat("ReduceLROnPlateau(factor=", o_.factor, ", patience=", o_.patience,
                     ", threshold=", o_.threshold, ", cooldown=", o_.cooldown, ", min_lr=", o_.min_lr, ")");
}

}  // namespace backprop::optim
