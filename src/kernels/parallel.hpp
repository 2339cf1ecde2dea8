// Internal: run a loop over [0, n) on the OpenMP threads when n is large enough to pay for the fork.
#pragma once

#include <omp.h>

#include <cstdint>

namespace backprop::kernels {

/// Calls f(begin, end) on contiguous, disjoint chunks covering [0, n): one chunk when n < threshold or a
/// single thread is configured, otherwise one chunk per thread.
template <class F>
void parallel_range(std::int64_t n, std::int64_t threshold, F&& f) {
  if (n <= 0) return;
  if (n < threshold || omp_get_max_threads() == 1 || omp_in_parallel()) {
    f(std::int64_t{0}, n);
    return;
  }
#pragma omp parallel
  {
    const std::int64_t threads = omp_get_num_threads();
    const std::int64_t t = omp_get_thread_num();
    const std::int64_t chunk = (n + threads - 1) / threads;
    const std::int64_t begin = t * chunk;
    const std::int64_t end = begin + chunk < n ? begin + chunk : n;
    if (begin < end) f(begin, end);
  }
}

}  // namespace backprop::kernels
