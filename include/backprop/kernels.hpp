// backprop/kernels.hpp — which CPU kernels run: instruction set, matrix-product library, split size.
//
// The library is built for any x86-64. Its hand-written kernels (the f32 matrix products and the optimiser
// update loops) are compiled for several instruction sets, and one variant is chosen when the process first
// needs it, from what the CPU executes: AVX-512 where the CPU has AVX-512F, else AVX2 + FMA, else the
// baseline (x86-64 SSE2; products then all go to OpenBLAS, which picks its own kernels for the CPU). The
// variants give the same results up to rounding. The defaults are what measured fastest; tests and benchmarks
// may change them from code.
//
// Example:
//   bp::KernelConfig k = bp::kernel_config();
//   k.isa = bp::Isa::avx2;            // force a variant (ValueError if this CPU cannot run it)
//   k.sgemm = bp::Sgemm::openblas;    // every matrix product through OpenBLAS
//   bp::set_kernel_config(k);
//   std::cout << bp::isa_name(bp::kernel_config().isa) << "\n";  // "avx512", "avx2" or "baseline"
#pragma once

#include <cstdint>

namespace backprop {

/// Instruction-set variants of the hand-written kernels, from the most widely available.
enum class Isa {
  baseline,  // x86-64 (SSE2): runs on every x86-64 CPU
  avx2,      // AVX2 + FMA (Haswell, Zen and later)
  avx512,    // AVX-512F (Skylake-SP, Ice Lake, Zen 4 and later)
};

/// "baseline", "avx2" or "avx512".
const char* isa_name(Isa isa);
/// Whether this CPU executes the variant (checked once, with the CPU's feature flags).
bool cpu_supports(Isa isa);
/// The widest variant this CPU executes: the default choice.
Isa best_isa();

/// Who computes f32 matrix products.
enum class Sgemm {
  own,       // backprop's kernels on the small, skinny products where they measured faster (AVX2 or AVX-512
             // variant), OpenBLAS for the rest (and for every product in the baseline variant)
  openblas,  // every product through OpenBLAS
};

struct KernelConfig {
  /// The instruction-set variant of the hand-written kernels. Default: best_isa().
  Isa isa = best_isa();
  Sgemm sgemm = Sgemm::own;
  /// Multiply-adds a thread's block of a matrix product needs before the product is split across threads.
  /// 0 (default): adaptive, 2^22 always and 2^20 while the pool's helper threads keep up
  /// (docs/performance.md); N >= 1: that fixed N.
  std::int64_t gemm_split_macs = 0;
  /// Elements an optimiser update (or another pass over freshly written tensors) needs before it is split
  /// across threads. 0 (default): adaptive, 2^20 always and 2^17 when the products before it ran split and
  /// the helpers keep up; N >= 1: that fixed N.
  std::int64_t update_split_elems = 0;
  /// How long the thread pool's helpers look for the next job after one before they sleep, in microseconds
  /// (0 to 1,000,000). Spinning lets the next product of a step start on both cores at once; sleeping gives
  /// the core back to other processes.
  std::int64_t helper_spin_us = 200;
};

/// The configuration in use (the defaults until set_kernel_config is called).
KernelConfig kernel_config();
/// Replaces the configuration for the whole process. Throws ValueError, naming the field, when this CPU
/// cannot run config.isa or a number is out of its range. Call it between computations, not while kernels run on other
/// threads (a product already running finishes with the configuration it started with).
void set_kernel_config(const KernelConfig& config);

}  // namespace backprop
