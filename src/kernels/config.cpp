// The kernel configuration (backprop/kernels.hpp): the CPU's features, read once, and the process-wide
// choice of instruction set, matrix-product library, split sizes and the pool's spin time. Kernels read it on every call, so each
// field is an atomic (relaxed loads: a plain load on x86-64).
#include <atomic>
#include <backprop/error.hpp>
#include <backprop/kernels.hpp>

namespace backprop {

namespace {

struct Features {
  bool avx2 = false, avx512 = false;
};

const Features& features() {
  static const Features f = [] {
    __builtin_cpu_init();
    Features r;
    r.avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    r.avx512 = __builtin_cpu_supports("avx512f");
    return r;
  }();
  return f;
}

std::atomic<int> config_isa{-1};  // -1: not chosen yet, best_isa() on first use
std::atomic<int> config_sgemm{static_cast<int>(Sgemm::own)};
std::atomic<std::int64_t> config_split{0};
std::atomic<std::int64_t> config_update_split{0};
std::atomic<std::int64_t> config_spin_us{KernelConfig{}.helper_spin_us};

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::baseline:
      return "baseline";
    case Isa::avx2:
      return "avx2";
    case Isa::avx512:
      return "avx512";
  }
  return "unknown";
}

bool cpu_supports(Isa isa) {
  switch (isa) {
    case Isa::baseline:
      return true;
    case Isa::avx2:
      return features().avx2;
    case Isa::avx512:
      return features().avx512;
  }
  return false;
}

Isa best_isa() {
  static const Isa best = cpu_supports(Isa::avx512) ? Isa::avx512
                          : cpu_supports(Isa::avx2) ? Isa::avx2
                                                    : Isa::baseline;
  return best;
}

KernelConfig kernel_config() {
  KernelConfig c;
  const int isa = config_isa.load(std::memory_order_relaxed);
  c.isa = isa < 0 ? best_isa() : static_cast<Isa>(isa);
  c.sgemm = static_cast<Sgemm>(config_sgemm.load(std::memory_order_relaxed));
  c.gemm_split_macs = config_split.load(std::memory_order_relaxed);
  c.update_split_elems = config_update_split.load(std::memory_order_relaxed);
  c.helper_spin_us = config_spin_us.load(std::memory_order_relaxed);
  return c;
}

void set_kernel_config(const KernelConfig& config) {
  BP_CHECK(config.isa == Isa::baseline || config.isa == Isa::avx2 || config.isa == Isa::avx512, ValueError,
           "set_kernel_config: isa: unknown value ", static_cast<int>(config.isa),
           " (expected Isa::baseline, Isa::avx2 or Isa::avx512)");
  BP_CHECK(cpu_supports(config.isa), ValueError, "set_kernel_config: isa: this CPU cannot run the ",
           isa_name(config.isa), " kernels (the widest it runs is ", isa_name(best_isa()), ")");
  BP_CHECK(config.sgemm == Sgemm::own || config.sgemm == Sgemm::openblas, ValueError,
           "set_kernel_config: sgemm: unknown value ", static_cast<int>(config.sgemm),
           " (expected Sgemm::own or Sgemm::openblas)");
  BP_CHECK(config.gemm_split_macs >= 0, ValueError,
           "set_kernel_config: gemm_split_macs must be >= 0 (0: adaptive; N: split products from N "
           "multiply-adds per thread's block), got ",
           config.gemm_split_macs);
  BP_CHECK(config.update_split_elems >= 0, ValueError,
           "set_kernel_config: update_split_elems must be >= 0 (0: adaptive; N: split updates from N "
           "elements), got ",
           config.update_split_elems);
  BP_CHECK(config.helper_spin_us >= 0 && config.helper_spin_us <= 1'000'000, ValueError,
           "set_kernel_config: helper_spin_us must be in [0, 1000000] microseconds, got ",
           config.helper_spin_us);
  config_isa.store(static_cast<int>(config.isa), std::memory_order_relaxed);
  config_sgemm.store(static_cast<int>(config.sgemm), std::memory_order_relaxed);
  config_split.store(config.gemm_split_macs, std::memory_order_relaxed);
  config_update_split.store(config.update_split_elems, std::memory_order_relaxed);
  config_spin_us.store(config.helper_spin_us, std::memory_order_relaxed);
}

}  // namespace backprop
