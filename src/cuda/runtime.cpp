// The CUDA runtime behind cuda devices: device discovery, a caching device allocator, one stream and one
// cuBLAS handle per device, copies, and the kernel table that maps tensors onto the launchers in kernels.cu.
// Every CUDA call is checked; a failure throws DeviceError naming the device, the call and CUDA's message.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <algorithm>
#include <atomic>
#include <backprop/tensor.hpp>  // first: declares operator<< for shapes before the error messages use it
#include <cstring>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "cuda/cuda.hpp"
#include "cuda/launch.hpp"

namespace backprop::cuda {
namespace {

std::string describe(cudaError_t e) {
  return detail::cat(cudaGetErrorName(e), " (", cudaGetErrorString(e), ")");
}

void check(cudaError_t e, const char* call, int index) {
  if (e == cudaSuccess) return;
  cudaGetLastError();  // clear a sticky-free error so that the next call does not report it again
  throw DeviceError(detail::cat("cuda:", index, ": ", call, " failed: ", describe(e)));
}

#define BACKPROP_SYMBOL_NAME(f) BACKPROP_SYMBOL_TEXT(f)  // after macro expansion: cublasCreate_v2
#define BACKPROP_SYMBOL_TEXT(f) #f

/// The cuBLAS functions this file calls, from the library opened on the first product rather than linked:
/// loading cuBLAS maps and relocates cuBLASLt, memory that a program which never uses a GPU would carry from
/// its start (docs/gpu.md).
struct Cublas {
  decltype(&cublasCreate) create = nullptr;
  decltype(&cublasSetStream) set_stream = nullptr;
  decltype(&cublasSetMathMode) set_math_mode = nullptr;
  decltype(&cublasSgemm) sgemm = nullptr;
  decltype(&cublasDgemm) dgemm = nullptr;
  decltype(&cublasGetStatusName) status_name = nullptr;
  decltype(&cublasGetStatusString) status_string = nullptr;
};

template <class F>
void resolve(void* library, const char* name, F& f) {
  f = reinterpret_cast<F>(dlsym(library, name));
  BP_CHECK(f != nullptr, DeviceError, "cuda: ", BACKPROP_CUBLAS_SONAME, " has no ", name);
}

const Cublas& cublas() {
  static const Cublas c = [] {
    void* library = dlopen(BACKPROP_CUBLAS_SONAME, RTLD_NOW | RTLD_LOCAL);
    BP_CHECK(library != nullptr, DeviceError, "cuda: cannot load cuBLAS (", BACKPROP_CUBLAS_SONAME,
             "): ", dlerror(), "; put the CUDA toolkit's lib directory on LD_LIBRARY_PATH");
    Cublas r;
    resolve(library, BACKPROP_SYMBOL_NAME(cublasCreate), r.create);
    resolve(library, BACKPROP_SYMBOL_NAME(cublasSetStream), r.set_stream);
    resolve(library, BACKPROP_SYMBOL_NAME(cublasSetMathMode), r.set_math_mode);
    resolve(library, BACKPROP_SYMBOL_NAME(cublasSgemm), r.sgemm);
    resolve(library, BACKPROP_SYMBOL_NAME(cublasDgemm), r.dgemm);
    resolve(library, BACKPROP_SYMBOL_NAME(cublasGetStatusName), r.status_name);
    resolve(library, BACKPROP_SYMBOL_NAME(cublasGetStatusString), r.status_string);
    return r;
  }();
  return c;
}

void check_blas(cublasStatus_t s, const char* call, int index) {
  if (s == CUBLAS_STATUS_SUCCESS) return;
  throw DeviceError(detail::cat("cuda:", index, ": ", call, " failed: ", cublas().status_name(s), " (",
                                cublas().status_string(s), ")"));
}

/// cudaGetDeviceCount, asked once per process.
struct Discovery {
  int count = 0;
  std::string reason;
};
const Discovery& discovery() {
  static const Discovery d = [] {
    Discovery r;
    const cudaError_t e = cudaGetDeviceCount(&r.count);
    if (e != cudaSuccess) {
      cudaGetLastError();
      r.count = 0;
      r.reason = detail::cat("cudaGetDeviceCount returned ", describe(e));
    } else if (r.count == 0) {
      r.reason = "cudaGetDeviceCount returned 0 devices";
    }
    return r;
  }();
  return d;
}

/// Per device: the stream every kernel and copy is queued on, the cuBLAS handle bound to it and the cache of
/// freed blocks by size. Created on first use, never destroyed (tensors in static objects may outlive it).
struct DeviceState {
  std::mutex mutex;
  cudaStream_t stream = nullptr;
  cublasHandle_t blas = nullptr;
  std::unordered_map<std::size_t, std::vector<void*>> free_blocks;
  std::size_t cached_bytes = 0;
};

DeviceState& state(int index) {
  const Discovery& d = discovery();
  BP_CHECK(d.count > 0, DeviceError, "cuda:", index, ": no CUDA device can be used: ", d.reason);
  BP_CHECK(index < d.count, DeviceError, "cuda:", index, ": no such device; this process sees ", d.count,
           " CUDA device(s), cuda:0 to cuda:", d.count - 1);
  static std::vector<DeviceState*>* states = new std::vector<DeviceState*>(static_cast<std::size_t>(d.count));
  static std::mutex creation;
  std::lock_guard lock(creation);
  DeviceState*& s = (*states)[static_cast<std::size_t>(index)];
  if (s == nullptr) {
    check(cudaSetDevice(index), "cudaSetDevice", index);
    auto fresh = std::make_unique<DeviceState>();
    check(cudaStreamCreateWithFlags(&fresh->stream, cudaStreamNonBlocking), "cudaStreamCreateWithFlags",
          index);
    check_blas(cublas().create(&fresh->blas), "cublasCreate", index);
    check_blas(cublas().set_stream(fresh->blas, fresh->stream), "cublasSetStream", index);
    s = fresh.release();
  }
  return *s;
}

/// Makes `index` the calling thread's current device and returns its state.
DeviceState& use(int index) {
  DeviceState& s = state(index);
  check(cudaSetDevice(index), "cudaSetDevice", index);
  return s;
}

void release_cache(DeviceState& s, int index) {
  for (auto& [size, blocks] : s.free_blocks)
    for (void* p : blocks) check(cudaFree(p), "cudaFree", index);
  s.free_blocks.clear();
  s.cached_bytes = 0;
}

constexpr std::size_t kGranule = 512;  // cudaMalloc aligns to 256 bytes; sizes round to 512

void* allocate(std::size_t nbytes, int index) {
  DeviceState& s = use(index);
  const std::size_t size = (std::max<std::size_t>(nbytes, 1) + kGranule - 1) / kGranule * kGranule;
  std::lock_guard lock(s.mutex);
  auto it = s.free_blocks.find(size);
  if (it != s.free_blocks.end() && !it->second.empty()) {
    void* p = it->second.back();
    it->second.pop_back();
    s.cached_bytes -= size;
    return p;
  }
  void* p = nullptr;
  cudaError_t e = cudaMalloc(&p, size);
  if (e == cudaErrorMemoryAllocation && s.cached_bytes > 0) {  // give the cache back and try once more
    cudaGetLastError();
    check(cudaStreamSynchronize(s.stream), "cudaStreamSynchronize", index);
    release_cache(s, index);
    e = cudaMalloc(&p, size);
  }
  if (e == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    std::size_t free_bytes = 0, total_bytes = 0;
    cudaMemGetInfo(&free_bytes, &total_bytes);
    throw OutOfMemoryError(detail::cat("cuda:", index, ": out of device memory allocating ", size, " bytes (",
                                       free_bytes, " of ", total_bytes, " bytes free)"),
                           size);
  }
  check(e, "cudaMalloc", index);
  return p;
}

void deallocate(void* p, std::size_t nbytes, int index) noexcept {
  if (p == nullptr) return;
  const std::size_t size = (std::max<std::size_t>(nbytes, 1) + kGranule - 1) / kGranule * kGranule;
  try {
    DeviceState& s = state(index);
    std::lock_guard lock(s.mutex);
    s.free_blocks[size].push_back(p);  // kernels still queued on the stream finish before its next user runs
    s.cached_bytes += size;
  } catch (...) {
    cudaFree(p);  // nothing useful to report from a destructor
  }
}

void copy(void* dst, Device dst_device, const void* src, Device src_device, std::size_t nbytes) {
  const Device gpu = dst_device.is_cuda() ? dst_device : src_device;
  DeviceState& s = use(gpu.index());
  cudaMemcpyKind kind = cudaMemcpyDeviceToDevice;
  if (dst_device.is_cpu()) kind = cudaMemcpyDeviceToHost;
  if (src_device.is_cpu()) kind = cudaMemcpyHostToDevice;
  if (dst_device.is_cuda() && src_device.is_cuda() && dst_device != src_device) {
    // Between two GPUs: finish the source's queued work, copy, and wait (the copy runs on the source's stream).
    DeviceState& from = use(src_device.index());
    check(cudaMemcpyPeerAsync(dst, dst_device.index(), src, src_device.index(), nbytes, from.stream),
          "cudaMemcpyPeerAsync", src_device.index());
    check(cudaStreamSynchronize(from.stream), "cudaStreamSynchronize", src_device.index());
    return;
  }
  check(cudaMemcpyAsync(dst, src, nbytes, kind, s.stream), "cudaMemcpyAsync", gpu.index());
  check(cudaStreamSynchronize(s.stream), "cudaStreamSynchronize", gpu.index());
}

void after_launch(int index) {
  check(cudaGetLastError(), "kernel launch", index);
}

template <class T>
const T* typed(const Tensor& t) {
  return static_cast<const T*>(
      static_cast<const void*>(static_cast<const char*>(t.storage()->data) +
                               t.storage_offset() * static_cast<std::int64_t>(sizeof(T))));
}

/// The indexer that walks `shape` row-major, reading a (and b) through their strides, right-aligned and with
/// stride 0 along broadcast dimensions.
Indexer make_indexer(const Shape& shape, const Tensor& a, const Tensor* b) {
  Indexer ix;
  ix.rank = static_cast<int>(shape.size());
  BP_CHECK(ix.rank <= kMaxDims, ShapeError, "cuda: tensors of more than ", kMaxDims,
           " dims are not supported");
  auto fill_strides = [&](const Tensor& t, std::int64_t* out) {
    const std::size_t lead = shape.size() - t.shape().size();
    for (std::size_t d = 0; d < t.shape().size(); ++d)
      out[lead + d] = t.shape()[d] == 1 ? 0 : t.stride(static_cast<std::int64_t>(d));
  };
  for (int d = 0; d < ix.rank; ++d) ix.shape[d] = shape[static_cast<std::size_t>(d)];
  fill_strides(a, ix.stride_a);
  if (b != nullptr) fill_strides(*b, ix.stride_b);
  return ix;
}

UnaryOp unary_op(kernels::Unary op) {
  using kernels::Unary;
  switch (op) {
    case Unary::neg:
      return UnaryOp::neg;
    case Unary::exp:
      return UnaryOp::exp;
    case Unary::log:
      return UnaryOp::log;
    case Unary::sqrt:
      return UnaryOp::sqrt;
    case Unary::abs:
      return UnaryOp::abs;
    case Unary::sigmoid:
      return UnaryOp::sigmoid;
    case Unary::tanh:
      return UnaryOp::tanh;
    case Unary::relu:
      return UnaryOp::relu;
    case Unary::relu_mask:
      return UnaryOp::relu_mask;
    case Unary::add_scalar:
      return UnaryOp::add_scalar;
    case Unary::mul_scalar:
      return UnaryOp::mul_scalar;
    case Unary::rsub_scalar:
      return UnaryOp::rsub_scalar;
    case Unary::rdiv_scalar:
      return UnaryOp::rdiv_scalar;
    default:
      throw DeviceError(detail::cat("cuda: element-wise op number ", static_cast<int>(op),
                                    " (see kernels::Unary) has no CUDA kernel yet; run it on the CPU"));
  }
}

BinaryOp binary_op(kernels::Binary op) {
  using kernels::Binary;
  switch (op) {
    case Binary::add:
      return BinaryOp::add;
    case Binary::sub:
      return BinaryOp::sub;
    case Binary::mul:
      return BinaryOp::mul;
    case Binary::div:
      return BinaryOp::div;
    case Binary::maximum:
      return BinaryOp::maximum;
    case Binary::ge_mask:
      return BinaryOp::ge_mask;
    case Binary::eq:
      return BinaryOp::eq;
  }
  throw Error("internal error: unknown binary op");
}

void fill(Tensor& dst, double value) {
  BP_CHECK(dst.is_contiguous(), DeviceError, "fill_: a non-contiguous ", dst.device(), " tensor ",
           dst.shape(), " is not supported yet");
  if (dst.numel() == 0) return;
  const int index = dst.device().index();
  DeviceState& s = use(index);
  std::uint64_t bits = 0;
  dispatch_all(dst.dtype(), [&](auto tag) {
    const auto v = convert_value<decltype(tag)>(value);
    std::memcpy(&bits, &v, sizeof v);
  });
  launch_fill(dtype_size(dst.dtype()), dst.device_data(), dst.numel(), bits, s.stream);
  after_launch(index);
}

Tensor dense(const Tensor& x) {
  Tensor y(x.shape(), x.dtype(), x.device());
  if (y.numel() == 0) return y;
  const int index = x.device().index();
  DeviceState& s = use(index);
  const auto* base = static_cast<const char*>(x.storage()->data) +
                     x.storage_offset() * static_cast<std::int64_t>(dtype_size(x.dtype()));
  launch_gather(dtype_size(x.dtype()), base, make_indexer(x.shape(), x, nullptr), y.device_data(), y.numel(),
                s.stream);
  after_launch(index);
  return y;
}

Tensor unary(kernels::Unary op, const Tensor& x, double alpha, double /*beta*/) {
  const UnaryOp code = unary_op(op);
  Tensor y(x.shape(), x.dtype(), x.device());
  if (y.numel() == 0) return y;
  const int index = x.device().index();
  DeviceState& s = use(index);
  const Indexer ix = make_indexer(x.shape(), x, nullptr);
  dispatch(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    launch_unary<T>(code, typed<T>(x), ix, static_cast<T*>(y.device_data()), y.numel(), static_cast<T>(alpha),
                    s.stream);
  });
  after_launch(index);
  return y;
}

Tensor binary(kernels::Binary op, const Tensor& a, const Tensor& b) {
  const BinaryOp code = binary_op(op);
  BP_CHECK(a.dtype() == b.dtype(), DTypeError, "binary op: dtypes differ (", a.dtype(), " vs ", b.dtype(),
           ")");
  check_floating(a, "binary op", "a");
  const Shape shape =
      a.shape() == b.shape() ? a.shape() : broadcast_shapes(a.shape(), b.shape(), "binary op");
  Tensor y(shape, a.dtype(), a.device());
  if (y.numel() == 0) return y;
  const int index = a.device().index();
  DeviceState& s = use(index);
  const Indexer ix = make_indexer(shape, a, &b);
  dispatch(a.dtype(), [&](auto tag) {
    using T = decltype(tag);
    launch_binary<T>(code, typed<T>(a), typed<T>(b), ix, static_cast<T*>(y.device_data()), y.numel(),
                     s.stream);
  });
  after_launch(index);
  return y;
}

std::atomic<bool> tf32{false};

// Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T: cuBLAS gets B first, with the same flags.
void gemm(const Tensor& a_in, bool ta, const Tensor& b_in, bool tb, Tensor& c, double alpha, double beta) {
  check_same_device("matmul", a_in.device(), c.device());
  check_same_device("matmul", b_in.device(), c.device());
  const Tensor a = kernels::dense(a_in), b = kernels::dense(b_in);
  const int m = static_cast<int>(ta ? a.size(1) : a.size(0));
  const int k = static_cast<int>(ta ? a.size(0) : a.size(1));
  const int n = static_cast<int>(tb ? b.size(0) : b.size(1));
  const int index = c.device().index();
  DeviceState& s = use(index);
  const cublasOperation_t opa = ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = tb ? CUBLAS_OP_T : CUBLAS_OP_N;
  const int lda = static_cast<int>(a.size(1)), ldb = static_cast<int>(b.size(1));
  if (m == 0 || n == 0) return;
  if (c.dtype() == f32) {
    check_blas(cublas().set_math_mode(s.blas, tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH),
               "cublasSetMathMode", index);
    const float fa = static_cast<float>(alpha), fb = static_cast<float>(beta);
    check_blas(cublas().sgemm(s.blas, opb, opa, n, m, k, &fa, typed<float>(b), ldb, typed<float>(a), lda, &fb,
                              static_cast<float*>(c.device_data()), n),
               "cublasSgemm", index);
  } else {
    check_blas(cublas().dgemm(s.blas, opb, opa, n, m, k, &alpha, typed<double>(b), ldb, typed<double>(a), lda,
                              &beta, static_cast<double*>(c.device_data()), n),
               "cublasDgemm", index);
  }
}

}  // namespace

bool is_built() {
  return true;
}
int device_count() {
  return discovery().count;
}
std::string unavailable_reason() {
  return discovery().reason;
}
void synchronize(Device device) {
  if (device.is_cpu()) return;
  DeviceState& s = use(device.index());
  check(cudaStreamSynchronize(s.stream), "cudaStreamSynchronize", device.index());
}
void set_allow_tf32(bool on) {
  tf32 = on;
}
bool allow_tf32() {
  return tf32;
}

const kernels::DeviceKernels& kernel_table() {
  static const kernels::DeviceKernels table{
      .allocate = allocate,
      .deallocate = deallocate,
      .copy = copy,
      .fill = fill,
      .dense = dense,
      .unary = unary,
      .binary = binary,
      .gemm = gemm,
  };
  return table;
}

}  // namespace backprop::cuda
