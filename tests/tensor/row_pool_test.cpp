// The helping parallel-for behind backprop's threads (src/kernels/row_pool.hpp): every piece runs exactly
// once, whatever the thread count, for callers on several threads at once; idle helpers do take part; a
// caller whose helpers never get to run still finishes its job alone; and helpers that hold their caller up
// pause the splitting of small work for a while.
#include "kernels/row_pool.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <backprop/backprop.hpp>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "kernels/parallel.hpp"

namespace bp = backprop;
namespace kn = backprop::kernels;

namespace {

TEST(RowPool, EveryPieceRunsExactlyOnce) {
  for (int threads : {1, 2, 3, 4})
    for (std::int64_t chunks : {0, 1, 2, 3, 7, 64, 1000}) {
      std::vector<std::atomic<int>> hits(static_cast<std::size_t>(chunks));
      kn::parallel_chunks(chunks, threads, [&](std::int64_t i) { hits[static_cast<std::size_t>(i)]++; });
      for (std::int64_t i = 0; i < chunks; ++i)
        ASSERT_EQ(hits[static_cast<std::size_t>(i)].load(), 1)
            << threads << " threads, piece " << i << " of " << chunks;
    }
}

TEST(RowPool, CallersOnSeveralThreadsEachCompleteTheirOwnJob) {
  constexpr int kCallers = 4, kJobs = 200;
  std::vector<std::thread> callers;
  std::atomic<int> wrong{0};
  for (int c = 0; c < kCallers; ++c)
    callers.emplace_back([&, c] {
      for (int j = 0; j < kJobs; ++j) {
        const std::int64_t chunks = 1 + (c * 7 + j) % 13;
        std::vector<std::atomic<int>> hits(static_cast<std::size_t>(chunks));
        kn::parallel_chunks(chunks, 2, [&](std::int64_t i) { hits[static_cast<std::size_t>(i)]++; });
        for (auto& h : hits) wrong += h.load() != 1;
      }
    });
  for (auto& t : callers) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(RowPool, IdleHelpersTakePart) {
  if (kn::usable_cpus() < 2) GTEST_SKIP() << "one CPU in this process's affinity mask: no helpers are used";
  // The caller's first piece waits until another thread has taken a piece of the same job: the pool's counter
  // of helper pieces shows a helper did, whenever it got a core (a caller that never saw one would wait here
  // until the 60 s hang guard).
  const auto before = kn::chunk_counts().by_helpers;
  const auto caller = std::this_thread::get_id();
  std::atomic<bool> other_ran{false};
  const auto guard = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  kn::parallel_chunks(40, 2, [&](std::int64_t) {
    if (std::this_thread::get_id() != caller) {
      other_ran = true;
      return;
    }
    while (!other_ran && std::chrono::steady_clock::now() < guard) std::this_thread::yield();
  });
  EXPECT_TRUE(other_ran.load());
  // The helper adds its pieces to the counter once it leaves the job, which may be after the caller returned.
  while (kn::chunk_counts().by_helpers == before && std::chrono::steady_clock::now() < guard)
    std::this_thread::yield();
  EXPECT_GT(kn::chunk_counts().by_helpers, before);
}

TEST(RowPool, NoMoreThreadsThanUsableCpus) {
  // The rule of row_pool.hpp: never more threads than the CPUs in the process's affinity mask.
  cpu_set_t mask;
  CPU_ZERO(&mask);
  ASSERT_EQ(sched_getaffinity(0, sizeof mask, &mask), 0);
  const int cpus = CPU_COUNT(&mask);
  EXPECT_EQ(kn::usable_cpus(), cpus);
  // Jobs asking for 64 threads run every piece once, on no more distinct threads than that (pieces that busy
  // wait 50 us give every helper that exists the time to join in).
  std::mutex m;
  std::set<std::thread::id> threads;
  for (int job = 0; job < 20; ++job) {
    std::vector<std::atomic<int>> hits(64);
    kn::parallel_chunks(64, 64, [&](std::int64_t i) {
      hits[static_cast<std::size_t>(i)]++;
      {
        std::lock_guard<std::mutex> lock(m);
        threads.insert(std::this_thread::get_id());
      }
      const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(50);
      while (std::chrono::steady_clock::now() < until) {
      }
    });
    for (auto& h : hits) ASSERT_EQ(h.load(), 1);
  }
  EXPECT_LE(threads.size(), static_cast<std::size_t>(cpus));
  EXPECT_GE(threads.size(), 1u);
}

TEST(RowPool, UnderAOneCpuMaskEveryJobRunsOnItsCaller) {
  // The pool reads the mask once per process, so the RowPool tests run again in a child process whose mask
  // holds one CPU only (as under mpirun's default binding): there NoMoreThreadsThanUsableCpus sees one
  // thread.
  cpu_set_t mask;
  CPU_ZERO(&mask);
  ASSERT_EQ(sched_getaffinity(0, sizeof mask, &mask), 0);
  int first = 0;
  while (!CPU_ISSET(first, &mask)) ++first;
  cpu_set_t one;
  CPU_ZERO(&one);
  CPU_SET(first, &one);
  // (The tests that need two CPUs skip there; the child's output goes to a file, where CTest does not read
  // their "SKIPPED" as this test's.)
  std::string exe = "/proc/self/exe", filter = "--gtest_filter=RowPool.*:-RowPool.UnderAOneCpuMask*";
  char* argv[] = {exe.data(), filter.data(), nullptr};
  const std::string log = ::testing::TempDir() + "row_pool_one_cpu." + std::to_string(::getpid()) + ".log";
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {  // only async-signal-safe calls between fork and exec
    const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0 && ::dup2(fd, 1) >= 0 && ::dup2(fd, 2) >= 0 && sched_setaffinity(0, sizeof one, &one) == 0)
      execv(argv[0], argv);
    _exit(127);
  }
  int status = 0;
  ASSERT_EQ(waitpid(pid, &status, 0), pid);
  std::ifstream in(log);
  std::string output((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::remove(log.c_str());
  for (std::size_t at = output.find("SKIPPED"); at != std::string::npos; at = output.find("SKIPPED", at))
    output.replace(at, 7, "skipped");
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
      << "the RowPool tests failed under a one-CPU mask:\n"
      << output;
  EXPECT_NE(output.find("[  PASSED  ]"), std::string::npos) << output;
}

TEST(RowPool, ACallerNeverWaitsForAHelperThatHasNotStarted) {
  // Occupy the helper with a long piece of one caller's job; a second caller's job of many short pieces then
  // runs on the second caller alone and finishes long before the first piece does.
  std::atomic<bool> release{false}, started{false};
  std::thread first([&] {
    kn::parallel_chunks(2, 2, [&](std::int64_t i) {
      if (i == 1) {  // taken by whichever thread comes second: the caller takes piece 0 first
        started = true;
        while (!release) std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    });
  });
  // Wait until the blocking piece runs (on the helper, or on the first caller itself).
  while (!started) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  std::atomic<int> count{0};
  // The blocked piece is released only after this job returns: a caller that waited for it would never
  // return.
  kn::parallel_chunks(100, 2, [&](std::int64_t) { count++; });
  EXPECT_EQ(count.load(), 100);
  release = true;
  first.join();
}

// ---- timing: what follows watches the pool react to time (spinning 200 us, pieces held up for ms), which a
// loaded machine can break. These run only in builds configured with -DBACKPROP_TIMING_TESTS=ON (CTest label
// "timing"; tests/CMakeLists.txt).

TEST(RowPoolTiming, HelpersSpinBrieflyAfterAJobThenSleep) {
  if (kn::usable_cpus() < 2) GTEST_SKIP() << "one CPU in this process's affinity mask: no helpers are used";
  // Right after a job a helper spins for the next one (helpers_spinning > 0); 200 us later it sleeps. Each
  // state is watched for in 1 ms windows, tried for up to 10 s: on a loaded machine the helper and this
  // thread may seldom hold a core at the same time.
  const auto seen = [](bool spinning) {
    const auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - t0 < std::chrono::seconds(10)) {
      if (spinning) kn::parallel_chunks(2, 2, [](std::int64_t) {});
      const auto window = std::chrono::steady_clock::now() + std::chrono::milliseconds(1);
      while (std::chrono::steady_clock::now() < window)
        if ((kn::chunk_counts().helpers_spinning > 0) == spinning) return true;
      if (!spinning) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    return false;
  };
  EXPECT_TRUE(seen(true));
  EXPECT_TRUE(seen(false));
}

TEST(RowPoolTiming, HelpersThatHoldTheirCallerUpPauseSmallSplitsForAWhile) {
  if (kn::usable_cpus() < 2) GTEST_SKIP() << "one CPU in this process's affinity mask: no helpers are used";
  // Jobs whose pieces take 5 ms on a helper and 0.2 ms on the caller: the caller waits far longer than doing
  // them itself would have taken. Only jobs published while a helper is awake count, so each is published
  // once a helper spins for the next job (it spins 200 us after its last piece, then sleeps); tried until the
  // pool reacts, for up to 30 s (another process may hold the core for seconds: meanwhile the caller takes
  // every piece itself and no job is late). A busy machine may also pause small splits because the caller is
  // preempted often; the loop waits for a pause that late jobs caused.
  const auto caller = std::this_thread::get_id();
  auto late_distrusts = [] { return kn::chunk_counts().distrusts - kn::chunk_counts().preempted_distrusts; };
  const std::uint64_t before = late_distrusts();
  const std::uint64_t late_before = kn::chunk_counts().late_jobs;
  const std::uint64_t helper_pieces_before = kn::chunk_counts().by_helpers;
  const auto start = std::chrono::steady_clock::now();
  bool paused = false;
  while (late_distrusts() == before && std::chrono::steady_clock::now() - start < std::chrono::seconds(30)) {
    kn::parallel_chunks(2, 2, [](std::int64_t) {});  // wakes a sleeping helper
    const auto t0 = std::chrono::steady_clock::now();
    while (kn::chunk_counts().helpers_spinning == 0 &&
           std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(20))
      std::this_thread::yield();
    kn::parallel_chunks(4, 2, [&](std::int64_t) {
      // Busy, not asleep: a sleep woken late on a loaded machine would slow the caller's pieces as much.
      const auto until = std::chrono::steady_clock::now() + (std::this_thread::get_id() == caller
                                                                 ? std::chrono::microseconds(200)
                                                                 : std::chrono::microseconds(5000));
      while (std::chrono::steady_clock::now() < until) {
      }
    });
    paused = !kn::helpers_keep_up();
  }
  const std::uint64_t helper_pieces = kn::chunk_counts().by_helpers - helper_pieces_before;
  ASSERT_GT(late_distrusts(), before) << helper_pieces << " pieces ran on the helper";
  EXPECT_GT(kn::chunk_counts().late_jobs, late_before);
  EXPECT_TRUE(paused);  // right after the job that tipped it (the pause lasts 100 ms to 5 s)
  // The pause ends by itself (at most 5 s), and jobs still run every piece meanwhile.
  std::vector<std::atomic<int>> hits(16);
  kn::parallel_chunks(16, 2, [&](std::int64_t i) { hits[static_cast<std::size_t>(i)]++; });
  for (auto& h : hits) EXPECT_EQ(h.load(), 1);
  const auto t0 = std::chrono::steady_clock::now();
  while (!kn::helpers_keep_up() && std::chrono::steady_clock::now() - t0 < std::chrono::seconds(8))
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_TRUE(kn::helpers_keep_up());
}

TEST(RowPool, ParallelRangeCoversTheRangeOnce) {
  const int saved = bp::get_num_threads();
  for (int threads : {1, 2, 3}) {
    bp::set_num_threads(threads);
    for (std::int64_t n : {1, 5, 100, 1 << 20}) {
      std::vector<int> seen(static_cast<std::size_t>(n), 0);
      kn::parallel_range(n, 1, [&](std::int64_t b, std::int64_t e) {
        for (std::int64_t i = b; i < e; ++i) seen[static_cast<std::size_t>(i)]++;
      });
      for (std::int64_t i = 0; i < n; ++i) ASSERT_EQ(seen[static_cast<std::size_t>(i)], 1) << n;
    }
  }
  bp::set_num_threads(saved);
}

}  // namespace
