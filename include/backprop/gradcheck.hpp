// backprop/gradcheck.hpp — checks the engine's gradients against finite differences.
//
// gradcheck compares the gradient of <v, fn(inputs)> for a fixed random v (all of the Jacobian when the
// output has at most 16 elements) with float64 central differences. gradgradcheck does the same for the
// gradient itself, built with create_graph: it checks second derivatives.
//
// Example:
//   bp::Tensor x = bp::randn({3, 4}, gen, bp::f64).requires_grad_();
//   auto r = bp::gradcheck([](const bp::Tensors& in) { return bp::tanh(in[0]); }, {x});
//   // r.max_abs_error, r.max_rel_error, r.worst_input, r.worst_index; throws bp::Error on failure
#pragma once

#include <backprop/tensor.hpp>
#include <cstdint>
#include <functional>

namespace backprop {

struct GradcheckOptions {
  double eps = 1e-6;   // finite-difference step
  double atol = 1e-5;  // an element passes when |analytic - numeric| <= atol + rtol |numeric|
  double rtol = 1e-3;
  bool raise = true;  // throw backprop::Error on failure (otherwise just return ok = false)
  std::uint64_t seed = 0;
};

struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0.0;
  double max_rel_error = 0.0;
  std::size_t worst_input = 0;   // which input holds the worst element
  std::int64_t worst_index = 0;  // its flat index
  double analytic = 0.0;         // the two values at the worst element
  double numeric = 0.0;
};

using TensorFunction = std::function<Tensor(const Tensors&)>;

/// First derivatives of fn at `inputs` (f64 tensors; those that require grad are checked).
GradcheckResult gradcheck(const TensorFunction& fn, const Tensors& inputs, GradcheckOptions options = {});
/// Second derivatives: gradcheck of x -> <u, d<v, fn(x)>/dx> built with create_graph.
GradcheckResult gradgradcheck(const TensorFunction& fn, const Tensors& inputs, GradcheckOptions options = {});

}  // namespace backprop
