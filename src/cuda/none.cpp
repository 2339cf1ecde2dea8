// A build without CUDA (BACKPROP_CUDA=OFF): no CUDA symbol and no CUDA library; every use of a cuda device
// throws DeviceError saying how to get one.
#include <backprop/device.hpp>

#include "cuda/cuda.hpp"

namespace backprop {
namespace cuda {

namespace {
constexpr const char* kReason = "built without CUDA (BACKPROP_CUDA=OFF)";
}

bool is_built() {
  return false;
}
int device_count() {
  return 0;
}
std::string unavailable_reason() {
  return kReason;
}
void synchronize(Device device) {
  if (!device.is_cpu()) kernel_table();
}
void set_allow_tf32(bool) {}
bool allow_tf32() {
  return false;
}

const kernels::DeviceKernels& kernel_table() {
  throw DeviceError(detail::cat("cuda: this backprop was ", kReason,
                                "; rebuild with -DBACKPROP_CUDA=ON where the CUDA toolkit is installed"));
}

}  // namespace cuda
}  // namespace backprop
