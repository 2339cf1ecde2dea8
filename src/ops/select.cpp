// Selection by a condition (where, masked_fill) and clamp with tensor bounds. Every gradient is where(mask, dy,
// 0) for a constant mask, summed back over broadcast dims: an op whose own backward is again a where.
#include <backprop/ops.hpp>
#include <limits>

#include "kernels/kernels.hpp"

namespace backprop {

namespace {

struct Named {
  const char* name;
  const Tensor* tensor;
};

/// The broadcast shape of the defined operands; a ShapeError naming the op and every operand otherwise.
Shape broadcast_all(const char* op, std::initializer_list<Named> operands) {
  Shape out;
  bool fits = true;
  for (const Named& o : operands) {
    if (!o.tensor->defined()) continue;
    const Shape& s = o.tensor->shape();
    if (s.size() > out.size()) out.insert(out.begin(), s.size() - out.size(), 1);
    for (std::size_t i = 1; i <= s.size(); ++i) {
      std::int64_t& d = out[out.size() - i];
      const std::int64_t e = s[s.size() - i];
      if (d == 1)
        d = e;
      else if (e != 1 && e != d)
        fits = false;
    }
  }
  if (!fits) {
    std::string shapes;
    for (const Named& o : operands)
      if (o.tensor->defined())
        shapes += std::string(shapes.empty() ? "" : ", ") + o.name + " " + to_string(o.tensor->shape());
    BP_CHECK(false, ShapeError, op, ": shapes do not broadcast (", shapes, ")");
  }
  return out;
}

void check_dtype(const char* op, const char* name, const Tensor& t, const char* like_name,
                 const Tensor& like) {
  BP_CHECK(!t.defined() || t.dtype() == like.dtype(), DTypeError, op, ": ", name, " is ", t.dtype(), " ",
           t.shape(), " but ", like_name, " is ", like.dtype(), " ", like.shape(),
           "; convert one with .to()");
}

}  // namespace

// y = cond ? a : b. dL/da = dy where cond holds (0 elsewhere), dL/db = dy where it does not; cond is
// constant, so each gradient is again a where of dy, differentiable to any order.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  BP_CHECK(cond.defined() && a.defined() && b.defined(), ValueError,
           "where: cond, input and other must all be given");
  check_dtype("where", "other", b, "input", a);
  broadcast_all("where", {{"condition", &cond}, {"input", &a}, {"other", &b}});
  const Tensor mask = kernels::nonzero_mask(cond, a.dtype());
  Tensor y = kernels::ternary(kernels::Ternary::where, mask, a, b);
  return record("where", y, {a, b},
                [mask, sa = a.shape(), sb = b.shape(), ga = a.requires_grad(),
                 gb = b.requires_grad()](const Tensor& dy) {
                  const Tensor zero = zeros({}, dy.dtype());
                  return Tensors{ga ? sum_to(where(mask, dy, zero), sa) : Tensor(),
                                 gb ? sum_to(where(mask, zero, dy), sb) : Tensor()};
                },
                {.saves_inputs = false});
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, const Tensor& value) {
  BP_CHECK(value.dim() == 0, ShapeError, "masked_fill: value must be a 0-dim tensor, got ", value.shape());
  check_dtype("masked_fill", "value", value, "input", x);
  const Shape out = broadcast_all("masked_fill", {{"input", &x}, {"mask", &mask}});
  BP_CHECK(out == x.shape(), ShapeError, "masked_fill: mask ", mask.shape(), " does not broadcast to input ",
           x.shape(), " (the result would be ", out, ")");
  return where(mask, value, x);
}

Tensor masked_fill(const Tensor& x, const Tensor& mask, double value) {
  return masked_fill(x, mask, full({}, value, x.dtype()));
}

// y = min(max(x, lo), hi). As in PyTorch: dL/dx = dy where lo <= x <= hi; dL/dlo = dy where x < lo < hi;
// dL/dhi = dy where x > hi or hi < lo (then y = hi everywhere). The masks are constant.
Tensor clamp(const Tensor& x, const Tensor& min, const Tensor& max) {
  BP_CHECK(min.defined() || max.defined(), ValueError, "clamp: at least one of min and max must be given");
  check_dtype("clamp", "min", min, "input", x);
  check_dtype("clamp", "max", max, "input", x);
  broadcast_all("clamp", {{"input", &x}, {"min", &min}, {"max", &max}});
  const double inf = std::numeric_limits<double>::infinity();
  const Tensor lo = min.defined() ? min : full({}, -inf, x.dtype());
  const Tensor hi = max.defined() ? max : full({}, inf, x.dtype());
  Tensor y = kernels::ternary(kernels::Ternary::clamp, x, lo, hi);
  return record("clamp", y, {x, min, max},
                [x, lo, hi, gmin = min.defined() && min.requires_grad(),
                 gmax = max.defined() && max.requires_grad()](const Tensor& dy) {
                  const Tensor zero = zeros({}, dy.dtype());
                  auto where_mask = [&](kernels::Ternary kind, const Shape& shape) {
                    return sum_to(where(kernels::ternary(kind, x, lo, hi), dy, zero), shape);
                  };
                  return Tensors{
                      x.requires_grad() ? where_mask(kernels::Ternary::clamp_pass, x.shape()) : Tensor(),
                      gmin ? where_mask(kernels::Ternary::clamp_below, lo.shape()) : Tensor(),
                      gmax ? where_mask(kernels::Ternary::clamp_above, hi.shape()) : Tensor()};
                });
}

}  // namespace backprop
