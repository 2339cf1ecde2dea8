#include <backprop/error.hpp>
#include <backprop/threads.hpp>

#include <omp.h>

extern "C" void openblas_set_num_threads(int);  // from OpenBLAS (cblas.h of some builds lacks it)

namespace backprop {

void set_num_threads(int n) {
  BP_CHECK(n >= 1, ValueError, "set_num_threads: expected at least 1 thread, got ", n);
  omp_set_num_threads(n);
  openblas_set_num_threads(n);
}

int get_num_threads() { return omp_get_max_threads(); }

}  // namespace backprop
