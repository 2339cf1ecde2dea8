// Internal: run a loop over [0, n) on backprop's threads when n is large enough to pay for the fork.
#pragma once

#include <omp.h>

#include <backprop/threads.hpp>
#include <cstdint>
#include <functional>

#include "kernels/row_pool.hpp"

namespace backprop::kernels {

/// Calls f(begin, end) on contiguous, disjoint chunks covering [0, n): one chunk when n < threshold or a
/// single thread is configured, otherwise one chunk per thread, handed out by the helping parallel-for of
/// row_pool.hpp (the caller takes chunks itself and never waits for a thread that has not started one).
template <class F>
void parallel_range(std::int64_t n, std::int64_t threshold, F&& f) {
  if (n <= 0) return;
  const std::int64_t threads = n < threshold || omp_in_parallel() ? 1 : get_num_threads();
  if (threads == 1) {
    f(std::int64_t{0}, n);
    return;
  }
  const std::int64_t chunk = (n + threads - 1) / threads;
  parallel_chunks((n + chunk - 1) / chunk, static_cast<int>(threads), [&](std::int64_t i) {
    const std::int64_t begin = i * chunk;
    f(begin, begin + chunk < n ? begin + chunk : n);
  });
}

/// Calls f(begin, end) on chunks covering [0, n) for an element-wise pass over tensors the preceding kernels
/// just wrote (an optimiser step over parameters, gradients and their state). Memory-bound, so it goes
/// parallel only for large n, or for medium n when the products before it ran split (their results are
/// spread over several cores' caches) and the helpers keep up (row_pool.hpp). Element-wise, so the result
/// never depends on the split.
void parallel_update(std::int64_t n, const std::function<void(std::int64_t, std::int64_t)>& f);

}  // namespace backprop::kernels
