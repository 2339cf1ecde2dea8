// Element-wise ops: forward kernel call and backward formula side by side. Every backward is written with
// ops, so it is recorded (and differentiable again) when create_graph is on.
#include <backprop/ops.hpp>

#include "kernels/kernels.hpp"

namespace backprop {

using kernels::Binary;
using kernels::Unary;

namespace {
void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  BP_CHECK(a.dtype() == b.dtype(), DTypeError, op, ": dtypes differ (", a.dtype(), " ", a.shape(), " vs ",
           b.dtype(), " ", b.shape(), "); convert one with .to()");
}
Tensor binary_forward(const char* op, Binary kind, const Tensor& a, const Tensor& b) {
  check_floating(a, op, "a");
  check_floating(b, op, "b");
  check_same_dtype(op, a, b);
  check_same_device(op, a.device(), b.device());
  if (a.shape() != b.shape()) broadcast_shapes(a.shape(), b.shape(), op);  // throws naming the op
  return kernels::binary(kind, a, b);
}
}  // namespace

// y = a + b: dy/da = dy/db = 1; each gradient is summed back over the dimensions its operand was broadcast
// along.
Tensor add(const Tensor& a, const Tensor& b) {
  Tensor y = binary_forward("add", Binary::add, a, b);
  return record(
      "add", y, {a, b},
      [sa = a.shape(), sb = b.shape(), ga = a.requires_grad(), gb = b.requires_grad()](const Tensor& dy) {
        return Tensors{ga ? sum_to(dy, sa) : Tensor(), gb ? sum_to(dy, sb) : Tensor()};
      },
      {.saves_inputs = false});
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor y = binary_forward("sub", Binary::sub, a, b);
  return record(
      "sub", y, {a, b},
      [sa = a.shape(), sb = b.shape(), ga = a.requires_grad(), gb = b.requires_grad()](const Tensor& dy) {
        return Tensors{ga ? sum_to(dy, sa) : Tensor(), gb ? sum_to(neg(dy), sb) : Tensor()};
      },
      {.saves_inputs = false});
}

// y = a b: dL/da = dy b, dL/db = dy a.
Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor y = binary_forward("mul", Binary::mul, a, b);
  return record("mul", y, {a, b}, [a, b](const Tensor& dy) {
    return Tensors{a.requires_grad() ? sum_to(mul(dy, b), a.shape()) : Tensor(),
                   b.requires_grad() ? sum_to(mul(dy, a), b.shape()) : Tensor()};
  });
}

// y = a / b: dL/da = dy / b, dL/db = -dy a / b^2.
Tensor div(const Tensor& a, const Tensor& b) {
  Tensor y = binary_forward("div", Binary::div, a, b);
  return record("div", y, {a, b}, [a, b](const Tensor& dy) {
    return Tensors{a.requires_grad() ? sum_to(div(dy, b), a.shape()) : Tensor(),
                   b.requires_grad() ? sum_to(neg(div(mul(dy, a), mul(b, b))), b.shape()) : Tensor()};
  });
}

// y = max(a, b): the gradient goes to a where a >= b, to b elsewhere (a constant mask: zero second
// derivative).
Tensor maximum(const Tensor& a, const Tensor& b) {
  Tensor y = binary_forward("maximum", Binary::maximum, a, b);
  return record("maximum", y, {a, b}, [a, b](const Tensor& dy) {
    Tensor to_a = kernels::binary(Binary::ge_mask, a, b);
    return Tensors{a.requires_grad() ? sum_to(mul(dy, to_a), a.shape()) : Tensor(),
                   b.requires_grad()
                       ? sum_to(mul(dy, kernels::unary(Unary::rsub_scalar, to_a, 1.0)), b.shape())
                       : Tensor()};
  });
}

Tensor add(const Tensor& a, double b) {
  Tensor y = kernels::unary(Unary::add_scalar, a, b);
  return record("add_scalar", y, {a}, [](const Tensor& dy) { return Tensors{dy}; }, {.saves_inputs = false});
}

Tensor mul(const Tensor& a, double b) {
  Tensor y = kernels::unary(Unary::mul_scalar, a, b);
  return record("mul_scalar", y, {a}, [b](const Tensor& dy) { return Tensors{mul(dy, b)}; },
                {.saves_inputs = false});
}

Tensor rsub(const Tensor& a, double b) {
  Tensor y = kernels::unary(Unary::rsub_scalar, a, b);
  return record("rsub_scalar", y, {a}, [](const Tensor& dy) { return Tensors{neg(dy)}; },
                {.saves_inputs = false});
}

// y = b / a: dy/da = -b / a^2.
Tensor rdiv(const Tensor& a, double b) {
  Tensor y = kernels::unary(Unary::rdiv_scalar, a, b);
  return record("rdiv_scalar", y, {a},
                [a, b](const Tensor& dy) { return Tensors{mul(div(dy, mul(a, a)), -b)}; });
}

Tensor neg(const Tensor& x) {
  Tensor y = kernels::unary(Unary::neg, x);
  return record("neg", y, {x}, [](const Tensor& dy) { return Tensors{neg(dy)}; }, {.saves_inputs = false});
}

// y = exp(x): dy/dx = exp(x) = y, so the backward keeps y, not x.
Tensor exp(const Tensor& x) {
  Tensor y = kernels::unary(Unary::exp, x);
  return record("exp", y, {x}, [](const Tensor& dy, const Tensor& out) { return Tensors{mul(dy, out)}; },
                {.save_output = true, .saves_inputs = false});
}

// y = log(x): dy/dx = 1 / x.
Tensor log(const Tensor& x) {
  Tensor y = kernels::unary(Unary::log, x);
  return record("log", y, {x}, [x](const Tensor& dy) { return Tensors{div(dy, x)}; });
}

// y = x^p: dy/dx = p x^(p-1).
Tensor pow(const Tensor& x, double p) {
  Tensor y = kernels::unary(Unary::pow, x, p);
  return record("pow", y, {x}, [x, p](const Tensor& dy) {
    if (p == 1.0) return Tensors{dy};
    if (p == 2.0) return Tensors{mul(dy, mul(x, 2.0))};
    return Tensors{mul(dy, mul(pow(x, p - 1.0), p))};
  });
}

// y = sqrt(x): dy/dx = 1 / (2 sqrt(x)) = 1 / (2 y).
Tensor sqrt(const Tensor& x) {
  Tensor y = kernels::unary(Unary::sqrt, x);
  return record("sqrt", y, {x},
                [](const Tensor& dy, const Tensor& out) { return Tensors{div(dy, mul(out, 2.0))}; },
                {.save_output = true, .saves_inputs = false});
}

// y = |x|: dy/dx = sign(x), a constant almost everywhere.
Tensor abs(const Tensor& x) {
  Tensor y = kernels::unary(Unary::abs, x);
  return record("abs", y, {x},
                [x](const Tensor& dy) { return Tensors{mul(dy, kernels::unary(Unary::sign, x))}; });
}

// sign(x) is piecewise constant: its gradient is zero, so it records nothing.
Tensor sign(const Tensor& x) {
  return kernels::unary(Unary::sign, x);
}

// y = clamp(x, lo, hi): the gradient passes where lo <= x <= hi.
Tensor clamp(const Tensor& x, double lo, double hi) {
  BP_CHECK(lo <= hi, ValueError, "clamp: lo (", lo, ") must not exceed hi (", hi, ")");
  Tensor y = kernels::unary(Unary::clamp, x, lo, hi);
  return record("clamp", y, {x}, [x, lo, hi](const Tensor& dy) {
    return Tensors{mul(dy, kernels::unary(Unary::clamp_mask, x, lo, hi))};
  });
}

// y = 1 / (1 + exp(-x)): dy/dx = y (1 - y), so the backward keeps y.
Tensor sigmoid(const Tensor& x) {
  Tensor y = kernels::unary(Unary::sigmoid, x);
  return record("sigmoid", y, {x},
                [](const Tensor& dy, const Tensor& out) {
                  // No graph wanted (plain backward): the same product in one fused pass, bit-identical.
                  if (!GradMode::is_enabled())
                    return Tensors{kernels::activation_backward(kernels::ActivationGrad::sigmoid, dy, out)};
                  return Tensors{mul(dy, mul(out, rsub(out, 1.0)))};
                },
                {.save_output = true, .saves_inputs = false});
}

// y = tanh(x): dy/dx = 1 - y^2.
Tensor tanh(const Tensor& x) {
  Tensor y = kernels::unary(Unary::tanh, x);
  return record("tanh", y, {x},
                [](const Tensor& dy, const Tensor& out) {
                  if (!GradMode::is_enabled())
                    return Tensors{kernels::activation_backward(kernels::ActivationGrad::tanh, dy, out)};
                  return Tensors{mul(dy, rsub(mul(out, out), 1.0))};
                },
                {.save_output = true, .saves_inputs = false});
}

// y = max(x, 0): dy/dx = 1 where y > 0 (the same set as x > 0), so the output is kept and the mask is
// constant.
Tensor relu(const Tensor& x) {
  Tensor y = kernels::unary(Unary::relu, x);
  return record("relu", y, {x},
                [](const Tensor& dy, const Tensor& out) {
                  // No graph wanted: mask and product in one pass, one allocation instead of two
                  // (bit-identical).
                  if (!GradMode::is_enabled())
                    return Tensors{kernels::activation_backward(kernels::ActivationGrad::relu, dy, out)};
                  return Tensors{masked_scale(dy, kernels::unary(Unary::relu_mask, out), 1.0)};
                },
                {.save_output = true, .saves_inputs = false});
}

Tensor leaky_relu(const Tensor& x, double slope) {
  Tensor y = kernels::unary(Unary::leaky_relu, x, slope);
  return record("leaky_relu", y, {x}, [x, slope](const Tensor& dy) {
    return Tensors{masked_scale(dy, kernels::unary(Unary::leaky_relu_slope, x, slope), 1.0)};
  });
}

// y = x * mask * scale with a constant mask: dy/dx = mask * scale (the same op applied to the gradient).
Tensor masked_scale(const Tensor& x, const Tensor& mask, double scale) {
  BP_CHECK(x.shape() == mask.shape(), ShapeError, "masked_scale: mask shape ", mask.shape(),
           " does not match ", x.shape());
  check_floating(x, "masked_scale", "x");
  check_same_dtype("masked_scale", x, mask);
  Tensor y = kernels::masked_scale(x, mask, scale);
  return record("masked_scale", y, {x},
                [mask, scale](const Tensor& dy) { return Tensors{masked_scale(dy, mask, scale)}; },
                {.saves_inputs = false});
}

Tensor greater(const Tensor& a, double b) {
  return kernels::unary(Unary::greater_scalar, a, b);
}

Tensor equal(const Tensor& a, const Tensor& b) {
  check_same_dtype("equal", a, b);
  return kernels::binary(Binary::eq, a, b);
}

}  // namespace backprop
