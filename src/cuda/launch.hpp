// Launchers of the CUDA kernels in kernels.cu. Plain pointers and sizes only: nvcc compiles kernels.cu
// without any backprop header, and the host code (runtime.cpp) maps tensors onto these calls.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>

namespace backprop::cuda {

inline constexpr int kMaxDims = 8;

/// Where element i (row-major over `shape`) of the output is read in up to two inputs: the index is split
/// over shape and dotted with each input's strides (0 along a broadcast dimension).
struct Indexer {
  int rank = 0;
  std::int64_t shape[kMaxDims] = {};
  std::int64_t stride_a[kMaxDims] = {};
  std::int64_t stride_b[kMaxDims] = {};
};

enum class UnaryOp {
  neg,
  exp,
  log,
  sqrt,
  abs,
  sigmoid,
  tanh,
  relu,
  relu_mask,
  add_scalar,
  mul_scalar,
  rsub_scalar,
  rdiv_scalar
};
enum class BinaryOp { add, sub, mul, div, maximum, ge_mask, eq };

// T is float or double. y is contiguous with n elements; the launch is queued on `stream`.
template <class T>
void launch_unary(UnaryOp op, const T* x, const Indexer& ix, T* y, std::int64_t n, T alpha,
                  cudaStream_t stream);
template <class T>
void launch_binary(BinaryOp op, const T* a, const T* b, const Indexer& ix, T* y, std::int64_t n,
                   cudaStream_t stream);
/// Writes `bits` (the low element_size bytes: 1, 4 or 8) into each of n elements of y.
void launch_fill(std::size_t element_size, void* y, std::int64_t n, std::uint64_t bits, cudaStream_t stream);
/// Gathers n elements of `element_size` bytes (1, 4 or 8) from x through ix.stride_a into contiguous y.
void launch_gather(std::size_t element_size, const void* x, const Indexer& ix, void* y, std::int64_t n,
                   cudaStream_t stream);

}  // namespace backprop::cuda
