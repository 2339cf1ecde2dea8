// The optimisers' update loops (update_loops.inl) compiled three times: for the x86-64 baseline, for AVX2 +
// FMA and for AVX-512F. Each copy sits in its own namespace with internal linkage, so no copy built for a
// wider instruction set can stand in for the baseline one; the wider ones run only where the CPU has them
// (kernel_config().isa, set_kernel_config checks it).
#include "optim/update_kernels.hpp"

#include <algorithm>
#include <backprop/kernels.hpp>
#include <cmath>
#include <cstdint>

namespace backprop::optim::kernels {

namespace baseline {
namespace {
#include "optim/update_loops.inl"
}  // namespace
constexpr UpdateLoops<float> kF32 = make_loops<float>();
constexpr UpdateLoops<double> kF64 = make_loops<double>();
}  // namespace baseline

#if defined(__clang__)  // clang does not take GCC's target pragma
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif
namespace avx2 {
namespace {
#include "optim/update_loops.inl"
}  // namespace
constexpr UpdateLoops<float> kF32 = make_loops<float>();
constexpr UpdateLoops<double> kF64 = make_loops<double>();
}  // namespace avx2
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

#if defined(__clang__)  // clang does not take GCC's target pragma
#pragma clang attribute push(__attribute__((target("avx512f"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f")
#endif
namespace avx512 {
namespace {
#include "optim/update_loops.inl"
}  // namespace
constexpr UpdateLoops<float> kF32 = make_loops<float>();
constexpr UpdateLoops<double> kF64 = make_loops<double>();
}  // namespace avx512
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

namespace {
template <class T>
const UpdateLoops<T>& pick(const UpdateLoops<T>& base, const UpdateLoops<T>& avx2,
                           const UpdateLoops<T>& avx512) {
  switch (kernel_config().isa) {
    case Isa::avx512:
      return avx512;
    case Isa::avx2:
      return avx2;
    case Isa::baseline:
      return base;
  }
  return base;
}
}  // namespace

template <>
const UpdateLoops<float>& update_loops<float>() {
  return pick(baseline::kF32, avx2::kF32, avx512::kF32);
}

template <>
const UpdateLoops<double>& update_loops<double>() {
  return pick(baseline::kF64, avx2::kF64, avx512::kF64);
}

}  // namespace backprop::optim::kernels
