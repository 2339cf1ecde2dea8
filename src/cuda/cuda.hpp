// The CUDA side of the library, as the rest of it sees it. Built from src/cuda/*.cpp and *.cu when
// BACKPROP_CUDA is ON; src/cuda/none.cpp stands in for all of it when it is OFF (every use then throws
// DeviceError saying so).
#pragma once

#include "kernels/device_kernels.hpp"

namespace backprop::cuda {

/// The kernel table for CUDA devices (src/kernels/device_kernels.hpp).
const kernels::DeviceKernels& kernel_table();

}  // namespace backprop::cuda
