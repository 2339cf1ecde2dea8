#include "kernels/device_kernels.hpp"

#include <cstring>

#include "cuda/cuda.hpp"

namespace backprop::kernels {

const DeviceKernels& device_kernels(Device device) {
  switch (device.kind()) {
    case DeviceKind::cuda:
      return cuda::kernel_table();
    case DeviceKind::cpu:
      break;
  }
  throw Error(detail::cat("internal error: no device kernel table for ", device,
                          " (CPU kernels are called directly)"));
}

void copy_between_devices(void* dst, Device dst_device, const void* src, Device src_device,
                          std::size_t nbytes) {
  if (nbytes == 0) return;
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memcpy(dst, src, nbytes);
    return;
  }
  const Device other = dst_device.is_cpu() ? src_device : dst_device;
  device_kernels(other).copy(dst, dst_device, src, src_device, nbytes);
}

}  // namespace backprop::kernels
