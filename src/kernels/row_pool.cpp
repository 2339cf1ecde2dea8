// Helping parallel-for (row_pool.hpp). One pool per process, created on first use and never destroyed: its
// helpers are detached and sleep when idle, so nothing has to be torn down in a particular order at exit, and
// a process forked from this one (whose helpers do not exist) still runs every job, on the caller alone.
#include "kernels/row_pool.hpp"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace backprop::kernels {

namespace {

// How long a helper keeps looking for the next job before it goes to sleep. The products of one training step
// follow each other within tens to hundreds of microseconds; waking a sleeping thread costs tens of
// microseconds on a virtual machine. A helper spins at most this long after each job, so on a busy machine it
// takes little from other processes.
constexpr auto kSpin = std::chrono::microseconds(200);

struct Job {
  const std::function<void(std::int64_t)>* body = nullptr;  // valid while a claimed piece is unfinished
  std::int64_t chunks = 0;
  int max_helpers = 0;
  std::atomic<std::int64_t> next{0};
  std::atomic<std::int64_t> done{0};
  std::atomic<int> helpers{0};
};

std::atomic<std::uint64_t> helper_chunks{0}, caller_chunks{0};

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
        std::thread(&Pool::helper, this).detach();
        ++started_;
      }
      current_ = job;
      generation_.fetch_add(1, std::memory_order_release);
    }
    wake_.notify_all();
    const std::int64_t mine = work_on(*job);
    caller_chunks.fetch_add(static_cast<std::uint64_t>(mine), std::memory_order_relaxed);
    // Only pieces a helper has claimed can still be running; wait for those.
    for (int spins = 0; job->done.load(std::memory_order_acquire) < chunks; ++spins) {
      if (spins < 4096)
        cpu_relax();
      else
        std::this_thread::yield();
    }
    std::lock_guard lock(mutex_);
    if (current_ == job) current_.reset();  // helpers that wake later find nothing to do
  }

 private:
  void helper() {
    std::uint64_t seen = generation_.load(std::memory_order_acquire);
    for (;;) {
      // Spin a little for the next job, then sleep until one is published.
      const auto until = std::chrono::steady_clock::now() + kSpin;
      int polls = 0;
      while (generation_.load(std::memory_order_acquire) == seen) {
        cpu_relax();
        if (++polls % 64 == 0 && std::chrono::steady_clock::now() > until) break;
      }
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

  std::mutex mutex_;
  std::condition_variable wake_;
  std::shared_ptr<Job> current_;
  std::atomic<std::uint64_t> generation_{0};
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
  return {helper_chunks.load(std::memory_order_relaxed), caller_chunks.load(std::memory_order_relaxed)};
}

}  // namespace backprop::kernels
