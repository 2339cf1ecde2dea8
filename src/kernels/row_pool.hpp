// Helping parallel-for for the row blocks of a matrix product.
//
// The calling thread publishes a job of `chunks` independent pieces and works through them itself, taking the
// next unclaimed piece from an atomic counter; up to `threads - 1` helper threads take pieces too once they
// are awake. The caller returns when every piece is done, and it only ever waits for pieces a helper has
// already started: a helper that is asleep, or descheduled by other processes on a busy machine, simply does
// not take part, so a fork never costs more than doing the work alone plus one piece. (A fork-join with a
// barrier, as an OpenMP parallel region, waits for every thread of the team, however late it gets a core.)
//
// Helpers spin for a short while after a job (so that the next product of a training step finds them awake)
// and then sleep on a condition variable. Which thread computes a piece never changes its result.
#pragma once

#include <cstdint>
#include <functional>

namespace backprop::kernels {

/// Runs body(i) for every i in [0, chunks), on the calling thread and on up to threads - 1 helpers (never
/// more threads than the CPUs in the process's affinity mask); returns when all are done. body must not
/// throw. Safe to call from several threads at once (each call completes its own job whatever the helpers
/// do).
void parallel_chunks(std::int64_t chunks, int threads, const std::function<void(std::int64_t)>& body);

/// The CPUs this process may run on (its affinity mask, e.g. one core under `mpirun`'s default binding), read
/// once: more threads than that would only take turns on the same cores.
int usable_cpus();

/// Pieces computed by helpers and by callers since the process started (for tests and benchmarks: how much
/// the helpers took part).
struct ChunkCounts {
  std::uint64_t by_helpers = 0;
  std::uint64_t by_callers = 0;
  std::uint64_t late_jobs = 0;  // jobs whose caller waited for helpers longer than the work would have taken
  std::uint64_t distrusts = 0;  // times helpers_keep_up() turned false
  std::uint64_t preempted_distrusts = 0;  // ... of them because the caller was preempted often
  int helpers_spinning = 0;  // helpers awake right now, spinning for the next job (they sleep after 200 us)
};
ChunkCounts chunk_counts();

/// Whether splitting small work pays right now. The pool watches the split jobs published while a helper is
/// awake: when about 10% of recent ones held their caller up (it waited for a helper's pieces longer than
/// doing them itself would have taken: a helper preempted inside its piece on a busy machine), or when the
/// calling thread is preempted more than 50 times a second (another process wants its core), this is false
/// for 100 ms, then for twice as long each time it happens again within 30 s, up to 5 s. Work large enough to
/// gain on a busy machine too is split regardless; work that gains only when a helper has a core of its own
/// asks this first. Which thread computes a piece never changes a result, so this changes speed only.
bool helpers_keep_up();

}  // namespace backprop::kernels
