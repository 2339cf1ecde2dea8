// backprop/backprop.hpp — everything in one include.
//
//   #include <backprop/backprop.hpp>
//   namespace bp = backprop;
#pragma once

#include <backprop/autograd.hpp>
#include <backprop/dtype.hpp>
#include <backprop/error.hpp>
#include <backprop/generator.hpp>
#include <backprop/gradcheck.hpp>
#include <backprop/memory.hpp>
#include <backprop/ops.hpp>
#include <backprop/tensor.hpp>
#include <backprop/threads.hpp>
