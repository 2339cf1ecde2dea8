// backprop/backprop.hpp — everything in one include.
//
// Example:
//   #include <backprop/backprop.hpp>
//   namespace bp = backprop;
#pragma once

#include <backprop/anomaly.hpp>
#include <backprop/autograd.hpp>
#include <backprop/data.hpp>
#include <backprop/device.hpp>
#include <backprop/dtype.hpp>
#include <backprop/error.hpp>
#include <backprop/generator.hpp>
#include <backprop/gradcheck.hpp>
#include <backprop/io.hpp>
#include <backprop/kernels.hpp>
#include <backprop/loss.hpp>
#include <backprop/memory.hpp>
#include <backprop/nn.hpp>
#include <backprop/ops.hpp>
#include <backprop/optim.hpp>
#include <backprop/tensor.hpp>
#include <backprop/threads.hpp>
#include <backprop/train.hpp>
#include <backprop/version.hpp>
