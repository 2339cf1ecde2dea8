// backprop/nn.hpp — layers and networks: Module, Linear, Sequential, activations, BatchNorm1d, Dropout,
// DropConnect, weight initialisation and checkpoint_sequential. See docs/nn.md for the equations.
//
// Example:
//   #include <backprop/nn.hpp>
//   bp::Generator gen(42);
//   bp::nn::Sequential net{bp::nn::Linear(784, 256, gen), bp::nn::ReLU(), bp::nn::Dropout(0.2, gen),
//                          bp::nn::Linear(256, 10, gen)};
//   bp::Tensor logits = net(x);                     // x [N, 784] f32 -> [N, 10]
//   net.eval();                                     // dropout off for evaluation
#pragma once

#include <backprop/nn/activation.hpp>
#include <backprop/nn/attention.hpp>
#include <backprop/nn/batchnorm.hpp>
#include <backprop/nn/checkpoint.hpp>
#include <backprop/nn/containers.hpp>
#include <backprop/nn/conv.hpp>
#include <backprop/nn/dropout.hpp>
#include <backprop/nn/embedding.hpp>
#include <backprop/nn/init.hpp>
#include <backprop/nn/layernorm.hpp>
#include <backprop/nn/linear.hpp>
#include <backprop/nn/module.hpp>
#include <backprop/nn/pooling.hpp>
#include <backprop/nn/reduce.hpp>
#include <backprop/nn/reshape.hpp>
#include <backprop/nn/sequential.hpp>
