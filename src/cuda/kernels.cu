// CUDA kernels: element-wise maps over strided inputs (one thread per output element, grid-stride loops).
#include <cstdint>

#include "launch.hpp"

namespace backprop::cuda {
namespace {

constexpr int kThreads = 256;

int blocks_for(std::int64_t n) {
  const std::int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<int>(b < 65535 ? (b > 0 ? b : 1) : 65535);
}

struct Offsets {
  std::int64_t a, b;
};

__device__ Offsets offsets(const Indexer& ix, std::int64_t i) {
  Offsets o{0, 0};
  for (int d = ix.rank - 1; d >= 0; --d) {
    const std::int64_t k = i % ix.shape[d];
    i /= ix.shape[d];
    o.a += k * ix.stride_a[d];
    o.b += k * ix.stride_b[d];
  }
  return o;
}

template <class T>
__device__ T apply_unary(UnaryOp op, T x, T alpha) {
  switch (op) {
    case UnaryOp::neg:
      return -x;
    case UnaryOp::exp:
      return exp(x);
    case UnaryOp::log:
      return log(x);
    case UnaryOp::sqrt:
      return sqrt(x);
    case UnaryOp::abs:
      return x < T(0) ? -x : x;
    case UnaryOp::sigmoid:
      return T(1) / (T(1) + exp(-x));
    case UnaryOp::tanh:
      return tanh(x);
    case UnaryOp::relu:
      return x > T(0) ? x : T(0);
    case UnaryOp::relu_mask:
      return x > T(0) ? T(1) : T(0);
    case UnaryOp::add_scalar:
      return x + alpha;
    case UnaryOp::mul_scalar:
      return x * alpha;
    case UnaryOp::rsub_scalar:
      return alpha - x;
    case UnaryOp::rdiv_scalar:
      return alpha / x;
  }
  return x;
}

template <class T>
__device__ T apply_binary(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::add:
      return a + b;
    case BinaryOp::sub:
      return a - b;
    case BinaryOp::mul:
      return a * b;
    case BinaryOp::div:
      return a / b;
    case BinaryOp::maximum:
      return a >= b ? a : b;  // as the CPU kernel: NaN in a gives b
    case BinaryOp::ge_mask:
      return a >= b ? T(1) : T(0);
    case BinaryOp::eq:
      return a == b ? T(1) : T(0);
  }
  return a;
}

template <class T>
__global__ void unary_kernel(UnaryOp op, const T* x, Indexer ix, T* y, std::int64_t n, T alpha) {
  for (std::int64_t i = blockIdx.x * std::int64_t{blockDim.x} + threadIdx.x; i < n;
       i += std::int64_t{blockDim.x} * gridDim.x)
    y[i] = apply_unary(op, x[offsets(ix, i).a], alpha);
}

template <class T>
__global__ void binary_kernel(BinaryOp op, const T* a, const T* b, Indexer ix, T* y, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * std::int64_t{blockDim.x} + threadIdx.x; i < n;
       i += std::int64_t{blockDim.x} * gridDim.x) {
    const Offsets o = offsets(ix, i);
    y[i] = apply_binary(op, a[o.a], b[o.b]);
  }
}

template <class T>
__global__ void fill_kernel(T* y, std::int64_t n, T value) {
  for (std::int64_t i = blockIdx.x * std::int64_t{blockDim.x} + threadIdx.x; i < n;
       i += std::int64_t{blockDim.x} * gridDim.x)
    y[i] = value;
}

template <class E>
__global__ void gather_kernel(const E* x, Indexer ix, E* y, std::int64_t n) {
  for (std::int64_t i = blockIdx.x * std::int64_t{blockDim.x} + threadIdx.x; i < n;
       i += std::int64_t{blockDim.x} * gridDim.x)
    y[i] = x[offsets(ix, i).a];
}

}  // namespace

template <class T>
void launch_unary(UnaryOp op, const T* x, const Indexer& ix, T* y, std::int64_t n, T alpha,
                  cudaStream_t stream) {
  unary_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(op, x, ix, y, n, alpha);
}
template <class T>
void launch_binary(BinaryOp op, const T* a, const T* b, const Indexer& ix, T* y, std::int64_t n,
                   cudaStream_t stream) {
  binary_kernel<T><<<blocks_for(n), kThreads, 0, stream>>>(op, a, b, ix, y, n);
}
void launch_fill(std::size_t element_size, void* y, std::int64_t n, std::uint64_t bits, cudaStream_t stream) {
  switch (element_size) {
    case 1:
      fill_kernel<<<blocks_for(n), kThreads, 0, stream>>>(static_cast<std::uint8_t*>(y), n,
                                                          static_cast<std::uint8_t>(bits));
      break;
    case 4:
      fill_kernel<<<blocks_for(n), kThreads, 0, stream>>>(static_cast<std::uint32_t*>(y), n,
                                                          static_cast<std::uint32_t>(bits));
      break;
    default:
      fill_kernel<<<blocks_for(n), kThreads, 0, stream>>>(static_cast<std::uint64_t*>(y), n, bits);
      break;
  }
}
void launch_gather(std::size_t element_size, const void* x, const Indexer& ix, void* y, std::int64_t n,
                   cudaStream_t stream) {
  switch (element_size) {
    case 1:
      gather_kernel<<<blocks_for(n), kThreads, 0, stream>>>(static_cast<const std::uint8_t*>(x), ix,
                                                            static_cast<std::uint8_t*>(y), n);
      break;
    case 4:
      gather_kernel<<<blocks_for(n), kThreads, 0, stream>>>(static_cast<const std::uint32_t*>(x), ix,
                                                            static_cast<std::uint32_t*>(y), n);
      break;
    default:
      gather_kernel<<<blocks_for(n), kThreads, 0, stream>>>(static_cast<const std::uint64_t*>(x), ix,
                                                            static_cast<std::uint64_t*>(y), n);
      break;
  }
}

template void launch_unary<float>(UnaryOp, const float*, const Indexer&, float*, std::int64_t, float,
                                  cudaStream_t);
template void launch_unary<double>(UnaryOp, const double*, const Indexer&, double*, std::int64_t, double,
                                   cudaStream_t);
template void launch_binary<float>(BinaryOp, const float*, const float*, const Indexer&, float*, std::int64_t,
                                   cudaStream_t);
template void launch_binary<double>(BinaryOp, const double*, const double*, const Indexer&, double*,
                                    std::int64_t, cudaStream_t);

}  // namespace backprop::cuda
