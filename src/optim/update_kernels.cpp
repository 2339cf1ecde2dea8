// The optimisers' update loops (update_loops.inl) compiled three times: for the x86-64 baseline, for AVX2 +
// FMA and for AVX-512F. Each copy sits in its own namespace with internal linkage, so no copy built for a
// wider instruction set can stand in for the baseline one; the wider ones run only where the CPU has them
// (kernel_config().isa, set_kernel_config checks it).
#include "optim/update_kernels.hpp"

#include <algorithm>
#include <backprop/kernels.hpp>
#include <cmath>
#include <cstdint>

#include "kernels/isa_pick.hpp"
#include "kernels/isa_region.hpp"

namespace backprop::optim::kernels {

namespace baseline {
namespace {
#include "optim/update_loops.inl"
}  // namespace
constexpr UpdateLoops<float> kF32 = make_loops<float>();
constexpr UpdateLoops<double> kF64 = make_loops<double>();
}  // namespace baseline

BACKPROP_ISA_BEGIN("avx2,fma")
namespace avx2 {
namespace {
#include "optim/update_loops.inl"
}  // namespace
constexpr UpdateLoops<float> kF32 = make_loops<float>();
constexpr UpdateLoops<double> kF64 = make_loops<double>();
}  // namespace avx2
BACKPROP_ISA_END

BACKPROP_ISA_BEGIN("avx512f")
namespace avx512 {
namespace {
#include "optim/update_loops.inl"
}  // namespace
constexpr UpdateLoops<float> kF32 = make_loops<float>();
constexpr UpdateLoops<double> kF64 = make_loops<double>();
}  // namespace avx512
BACKPROP_ISA_END

template <>
const UpdateLoops<float>& update_loops<float>() {
  return backprop::kernels::pick_isa(baseline::kF32, avx2::kF32, avx512::kF32);
}

template <>
const UpdateLoops<double>& update_loops<double>() {
  return backprop::kernels::pick_isa(baseline::kF64, avx2::kF64, avx512::kF64);
}

}  // namespace backprop::optim::kernels
