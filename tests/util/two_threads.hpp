// Determinism tests compare a computation on 1 thread with the same on 2. The comparison proves something
// only if a second thread did compute part of it: backprop's pool lets a helper that is late (no core on a
// busy machine) simply not take part, so a 2-thread run may have run on the caller alone. on_two_threads
// repeats the 2-thread run until the pool's counters show that helpers computed some of its pieces.
#pragma once

#include <gtest/gtest.h>

#include "kernels/row_pool.hpp"

/// Skips the test on a machine (or under an affinity mask) with one CPU: there no second thread ever runs.
#define SKIP_WITHOUT_TWO_CPUS()             \
  if (backprop::kernels::usable_cpus() < 2) \
  GTEST_SKIP() << "one CPU in this process's affinity mask: no second thread can run"

namespace testutil {

/// Calls run() (which sets 2 threads, computes, and checks its result itself) until helpers computed at least
/// one piece during a call, at most `tries` times. Fails when no call had a helper's piece.
template <class F>
::testing::AssertionResult on_two_threads(F run, int tries = 50) {
  if (backprop::kernels::usable_cpus() < 2)
    return ::testing::AssertionFailure()
           << "one CPU in this process's affinity mask: no second thread can run";
  // One baseline for all calls: a helper adds its pieces to the counter when it leaves a job, possibly after
  // the caller returned, so a call's pieces may show only during the next one (every call's result is
  // checked).
  const std::uint64_t before = backprop::kernels::chunk_counts().by_helpers;
  for (int t = 1; t <= tries; ++t) {
    run();
    const std::uint64_t pieces = backprop::kernels::chunk_counts().by_helpers - before;
    if (pieces > 0) return ::testing::AssertionSuccess() << pieces << " pieces on helpers by call " << t;
  }
  return ::testing::AssertionFailure() << "in " << tries << " calls with 2 threads no piece ran on a helper";
}

}  // namespace testutil
