// ReLU's loops (activation_loops.inl) compiled for the x86-64 baseline, for AVX2 + FMA and for AVX-512F, as
// the convolution loops are (conv_loops.cpp).
#include "kernels/activation_loops.hpp"

#include <immintrin.h>

#include "kernels/isa_pick.hpp"
#include "kernels/isa_region.hpp"

namespace backprop::kernels {

namespace baseline {
namespace {
#include "kernels/activation_loops.inl"
}  // namespace
constexpr ActivationLoops<float> kF32 = make_loops<float>();
constexpr ActivationLoops<double> kF64 = make_loops<double>();
}  // namespace baseline

BACKPROP_ISA_BEGIN("avx2,fma")
namespace avx2 {
namespace {
#include "kernels/activation_loops.inl"
}  // namespace
constexpr ActivationLoops<float> kF32 = make_loops<float>();
constexpr ActivationLoops<double> kF64 = make_loops<double>();
}  // namespace avx2
BACKPROP_ISA_END

BACKPROP_ISA_BEGIN("avx512f")
namespace avx512 {
namespace {
#include "kernels/activation_loops.inl"
}  // namespace
constexpr ActivationLoops<float> kF32 = make_loops<float>();
constexpr ActivationLoops<double> kF64 = make_loops<double>();
}  // namespace avx512
BACKPROP_ISA_END

template <>
const ActivationLoops<float>& activation_loops<float>() {
  return pick_isa(baseline::kF32, avx2::kF32, avx512::kF32);
}

template <>
const ActivationLoops<double>& activation_loops<double>() {
  return pick_isa(baseline::kF64, avx2::kF64, avx512::kF64);
}

}  // namespace backprop::kernels
