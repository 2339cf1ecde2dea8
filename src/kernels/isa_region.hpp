// Regions of a translation unit compiled for one instruction set, for GCC and clang alike (clang does not take
// GCC's target pragma):
//
//   BACKPROP_ISA_BEGIN("avx2,fma")
//   ... functions that may use AVX2 and FMA ...
//   BACKPROP_ISA_END
#pragma once

#define BACKPROP_PRAGMA(text) _Pragma(#text)
#if defined(__clang__)
#define BACKPROP_ISA_BEGIN(isa) \
  BACKPROP_PRAGMA(clang attribute push(__attribute__((target(isa))), apply_to = function))
#define BACKPROP_ISA_END BACKPROP_PRAGMA(clang attribute pop)
#else
#define BACKPROP_ISA_BEGIN(isa) BACKPROP_PRAGMA(GCC push_options) BACKPROP_PRAGMA(GCC target(isa))
#define BACKPROP_ISA_END BACKPROP_PRAGMA(GCC pop_options)
#endif
