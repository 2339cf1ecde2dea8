// For the tests that bound how time grows with input size (as a ratio measured in the same test, never an
// absolute time).
#pragma once

#include <algorithm>
#include <chrono>
#include <functional>

namespace testutil {

/// The fastest of three runs of `f`, in seconds: the other two absorb a scheduler's hiccups.
inline double best_of_three(const std::function<void()>& f) {
  double best = 1e300;
  for (int i = 0; i < 3; ++i) {
    const auto start = std::chrono::steady_clock::now();
    f();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

}  // namespace testutil
