// One thread count for everything. BLAS runs on a single thread in every call (src/kernels/gemm.cpp sets the
// calling thread's OpenMP count to 1 around it: OpenBLAS's OpenMP build reads that count on each call), and
// backprop's kernels split their work on its own helping pool (src/kernels/row_pool.hpp), so there is one
// pool, no oversubscription, and results do not depend on the thread count.
#include <omp.h>

#include <backprop/error.hpp>
#include <backprop/threads.hpp>
#include <mutex>

extern "C" void openblas_set_num_threads(int);  // from OpenBLAS (cblas.h of some builds lacks it)

namespace backprop {

namespace {
int& thread_count() {
  static int n = [] {
    const int available = omp_get_max_threads();
    // OpenBLAS's OpenMP build copies its thread count into OpenMP's: restore ours afterwards.
    openblas_set_num_threads(1);
    omp_set_num_threads(available);
    return available;
  }();
  return n;
}
std::mutex thread_mutex;
}  // namespace

void set_num_threads(int n) {
  BP_CHECK(n >= 1, ValueError, "set_num_threads: expected at least 1 thread, got ", n);
  std::lock_guard lock(thread_mutex);
  thread_count() = n;
  openblas_set_num_threads(1);
  omp_set_num_threads(n);
}

int get_num_threads() {
  std::lock_guard lock(thread_mutex);
  return thread_count();
}

}  // namespace backprop
