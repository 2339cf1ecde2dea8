// parallel_update (parallel.hpp): when an element-wise pass over freshly written tensors is worth splitting.
#include "kernels/parallel.hpp"

#include <backprop/kernels.hpp>

namespace backprop::kernels {

namespace {
// From 2^20 elements a pass always splits. From 2^17 (a 784x256 layer, about 30 us of one core) it splits
// only when the products since the last pass ran split (the pool's helpers computed pieces, so the data is
// spread over both cores' caches) and the helpers keep up: on 2 threads that took the MLP at batch 32 from
// 0.32 to 0.28-0.30 s per epoch. Without the first condition batch 1, whose products never split,
// became 1.1-1.4x slower than on 1 thread: the gradient the caller had just written had to move to the
// helper's core first.
constexpr std::int64_t kAlwaysSplit = std::int64_t{1} << 20;
constexpr std::int64_t kSplitWhenSpread = std::int64_t{1} << 17;

// Pieces done by the pool's helpers when the last pass on this thread finished.
thread_local std::uint64_t helper_pieces_after_last_pass = 0;
}  // namespace

void parallel_update(std::int64_t n, const std::function<void(std::int64_t, std::int64_t)>& f) {
  const std::int64_t fixed = kernel_config().update_split_elems;  // KernelConfig: N >= 1 replaces both
  const bool spread = chunk_counts().by_helpers != helper_pieces_after_last_pass;
  const bool split = fixed > 0 ? n >= fixed
                               : n >= kAlwaysSplit || (n >= kSplitWhenSpread && spread &&
                                                       get_num_threads() > 1 && helpers_keep_up());
  parallel_range(n, split ? 1 : n + 1, f);
  helper_pieces_after_last_pass = chunk_counts().by_helpers;
}

}  // namespace backprop::kernels
