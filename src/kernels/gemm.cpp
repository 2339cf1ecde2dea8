// Matrix products through CBLAS (OpenBLAS). Transposes are passed to BLAS as flags, never materialised.
#include "kernels/kernels.hpp"

#include <cblas.h>

#include <cstring>

namespace backprop::kernels {

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
  const auto M = static_cast<int>(m), N = static_cast<int>(n), K = static_cast<int>(k);
  if (dtype == f32) {
    cblas_sgemm(CblasRowMajor, opa, opb, M, N, K, static_cast<float>(alpha), static_cast<const float*>(a),
                static_cast<int>(lda), static_cast<const float*>(b), static_cast<int>(ldb), static_cast<float>(beta),
                static_cast<float*>(c), N);
  } else {
    cblas_dgemm(CblasRowMajor, opa, opb, M, N, K, alpha, static_cast<const double*>(a), static_cast<int>(lda),
                static_cast<const double*>(b), static_cast<int>(ldb), beta, static_cast<double*>(c), N);
  }
}

void gemm(const Tensor& a, bool ta, const Tensor& b, bool tb, Tensor& c, double alpha, double beta) {
  const std::int64_t m = ta ? a.size(1) : a.size(0);
  const std::int64_t k = ta ? a.size(0) : a.size(1);
  const std::int64_t n = tb ? b.size(0) : b.size(1);
  gemm_raw(a.dtype(), a.raw_data(), a.size(1), ta, b.raw_data(), b.size(1), tb, c.raw_data(), m, n, k, alpha, beta);
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  const std::int64_t rows = x.size(0), out_features = weight.size(0);
  Tensor y({rows, out_features}, x.dtype());
  if (bias.defined()) {
    const std::size_t row_bytes = static_cast<std::size_t>(out_features) * dtype_size(x.dtype());
    auto* dst = static_cast<char*>(y.raw_data());
    for (std::int64_t r = 0; r < rows; ++r) std::memcpy(dst + r * row_bytes, bias.raw_data(), row_bytes);
  }
  gemm(x, false, weight, true, y, 1.0, bias.defined() ? 1.0 : 0.0);
  return y;
}

Tensor transpose2d(const Tensor& x) {
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
