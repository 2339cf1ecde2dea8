// backprop/threads.hpp — one thread count for backprop's kernels and for BLAS.
//
// backprop's kernels (matrix products split into row blocks, element-wise ops, reductions, optimiser updates)
// run on one pool of its own threads; BLAS is always called on a single thread, so there is never a second
// pool competing for the cores. Small tensors never pay for a fork: kernels go parallel only above a size
// threshold, and a thread that joins late (or not at all, on a busy machine) never holds up the caller.
//
// Example:
//   bp::set_num_threads(1);   // e.g. when running several processes per machine
#pragma once

namespace backprop {

/// Sets the number of threads used by kernels and BLAS (n >= 1; throws ValueError otherwise).
void set_num_threads(int n);
int get_num_threads();

}  // namespace backprop
