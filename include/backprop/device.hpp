// backprop/device.hpp — where a tensor's elements live: the CPU or one CUDA GPU.
//
// A Device is a small value: a kind (cpu or cuda) and, for cuda, a GPU index. Every tensor has one
// (Tensor::device()); ops run where their inputs are and throw DeviceError naming the op and both devices
// when inputs live on different devices. Tensor::to(device) and Module::to(device) move data; factory
// functions take a device. CUDA needs a build with BACKPROP_CUDA (see docs/gpu.md); cuda::device_count()
// tells whether a GPU can be used at run time.
//
// Example:
//   bp::Device dev = bp::Device::parse("cuda:1");   // kind cuda, index 1
//   std::cout << dev << "\n";                          // cuda:1
//   bp::Device cpu = bp::Device::parse("cpu");        // == bp::Device::cpu(), == bp::Device()
//   bool gpu = bp::cuda::device_count() > 0;          // 0 without a GPU, a driver or BACKPROP_CUDA
//   bp::Tensor x = bp::ones({2, 3});                  // on the CPU
//   bp::Tensor y = gpu ? x.to(bp::Device::cuda()) : x;  // cpu -> cpu would return x itself
//   bp::check_same_device("add", x.device(), cpu);    // no throw: both on the CPU
#pragma once

#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>

namespace backprop {

/// The kinds of memory a tensor can live in.
enum class DeviceKind : std::uint8_t { cpu, cuda };

class Device {
 public:
  /// The CPU.
  constexpr Device() = default;
  /// A device of the given kind; cpu ignores the index (it is always 0). Throws ValueError for a negative
  /// index.
  Device(DeviceKind kind, int index);

  static constexpr Device cpu() { return Device(); }
  /// CUDA GPU number `index` (as nvidia-smi and CUDA_VISIBLE_DEVICES number them).
  static Device cuda(int index = 0) { return Device(DeviceKind::cuda, index); }
  /// "cpu", "cuda" (GPU 0) or "cuda:N". Throws ValueError naming the text and the accepted forms. Whether
  /// the GPU exists is checked when the device is first used, not here.
  static Device parse(std::string_view text);

  constexpr DeviceKind kind() const { return kind_; }
  constexpr int index() const { return index_; }
  constexpr bool is_cpu() const { return kind_ == DeviceKind::cpu; }
  constexpr bool is_cuda() const { return kind_ == DeviceKind::cuda; }
  /// "cpu" or "cuda:N" (parse() reads it back).
  std::string to_string() const;

  friend constexpr bool operator==(Device a, Device b) = default;

 private:
  DeviceKind kind_ = DeviceKind::cpu;
  int index_ = 0;
};

std::ostream& operator<<(std::ostream& out, Device device);

/// Throws DeviceError "op: inputs are on different devices (cpu and cuda:0); move one with .to(...)" unless a
/// and b are the same device. Every op with more than one tensor input calls it.
void check_same_device(const char* op, Device a, Device b);

namespace cuda {
/// True when this library was built with CUDA support (BACKPROP_CUDA=ON).
bool is_built();
/// Number of CUDA devices this process can use; 0 without a GPU, without a usable driver or in a build
/// without CUDA. Never throws.
int device_count();
/// Why no CUDA device can be used ("" when device_count() > 0), e.g. "cudaGetDeviceCount returned
/// cudaErrorNoDevice (no CUDA-capable device is detected)" or "built without CUDA (BACKPROP_CUDA=OFF)".
std::string unavailable_reason();
/// Waits until all work queued on the device has finished (a no-op for the CPU). Throws DeviceError when the
/// device cannot be used.
void synchronize(Device device);
/// Lets cuBLAS round f32 products through TF32 tensor cores (faster, about 10 mantissa bits). Off by default,
/// so that f32 means f32 on the GPU as on the CPU; PyTorch's torch.backends.cuda.matmul.allow_tf32.
void set_allow_tf32(bool on);
bool allow_tf32();
}  // namespace cuda

}  // namespace backprop
