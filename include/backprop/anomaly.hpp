// backprop/anomaly.hpp — find the op that first produced a NaN or an infinity.
//
// With anomaly detection on, every recorded op checks its output and every backward function checks the
// gradients it returns; the first non-finite value throws DivergedError naming the op, its shape and whether
// it happened in the forward or the backward pass. It costs one pass over every tensor, so it is off by
// default.
//
// Example:
//   {
//     bp::DetectAnomalyGuard guard;
//     loss.backward();   // DivergedError: anomaly: the backward of op 'sqrt' produced a non-finite gradient
//   }
#pragma once

namespace backprop {

/// Whether anomaly detection is on for this thread (off by default).
struct AnomalyMode {
  static bool is_enabled();
  static void set_enabled(bool enabled);
};

/// Turns anomaly detection on for its lifetime and restores the previous setting after.
class DetectAnomalyGuard {
 public:
  DetectAnomalyGuard() : previous_(AnomalyMode::is_enabled()) { AnomalyMode::set_enabled(true); }
  ~DetectAnomalyGuard() { AnomalyMode::set_enabled(previous_); }
  DetectAnomalyGuard(const DetectAnomalyGuard&) = delete;
  DetectAnomalyGuard& operator=(const DetectAnomalyGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace backprop
