// Matrix products: backprop's own kernels (sgemm_own.hpp, the AVX-512 or AVX2 variant that kernel_config()
// names) on the small products where they measured faster, CBLAS (OpenBLAS) for everything else. Transposes
// are passed as flags, never materialised.
#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <backprop/kernels.hpp>
#include <backprop/threads.hpp>
#include <cstring>

#include "kernels/device_kernels.hpp"
#include "kernels/kernels.hpp"
#include "kernels/row_pool.hpp"
#include "kernels/sgemm_own.hpp"

namespace backprop::kernels {

namespace {

void blas_call(DType dtype, CBLAS_TRANSPOSE opa, CBLAS_TRANSPOSE opb, int m, int n, int k, double alpha,
               const void* a, int lda, const void* b, int ldb, double beta, void* c, int ldc) {
  // OpenBLAS's OpenMP build ignores openblas_set_num_threads(1) at call time: it reads omp_get_max_threads()
  // on every call and threads any product above ~2.6e5 multiply-adds itself. Inside our own parallel region
  // it stays on one thread (omp_in_parallel()); outside, the calling thread's OpenMP thread count is set to 1
  // for the duration of the call and restored after (two ICV writes, nanoseconds), so BLAS never forks a
  // second pool and the only parallelism is our row split below.
  const int saved = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (saved != 1) omp_set_num_threads(1);
  if (dtype == f32) {
    cblas_sgemm(CblasRowMajor, opa, opb, m, n, k, static_cast<float>(alpha), static_cast<const float*>(a),
                lda, static_cast<const float*>(b), ldb, static_cast<float>(beta), static_cast<float*>(c),
                ldc);
  } else {
    cblas_dgemm(CblasRowMajor, opa, opb, m, n, k, alpha, static_cast<const double*>(a), lda,
                static_cast<const double*>(b), ldb, beta, static_cast<double*>(c), ldc);
  }
  if (saved != 1) omp_set_num_threads(saved);
}

// Products are split into row blocks only when a block has enough multiply-adds; smaller products run on the
// calling thread in one call. The blocks go to a helping parallel-for (row_pool.hpp), not to an OpenMP
// parallel region: the caller never waits for a thread that has not started a block. Two thresholds,
// measured on this 2-core machine with 784-256-128-10 (docs/performance.md):
// - from 2^22 multiply-adds per block (about 75 us of one core) a product always splits: batch 128's first
//   layer, 1.13x faster on 2 threads idle and 1.3x with another process spinning on a core;
// - from 2^20 it splits only while the helpers keep up (helpers_keep_up(): few recent splits held their
//   caller up, and the caller is not preempted often). On an idle machine that adds batch 128's second
//   layer and batch 32's first (2 threads: 1.70x instead of 1.23x at batch 128, 1.38x instead of 1.0x at
//   batch 32); under load such small blocks made batch 32 1.3-2.2x slower than one thread (a helper
//   preempted inside its block holds the caller up), so there they pause.
// With OpenMP's fork-join, splitting below 2^24 had made the small nets 5-20x slower on a busy machine.
// KernelConfig::gemm_split_macs = N replaces both by N (no adaptation).
struct SplitWork {
  std::int64_t always;           // blocks at least this large split whatever the load
  std::int64_t when_keeping_up;  // ... and at least this large while helpers_keep_up()
};

SplitWork parallel_gemm_work(std::int64_t split_macs) {
  if (split_macs > 0) return SplitWork{split_macs, split_macs};
  return SplitWork{std::int64_t{1} << 22, std::int64_t{1} << 20};
}
// Row blocks are multiples of this, so every block starts on a whole register tile of the BLAS kernel.
constexpr std::int64_t kRowAlign = 16;

using OwnSgemm = void (*)(bool, bool, std::int64_t, std::int64_t, std::int64_t, float, const float*,
                          std::int64_t, const float*, std::int64_t, float, float*, std::int64_t);

// The own kernel of the configured instruction set; null for the baseline or when OpenBLAS is asked for.
OwnSgemm own_sgemm(const KernelConfig& config) {
  if (config.sgemm != Sgemm::own) return nullptr;
  switch (config.isa) {
    case Isa::avx512:
      return &avx512::sgemm;
    case Isa::avx2:
      return &avx2::sgemm;
    case Isa::baseline:
      return nullptr;
  }
  return nullptr;
}

bool own_sgemm_fits(Isa isa, DType dtype, bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k) {
  // Measured side by side with OpenBLAS 0.3.21 on Zen 4 (bench_micro BM_Sgemm, docs/performance.md). With
  // op(B) = B (the backward products dX = dY W and dW = dY^T X) the own kernel is 6-22% faster from 8 rows
  // and 16 steps of k up, where OpenBLAS packs both operands for little work; it loses on a single row (m = 1
  // is latency-bound in 2 accumulators) and on k < 16. With op(B) = B^T (the forward x W^T) it first
  // transposes B into panels (each thread of a row split its own), which pays from 32 rows of C up (7-11%
  // faster) but not for a few rows or for fewer than 16 columns. On large products (> 2^27 multiply-adds)
  // OpenBLAS's cache blocking wins or ties. The choice depends on the whole product's shape only, never on
  // the thread count.
  if (dtype != f32 || !own_sgemm_supports(ta, tb) || k < 16 || m * n * k > (std::int64_t{1} << 27))
    return false;
  // On AVX-512 exactly 16 rows fill one vector of the swapped form, which then beats OpenBLAS
  // (a convolution's weight gradient with 16 filters, batch-16 layers; docs/performance.md).
  const bool one_vector = isa == Isa::avx512 && m == 16;
  if (tb ? ((m < 32 && !one_vector) || n < 16) : m < 8) return false;
  // The AVX2 variant, against OpenBLAS's Haswell kernels on the same CPU (bench_micro BM_Sgemm with
  // OPENBLAS_CORETYPE=Haswell, docs/performance.md), wins only on x W^T with few rows (the swapped form,
  // 16-18% faster) and loses 2-70% on the other shapes.
  return isa != Isa::avx2 || (tb && 2 * m <= n);
}

}  // namespace

bool use_own_sgemm(DType dtype, bool ta, bool tb, std::int64_t m, std::int64_t n, std::int64_t k) {
  const KernelConfig config = kernel_config();
  return own_sgemm_fits(config.isa, dtype, ta, tb, m, n, k) && own_sgemm(config) != nullptr;
}

void gemm_raw(DType dtype, const void* a, std::int64_t lda, bool ta, const void* b, std::int64_t ldb, bool tb,
              void* c, std::int64_t m, std::int64_t n, std::int64_t k, double alpha, double beta) {
  if (m == 0 || n == 0) return;
  const CBLAS_TRANSPOSE opa = ta ? CblasTrans : CblasNoTrans;
  const CBLAS_TRANSPOSE opb = tb ? CblasTrans : CblasNoTrans;
  if (k == 0) {  // BLAS would not touch C; the product of empty matrices is zero
    dispatch(dtype, [&](auto tag) {
      using T = decltype(tag);
      T* pc = static_cast<T*>(c);
      for (std::int64_t i = 0; i < m * n; ++i) pc[i] = beta == 0.0 ? T(0) : static_cast<T>(beta) * pc[i];
    });
    return;
  }
  // BLAS itself always runs on one thread (see blas_call); the parallelism is ours: the rows of C are split
  // into blocks, one single-threaded call each, by the same kernel for every block (chosen from the whole
  // product's shape). Every element of C is then computed with the same summation order whatever the thread
  // count, so results are bit-identical with 1 or N threads.
  const KernelConfig config = kernel_config();
  const OwnSgemm own = own_sgemm_fits(config.isa, dtype, ta, tb, m, n, k) ? own_sgemm(config) : nullptr;
  const std::size_t esize = dtype_size(dtype);
  auto rows_of_c = [&](std::int64_t r0, std::int64_t mi) {
    // Row r0 of op(A): row r0 of A, or column r0 of A when A is used transposed.
    const auto* ai = static_cast<const char*>(a) + static_cast<std::size_t>(ta ? r0 : r0 * lda) * esize;
    auto* ci = static_cast<char*>(c) + static_cast<std::size_t>(r0 * n) * esize;
    if (own)
      own(ta, tb, mi, n, k, static_cast<float>(alpha), reinterpret_cast<const float*>(ai), lda,
          static_cast<const float*>(b), ldb, static_cast<float>(beta), reinterpret_cast<float*>(ci), n);
    else
      blas_call(dtype, opa, opb, static_cast<int>(mi), static_cast<int>(n), static_cast<int>(k), alpha, ai,
                static_cast<int>(lda), b, static_cast<int>(ldb), beta, ci, static_cast<int>(n));
  };
  // The own kernel's swapped form (x W^T with few rows, sgemm_own.hpp) keeps whole panels of A when
  // the columns of C are split instead (a block of columns is a block of rows of B, read in place).
  const bool split_columns = own && tb && !ta && 2 * m <= n;
  auto cols_of_c = [&](std::int64_t c0, std::int64_t ni) {
    own(false, true, m, ni, k, static_cast<float>(alpha), static_cast<const float*>(a), lda,
        static_cast<const float*>(b) + c0 * ldb, ldb, static_cast<float>(beta), static_cast<float*>(c) + c0,
        n);
  };
  const std::int64_t extent = split_columns ? n : m, other = split_columns ? m : n;
  // Blocks of a multiple of 16 rows (or columns), about two per thread (so a helper that joins late still
  // finds work), fewer when a block would fall below the threshold; one block runs directly.
  const std::int64_t threads = omp_in_parallel() ? 1 : get_num_threads();
  std::int64_t block = extent;
  if (threads > 1) {
    const SplitWork work = parallel_gemm_work(config.gemm_split_macs);
    bool asked = false, keeping_up = false;  // ask the pool once, and only for a small product
    for (std::int64_t pieces : {2 * threads, threads}) {
      const std::int64_t size = ((extent + pieces - 1) / pieces + kRowAlign - 1) / kRowAlign * kRowAlign;
      const std::int64_t macs = size * other * k;
      if (size >= extent || macs < work.when_keeping_up) continue;
      if (macs < work.always && !asked) {
        keeping_up = helpers_keep_up();
        asked = true;
      }
      if (macs >= work.always || keeping_up) {
        block = size;
        break;
      }
    }
  }
  if (block >= extent) {
    rows_of_c(0, m);
    return;
  }
  const std::int64_t blocks = (extent + block - 1) / block;
  parallel_chunks(blocks, static_cast<int>(threads), [&](std::int64_t i) {
    const std::int64_t at = i * block, size = std::min(block, extent - at);
    if (split_columns)
      cols_of_c(at, size);
    else
      rows_of_c(at, size);
  });
}

// A batch of products, e.g. attention's [B*H, q, d] x [B*H, d, k]. Each entry is one gemm_raw call, so every
// entry gets the kernel its own shape picks and the same results as alone. Products too small for gemm_raw
// to split its rows (attention's 64 x 64 x 64 is 2^18 multiply-adds) are instead spread over the threads a
// group of entries at a time, under the same work thresholds as a row split; larger ones run in turn, each
// split by gemm_raw, so the pool is never entered from inside one of its own pieces.
void gemm_batched(DType dtype, std::int64_t batch, const void* a, std::int64_t stride_a, std::int64_t lda,
                  bool ta, const void* b, std::int64_t stride_b, std::int64_t ldb, bool tb, void* c,
                  std::int64_t stride_c, std::int64_t m, std::int64_t n, std::int64_t k) {
  const std::size_t esize = dtype_size(dtype);
  auto entries = [&](std::int64_t first, std::int64_t count) {
    for (std::int64_t i = first; i < first + count; ++i)
      gemm_raw(dtype, static_cast<const char*>(a) + static_cast<std::size_t>(i * stride_a) * esize, lda, ta,
               static_cast<const char*>(b) + static_cast<std::size_t>(i * stride_b) * esize, ldb, tb,
               static_cast<char*>(c) + static_cast<std::size_t>(i * stride_c) * esize, m, n, k, 1.0, 0.0);
  };
  const std::int64_t threads = omp_in_parallel() ? 1 : get_num_threads();
  const std::int64_t macs = m * n * k;
  const SplitWork work = parallel_gemm_work(kernel_config().gemm_split_macs);
  std::int64_t per = batch;  // entries per piece
  if (threads > 1 && macs < work.when_keeping_up) {
    for (std::int64_t pieces : {2 * threads, threads}) {
      const std::int64_t size = (batch + pieces - 1) / pieces;
      if (size >= batch || size * macs < work.when_keeping_up) continue;
      if (size * macs >= work.always || helpers_keep_up()) {
        per = size;
        break;
      }
    }
  }
  if (per >= batch) {
    entries(0, batch);
    return;
  }
  parallel_chunks((batch + per - 1) / per, static_cast<int>(threads),
                  [&](std::int64_t i) { entries(i * per, std::min(per, batch - i * per)); });
}

void gemm(const Tensor& a_in, bool ta, const Tensor& b_in, bool tb, Tensor& c, double alpha, double beta) {
  if (!c.device().is_cpu()) return device_kernels(c.device()).gemm(a_in, ta, b_in, tb, c, alpha, beta);
  const Tensor a = dense(a_in);
  const Tensor b = dense(b_in);
  const std::int64_t m = ta ? a.size(1) : a.size(0);
  const std::int64_t k = ta ? a.size(0) : a.size(1);
  const std::int64_t n = tb ? b.size(0) : b.size(1);
  gemm_raw(a.dtype(), a.raw_data(), a.size(1), ta, b.raw_data(), b.size(1), tb, c.raw_data(), m, n, k, alpha,
           beta);
}

Tensor linear(const Tensor& x_in, const Tensor& weight_in, const Tensor& bias_in) {
  const Tensor x = dense(x_in);
  const Tensor weight = dense(weight_in);
  const Tensor bias = dense(bias_in);
  const std::int64_t rows = x.size(0), out_features = weight.size(0);
  if (!x.device().is_cpu()) {  // composed from the device's product and broadcasting add
    Tensor y({rows, out_features}, x.dtype(), x.device());
    gemm(x, false, weight, true, y, 1.0, 0.0);
    return bias.defined() ? binary(Binary::add, y, bias) : y;
  }
  Tensor y({rows, out_features}, x.dtype());
  if (bias.defined()) {
    const std::size_t row_bytes = static_cast<std::size_t>(out_features) * dtype_size(x.dtype());
    auto* dst = static_cast<char*>(y.raw_data());
    for (std::int64_t r = 0; r < rows; ++r) std::memcpy(dst + r * row_bytes, bias.raw_data(), row_bytes);
  }
  gemm(x, false, weight, true, y, 1.0, bias.defined() ? 1.0 : 0.0);
  return y;
}

Tensor transpose2d(const Tensor& x_in) {
  const Tensor x = dense(x_in);
  const std::int64_t r = x.size(0), c = x.size(1);
  Tensor y({c, r}, x.dtype());
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* px = x.data<T>();
    T* py = y.data<T>();
    constexpr std::int64_t B = 32;
    for (std::int64_t i0 = 0; i0 < r; i0 += B)
      for (std::int64_t j0 = 0; j0 < c; j0 += B)
        for (std::int64_t i = i0; i < std::min(r, i0 + B); ++i)
          for (std::int64_t j = j0; j < std::min(c, j0 + B); ++j) py[j * r + i] = px[i * c + j];
  });
  return y;
}

}  // namespace backprop::kernels
