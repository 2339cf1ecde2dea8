// backprop/optim/schedule.hpp — learning-rate schedules.
//
// A schedule owns the learning rate of one optimiser: it records the optimiser's lr at construction as the
// base lr (base), sets the lr for step 0, and on each step() advances its counter t by one and sets the
// optimiser's lr from a closed form in t (no accumulated rounding). Call step() once per epoch, after the
// epoch's optimiser steps (LinearWarmup is usually stepped once per iteration instead). The optimiser must
// outlive the schedule.
//
//   StepLR             lr = base gamma^floor(t / step_size)
//   ExponentialLR      lr = base gamma^t
//   CosineAnnealingLR  lr = eta_min + (base - eta_min) (1 + cos(pi t / t_max)) / 2 for t <= t_max,
//                      eta_min after
//   LinearWarmup       lr = base (f0 + (1 - f0) min(t, warmup_steps) / warmup_steps), f0 = start_factor
//
// Example:
//   bp::optim::SGD opt(net.parameters(), {.lr = 0.1});
//   bp::optim::CosineAnnealingLR sched(opt, 30);
//   for (int epoch = 0; epoch < 30; ++epoch) { train_one_epoch(); sched.step(); }
#pragma once

#include <backprop/optim/optimizer.hpp>
#include <backprop/train/state.hpp>
#include <cstdint>
#include <memory>
#include <string>

namespace backprop::optim {

class Scheduler {
 public:
  explicit Scheduler(Optimizer& optimizer);
  virtual ~Scheduler() = default;
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  /// Advances t by one and sets the optimiser's lr to lr_at(t).
  virtual void step();
  /// The lr the schedule last set (the optimiser's lr unless someone changed it since).
  double lr() const { return lr_; }
  /// The lr at step t (t >= 0) for this schedule's base lr.
  virtual double lr_at(std::int64_t t) const = 0;
  /// Steps taken so far (t).
  std::int64_t steps() const { return t_; }
  /// Jumps to step t and sets the lr accordingly (to resume from a checkpoint). Throws ValueError when t < 0.
  void set_steps(std::int64_t t);
  double base_lr() const { return base_lr_; }
  /// Sets the base lr and applies lr_at(steps()) with it (SequentialLR gives its second schedule the first's
  /// base, which the first may have changed on the optimiser at construction). Throws ValueError unless > 0.
  void rebase(double base_lr);
  virtual std::string repr() const = 0;

 protected:
  /// Sets the optimiser's lr to lr_at(t_). Derived constructors call it once their parameters are set.
  void apply_();

 private:
  Optimizer& optimizer_;
  double base_lr_;
  double lr_;
  std::int64_t t_ = 0;
};

/// Multiplies the lr by gamma every step_size steps. Throws ValueError when step_size < 1 or gamma <= 0.
class StepLR : public Scheduler {
 public:
  StepLR(Optimizer& optimizer, int step_size, double gamma = 0.1);
  double lr_at(std::int64_t t) const override;
  std::string repr() const override;

 private:
  int step_size_;
  double gamma_;
};

/// Multiplies the lr by gamma every step. Throws ValueError when gamma <= 0.
class ExponentialLR : public Scheduler {
 public:
  ExponentialLR(Optimizer& optimizer, double gamma);
  double lr_at(std::int64_t t) const override;
  std::string repr() const override;

 private:
  double gamma_;
};

/// Half a cosine from the base lr down to eta_min over t_max steps, then eta_min. Throws ValueError when
/// t_max < 1 or eta_min < 0.
class CosineAnnealingLR : public Scheduler {
 public:
  CosineAnnealingLR(Optimizer& optimizer, int t_max, double eta_min = 0.0);
  double lr_at(std::int64_t t) const override;
  std::string repr() const override;

 private:
  int t_max_;
  double eta_min_;
};

/// Ramps the lr linearly from start_factor * base to base over warmup_steps steps, then holds it. Throws
/// ValueError when warmup_steps < 1 or start_factor is outside (0, 1].
class LinearWarmup : public Scheduler {
 public:
  LinearWarmup(Optimizer& optimizer, int warmup_steps, double start_factor = 0.1);
  double lr_at(std::int64_t t) const override;
  std::string repr() const override;

 private:
  int warmup_steps_;
  double start_factor_;
};

/// Two schedules one after the other: `first` for steps t < milestone, then `second` at step t - milestone.
/// Both must drive the same optimiser and be made before this (they record its lr as their base). Throws
/// ValueError when milestone < 1 or a schedule is missing.
class SequentialLR : public Scheduler {
 public:
  SequentialLR(Optimizer& optimizer, std::unique_ptr<Scheduler> first, std::unique_ptr<Scheduler> second,
               std::int64_t milestone);
  double lr_at(std::int64_t t) const override;
  std::string repr() const override;

 private:
  std::unique_ptr<Scheduler> first_, second_;
  std::int64_t milestone_;
};

struct OneCycleOptions {
  double pct_start = 0.3;         // share of total_steps spent rising
  double div_factor = 25.0;       // initial lr = max_lr / div_factor
  double final_div_factor = 1e4;  // final lr = initial lr / final_div_factor
};

/// The one-cycle policy (PyTorch's OneCycleLR with anneal_strategy "cos", no momentum cycling): the lr rises
/// from max_lr / div_factor to max_lr over the first pct_start of total_steps, then falls to the final lr,
/// both along half cosines; after total_steps it stays at the final lr. max_lr is the optimiser's lr at
/// construction. Throws ValueError when total_steps < 2, pct_start is outside (0, 1) or a factor is <= 0.
class OneCycleLR : public Scheduler {
 public:
  OneCycleLR(Optimizer& optimizer, std::int64_t total_steps, OneCycleOptions options = {});
  double lr_at(std::int64_t t) const override;
  std::string repr() const override;

 private:
  std::int64_t total_steps_;
  OneCycleOptions o_;
};

struct PlateauOptions {
  double factor = 0.1;         // new lr = lr x factor
  std::int64_t patience = 10;  // epochs without improvement before the lr is lowered
  double threshold = 1e-4;     // an improvement is a value < best x (1 - threshold) (PyTorch's "rel" mode)
  std::int64_t cooldown = 0;   // epochs after a reduction before bad epochs are counted again
  double min_lr = 0.0;         // the lr never goes below this
};

/// Lowers the optimiser's lr by `factor` when the monitored value (lower is better) has not improved for
/// `patience` epochs, as PyTorch's ReduceLROnPlateau (mode "min", threshold mode "rel"). Its bookkeeping is
/// train::PlateauState, part of a Trainer's state. Throws ValueError when factor is outside (0, 1), patience
/// or cooldown < 0, or min_lr < 0.
class ReduceLROnPlateau {
 public:
  explicit ReduceLROnPlateau(Optimizer& optimizer, PlateauOptions options = {});
  /// After an epoch: records `value` and lowers the lr if it has not improved for `patience` epochs. True
  /// when the lr was lowered. A NaN value counts as no improvement.
  bool step(double value);
  const train::PlateauState& state() const { return state_; }
  void load_state(const train::PlateauState& state);
  std::string repr() const;

 private:
  Optimizer& optimizer_;
  PlateauOptions o_;
  train::PlateauState state_;
};

}  // namespace backprop::optim
