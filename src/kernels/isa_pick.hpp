// Internal: the variant of kernel_config().isa among three builds of the same loops (baseline, AVX2 and
// AVX-512), each a static table of function pointers (conv_loops.cpp, optim/update_kernels.cpp).
#pragma once

#include <backprop/kernels.hpp>

namespace backprop::kernels {

template <class T>
const T& pick_isa(const T& baseline, const T& avx2, const T& avx512) {
  switch (kernel_config().isa) {
    case Isa::avx512:
      return avx512;
    case Isa::avx2:
      return avx2;
    case Isa::baseline:
      break;
  }
  return baseline;
}

}  // namespace backprop::kernels
