// Kernels for the devices other than the CPU. The CPU kernels (kernels.hpp) stay the entry points: each one
// that has a version for another device hands a tensor on that device to its table here, with one test of the
// device kind (the CPU path is unchanged). A CPU kernel without such a hand-off reaches Tensor::raw_data(), which
// throws DeviceError for a non-CPU tensor, so a missing kernel is a clear error, never a wild read.
//
// Adding a device: a DeviceKind value (backprop/device.hpp), a DeviceKernels table for it, and one case in
// device_kernels() (device_kernels.cpp). Adding a kernel to every device: a member here and a hand-off in the
// CPU entry point.
#pragma once

#include <backprop/tensor.hpp>
#include <cstddef>

#include "kernels/kernels.hpp"

namespace backprop::kernels {

struct DeviceKernels {
  /// Memory on device `index`; throws OutOfMemoryError or DeviceError.
  void* (*allocate)(std::size_t nbytes, int index);
  void (*deallocate)(void* p, std::size_t nbytes, int index) noexcept;
  /// Copies nbytes between any two devices, at least one of them this table's kind; returns when done.
  void (*copy)(void* dst, Device dst_device, const void* src, Device src_device, std::size_t nbytes);
  /// The same contracts as the CPU kernels of the same names.
  void (*fill)(Tensor& dst, double value);
  Tensor (*dense)(const Tensor& x);
  Tensor (*unary)(Unary op, const Tensor& x, double alpha, double beta);
  Tensor (*binary)(Binary op, const Tensor& a, const Tensor& b);
  void (*gemm)(const Tensor& a, bool ta, const Tensor& b, bool tb, Tensor& c, double alpha, double beta);
};

/// The table of a non-CPU device. Throws DeviceError when this build has no support for the device's kind.
const DeviceKernels& device_kernels(Device device);

/// Copies nbytes of contiguous memory from one device to another (either may be the CPU).
void copy_between_devices(void* dst, Device dst_device, const void* src, Device src_device,
                          std::size_t nbytes);

}  // namespace backprop::kernels
