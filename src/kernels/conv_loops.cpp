// Convolution's and BatchNorm2d's loops (conv_loops.inl) compiled three times: for the x86-64 baseline, for
// AVX2 + FMA and for AVX-512F, as the optimisers' update loops are (src/optim/update_kernels.cpp).
#include "kernels/conv_loops.hpp"

#include <immintrin.h>

#include <algorithm>
#include <array>
#include <backprop/kernels.hpp>
#include <cstring>
#include <type_traits>
#include <utility>

#include "kernels/isa_pick.hpp"
#include "kernels/isa_region.hpp"

namespace backprop::kernels {

namespace baseline {
namespace {
constexpr std::int64_t kVectorBytes = 16;
#include "kernels/conv_loops.inl"
}  // namespace
constexpr ConvLoops<float> kF32 = make_loops<float>();
constexpr ConvLoops<double> kF64 = make_loops<double>();
}  // namespace baseline

BACKPROP_ISA_BEGIN("avx2,fma")
namespace avx2 {
namespace {
constexpr std::int64_t kVectorBytes = 32;
#include "kernels/conv_loops.inl"
}  // namespace
constexpr ConvLoops<float> kF32 = make_loops<float>();
constexpr ConvLoops<double> kF64 = make_loops<double>();
}  // namespace avx2
BACKPROP_ISA_END

BACKPROP_ISA_BEGIN("avx512f")
namespace avx512 {
namespace {
constexpr std::int64_t kVectorBytes = 64;
#include "kernels/conv_loops.inl"
}  // namespace
constexpr ConvLoops<float> kF32 = make_loops<float>();
constexpr ConvLoops<double> kF64 = make_loops<double>();
}  // namespace avx512
BACKPROP_ISA_END

template <>
const ConvLoops<float>& conv_loops<float>() {
  return pick_isa(baseline::kF32, avx2::kF32, avx512::kF32);
}

template <>
const ConvLoops<double>& conv_loops<double>() {
  return pick_isa(baseline::kF64, avx2::kF64, avx512::kF64);
}

}  // namespace backprop::kernels
