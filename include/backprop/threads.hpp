// backprop/threads.hpp — one thread count for backprop's kernels and for BLAS.
//
// backprop's element-wise kernels and OpenBLAS share one OpenMP runtime, so they never run two thread pools
// against each other. Small tensors never pay for a thread fork: kernels go parallel only above a size
// threshold.
//
//   bp::set_num_threads(1);   // e.g. when running several processes per machine
#pragma once

namespace backprop {

/// Sets the number of threads used by kernels and BLAS (n >= 1; throws ValueError otherwise).
void set_num_threads(int n);
int get_num_threads();

}  // namespace backprop
