// Helping parallel-for (row_pool.hpp). One pool per process, created on first use and never destroyed: its
// helpers are detached and sleep when idle, so nothing has to be torn down in a particular order at exit, and
// a process forked from this one (whose helpers do not exist) still runs every job, on the caller alone.
#include "kernels/row_pool.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include <sched.h>
#include <sys/resource.h>

#include <algorithm>
#include <atomic>
#include <backprop/kernels.hpp>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace backprop::kernels {

namespace {

// How long a helper keeps looking for the next job before it goes to sleep: KernelConfig::helper_spin_us
// (200 us by default). The products of one training step follow each other within tens to hundreds of
// microseconds; waking a sleeping thread costs tens of microseconds on a virtual machine. A helper spins at
// most this long after each job, so on a busy machine it takes little from other processes.

struct Job {
  const std::function<void(std::int64_t)>* body = nullptr;  // valid while a claimed piece is unfinished
  std::int64_t chunks = 0;
  int max_helpers = 0;
  std::atomic<std::int64_t> next{0};
  std::atomic<std::int64_t> done{0};
  std::atomic<int> helpers{0};
};

std::atomic<std::uint64_t> helper_chunks{0}, caller_chunks{0};

using Clock = std::chrono::steady_clock;

// How split jobs have been going (see helpers_keep_up()). Only jobs published while a helper was spinning
// count: one that finds the helpers asleep says the machine was quiet, not busy. late_share is a moving
// average of the share of those jobs that held their caller up, in 1/1024ths (each job weighs 1/16); when
// it reaches about 10% small splits stop for a while (distrust_until), 100 ms the first time, twice as long
// each time it happens again within 30 s of the last, up to 5 s.
constexpr int kLateShareLimit = 102;
constexpr Clock::duration kFirstDistrust = std::chrono::milliseconds(100),
                          kLongestDistrust = std::chrono::seconds(5),
                          kForgiveAfter = std::chrono::seconds(30);
std::atomic<int> late_share{0};
std::atomic<Clock::rep> distrust_until{0}, distrust_for{0}, distrusted_at{0};
std::atomic<std::uint64_t> late_jobs{0}, distrusts{0}, preempted_distrusts{0};

// Pauses small splits (distrust_until), for 100 ms the first time, twice as long each time it happens again
// within 30 s of the last, up to 5 s; the late share is judged afresh after the pause. On a machine that
// stays busy, the time spent finding out again (one window of check_preemptions) is then a few percent.
void distrust() {
  const Clock::rep now = Clock::now().time_since_epoch().count();
  Clock::duration span(distrust_for.load(std::memory_order_relaxed));
  if (span.count() == 0 ||
      Clock::duration(now - distrusted_at.load(std::memory_order_relaxed)) > kForgiveAfter)
    span = kFirstDistrust;
  else
    span = std::min<Clock::duration>(2 * span, kLongestDistrust);
  distrust_for.store(span.count(), std::memory_order_relaxed);
  distrusted_at.store(now, std::memory_order_relaxed);
  distrust_until.store(now + span.count(), std::memory_order_relaxed);
  late_share.store(0, std::memory_order_relaxed);
  distrusts.fetch_add(1, std::memory_order_relaxed);
}

// The other sign of a busy machine: the calling thread itself is preempted often. With a second runnable
// process on a 2-core machine, a spinning helper makes three threads share two cores, and the caller's own
// work slows down by more than the helper gives back, without any single job being late. Measured on this
// machine: an idle run's caller is preempted about 5 times a second, with `yes` on the other core about 200.
// Checked every 8th watched job over windows of at least 20 ms (getrusage is a system call); at least 3
// preemptions in a window are needed, so an idle machine's odd one does not count (at 5 a second, 3 in
// 20 ms happen about once in 2 minutes), while a busy machine's show within a window or two.
constexpr long kPreemptionsPerSecond = 50;
void check_preemptions() {
#ifdef RUSAGE_THREAD
  thread_local std::uint32_t jobs = 0;
  thread_local Clock::time_point since = Clock::now();
  thread_local long preempted_before = -1;
  if (++jobs % 8 != 0) return;
  const auto now = Clock::now();
  if (now - since < std::chrono::milliseconds(20) && preempted_before >= 0) return;
  rusage ru{};
  if (getrusage(RUSAGE_THREAD, &ru) != 0) return;
  const double seconds = std::chrono::duration<double>(now - since).count();
  const long preempted = ru.ru_nivcsw - preempted_before;
  if (preempted_before >= 0 && preempted >= 3 &&
      static_cast<double>(preempted) > kPreemptionsPerSecond * seconds) {
    distrust();
    preempted_distrusts.fetch_add(1, std::memory_order_relaxed);
  }
  preempted_before = ru.ru_nivcsw;
  since = now;
#endif
}

// A job held its caller up when the caller waited for helpers' pieces longer than doing those pieces itself
// would have taken (at the pace of its own pieces): the split cost more than it saved.
void record_job(std::int64_t chunks, std::int64_t mine, Clock::duration own, Clock::duration waited) {
  const bool late = mine > 0 && waited * mine > own * (chunks - mine);
  const int share = late_share.load(std::memory_order_relaxed);
  const int next = share + ((late ? 1024 : 0) - share) / 16;
  late_share.store(next, std::memory_order_relaxed);
  if (!late) return;
  late_jobs.fetch_add(1, std::memory_order_relaxed);
  if (next >= kLateShareLimit) distrust();
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#else
  std::this_thread::yield();
#endif
}

// Takes pieces until none is left; returns how many this thread did.
std::int64_t work_on(Job& job) {
  std::int64_t did = 0;
  for (std::int64_t i = job.next.fetch_add(1, std::memory_order_relaxed); i < job.chunks;
       i = job.next.fetch_add(1, std::memory_order_relaxed)) {
    (*job.body)(i);
    ++did;
    job.done.fetch_add(1, std::memory_order_release);
  }
  return did;
}

class Pool {
 public:
  void run(std::int64_t chunks, int threads, const std::function<void(std::int64_t)>& body) {
    auto job = std::make_shared<Job>();
    job->body = &body;
    job->chunks = chunks;
    job->max_helpers = threads - 1;
    {
      std::lock_guard lock(mutex_);
      while (static_cast<int>(started_) < threads - 1) {
        // The helper counts jobs from before this one: it takes part in it however late it starts running.
        std::thread(&Pool::helper, this, generation_.load(std::memory_order_relaxed)).detach();
        ++started_;
      }
      current_ = job;
      generation_.fetch_add(1, std::memory_order_release);
    }
    const bool watched = spinning_.load(std::memory_order_relaxed) > 0;  // a helper is awake to take part
    wake_.notify_all();
    const auto start = Clock::now();
    const std::int64_t mine = work_on(*job);
    caller_chunks.fetch_add(static_cast<std::uint64_t>(mine), std::memory_order_relaxed);
    // Only pieces a helper has claimed can still be running; wait for those.
    if (job->done.load(std::memory_order_acquire) < chunks) {
      const auto own_done = Clock::now();
      for (int spins = 0; job->done.load(std::memory_order_acquire) < chunks; ++spins) {
        if (spins < 4096)
          cpu_relax();
        else
          std::this_thread::yield();
      }
      if (watched) record_job(chunks, mine, own_done - start, Clock::now() - own_done);
    } else if (watched) {
      record_job(chunks, mine, {}, {});
    }
    if (watched) check_preemptions();
    std::lock_guard lock(mutex_);
    if (current_ == job) current_.reset();  // helpers that wake later find nothing to do
  }

 private:
  void helper(std::uint64_t seen) {
    for (;;) {
      // Spin a little for the next job, then sleep until one is published.
      const auto until = Clock::now() + std::chrono::microseconds(kernel_config().helper_spin_us);
      int polls = 0;
      spinning_.fetch_add(1, std::memory_order_relaxed);
      while (generation_.load(std::memory_order_acquire) == seen) {
        cpu_relax();
        if (++polls % 64 == 0 && Clock::now() > until) break;
      }
      spinning_.fetch_sub(1, std::memory_order_relaxed);
      std::shared_ptr<Job> job;
      {
        std::unique_lock lock(mutex_);
        wake_.wait(lock, [&] { return generation_.load(std::memory_order_relaxed) != seen; });
        seen = generation_.load(std::memory_order_relaxed);
        job = current_;
      }
      if (!job || job->helpers.fetch_add(1, std::memory_order_relaxed) >= job->max_helpers) continue;
      const std::int64_t did = work_on(*job);
      helper_chunks.fetch_add(static_cast<std::uint64_t>(did), std::memory_order_relaxed);
    }
  }

 public:
  int spinning() const { return spinning_.load(std::memory_order_relaxed); }

 private:
  std::mutex mutex_;
  std::condition_variable wake_;
  std::shared_ptr<Job> current_;
  std::atomic<std::uint64_t> generation_{0};
  std::atomic<int> spinning_{0};  // helpers spinning for the next job right now
  unsigned started_ = 0;
};

Pool& pool() {
  static Pool* p = new Pool;  // never destroyed (see the top of this file)
  return *p;
}

}  // namespace

int usable_cpus() {
  static const int n = [] {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 1 << 16;  // unknown: do not limit
    return std::max(1, CPU_COUNT(&set));
  }();
  return n;
}

void parallel_chunks(std::int64_t chunks, int threads, const std::function<void(std::int64_t)>& body) {
  if (chunks <= 0) return;
  threads = std::min(threads, usable_cpus());
  if (threads <= 1 || chunks == 1) {
    for (std::int64_t i = 0; i < chunks; ++i) body(i);
    caller_chunks.fetch_add(static_cast<std::uint64_t>(chunks), std::memory_order_relaxed);
    return;
  }
  pool().run(chunks, threads, body);
}

ChunkCounts chunk_counts() {
  ChunkCounts c;
  c.by_helpers = helper_chunks.load(std::memory_order_relaxed);
  c.by_callers = caller_chunks.load(std::memory_order_relaxed);
  c.late_jobs = late_jobs.load(std::memory_order_relaxed);
  c.distrusts = distrusts.load(std::memory_order_relaxed);
  c.preempted_distrusts = preempted_distrusts.load(std::memory_order_relaxed);
  c.helpers_spinning = pool().spinning();
  return c;
}

bool helpers_keep_up() {
  return Clock::now().time_since_epoch().count() >= distrust_until.load(std::memory_order_relaxed);
}

}  // namespace backprop::kernels
