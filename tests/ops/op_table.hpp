// The table of differentiable ops that ops_grad_test.cpp runs through its checks. Adding an op to the tests
// is adding one row to op_table() in op_table.cpp: a name, the function, its inputs (shape, range, kinks to
// keep away from) and a tolerance.
#pragma once

#include <backprop/backprop.hpp>
#include <functional>
#include <ostream>
#include <string>
#include <vector>

namespace optest {

namespace bp = backprop;

struct InputSpec {
  bp::Shape shape;
  double lo = -1.0;  // values are drawn uniformly from [lo, hi)
  double hi = 1.0;
  std::vector<double> kinks = {};  // ...and redrawn while closer than 0.05 to one of these
  bool requires_grad = true;
};

struct OpCase {
  std::string name;  // letters, digits and '_' only (it names the test)
  std::function<bp::Tensor(const bp::Tensors&)> fn;
  std::vector<InputSpec> inputs;
  double tol = 1e-6;      // gradcheck's atol and rtol
  double eps = 1e-6;      // finite-difference step
  bool twice = true;      // also check second derivatives (gradgradcheck)
  double f32_tol = 2e-4;  // f32 values and gradients against f64, relative to the largest magnitude
};

/// gtest prints a row by its name.
inline void PrintTo(const OpCase& c, std::ostream* out) {
  *out << c.name;
}

/// Every differentiable op of backprop/ops.hpp (and the Tensor methods that are ops), including broadcast
/// shapes.
const std::vector<OpCase>& op_table();

/// Fresh inputs for a row, in `dtype`, drawn from `gen`; those marked requires_grad are leaves that require
/// grad.
bp::Tensors make_inputs(const OpCase& c, bp::DType dtype, bp::Generator& gen);

}  // namespace optest
