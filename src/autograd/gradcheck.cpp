#include <backprop/gradcheck.hpp>
#include <backprop/ops.hpp>
#include <cmath>

namespace backprop {

namespace {

/// <v, fn(inputs)> as a scalar, for a fixed projection v of the output's shape.
Tensor project(const Tensor& y, const Tensor& v) {
  return sum(mul(y, v));
}

GradcheckResult compare(const Tensors& inputs, const Tensors& analytic, const std::function<double()>& eval,
                        const GradcheckOptions& o) {
  GradcheckResult r;
  double worst_score = -1;
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (!inputs[i].requires_grad()) continue;
    Tensor x = inputs[i];
    double* p = x.data<double>();
    for (std::int64_t k = 0; k < x.numel(); ++k) {
      const double saved = p[k];
      p[k] = saved + o.eps;
      const double plus = eval();
      p[k] = saved - o.eps;
      const double minus = eval();
      p[k] = saved;
      const double numeric = (plus - minus) / (2 * o.eps);
      const double a = analytic[i].defined() ? analytic[i].flat(k) : 0.0;
      const double abs_err = std::abs(a - numeric);
      const double rel_err = abs_err / std::max(std::abs(numeric), 1e-12);
      const double score = abs_err - (o.atol + o.rtol * std::abs(numeric));
      r.max_abs_error = std::max(r.max_abs_error, abs_err);
      if (std::abs(numeric) > o.atol) r.max_rel_error = std::max(r.max_rel_error, rel_err);
      if (score > worst_score || !std::isfinite(a)) {
        worst_score = std::isfinite(a) ? score : 1e300;
        r.worst_input = i;
        r.worst_index = k;
        r.analytic = a;
        r.numeric = numeric;
      }
      if (score > 0 || !std::isfinite(a)) r.ok = false;
    }
  }
  return r;
}

Tensors leaves_of(const Tensors& inputs) {
  for (std::size_t i = 0; i < inputs.size(); ++i)
    BP_CHECK(inputs[i].dtype() == f64, DTypeError, "gradcheck: input ", i, " is ", inputs[i].dtype(),
             "; finite differences need f64 inputs");
  return inputs;
}

void raise_if_failed(const char* what, const GradcheckResult& r, const GradcheckOptions& o) {
  BP_CHECK(r.ok || !o.raise, Error, what, " failed: input ", r.worst_input, ", element ", r.worst_index,
           ": analytic ", r.analytic, " vs numeric ", r.numeric, " (max abs error ", r.max_abs_error,
           ", max rel error ", r.max_rel_error, "; atol ", o.atol, ", rtol ", o.rtol, ")");
}

GradcheckResult check_scalar(const std::function<Tensor(const Tensors&)>& scalar_fn, const Tensors& inputs,
                             const GradcheckOptions& o, const char* what) {
  Tensors wrt;
  for (const Tensor& x : inputs)
    if (x.requires_grad()) wrt.push_back(x);
  BP_CHECK(!wrt.empty(), ValueError, what, ": no input requires grad");
  Tensor s = scalar_fn(inputs);
  // An output that does not depend on the inputs through the graph (the gradient of a linear op is constant,
  // so gradgradcheck's h(x) is) has zero derivatives: leave `g` undefined, which compare() reads as 0.
  Tensors g(wrt.size());
  if (s.requires_grad()) g = grad({s}, wrt, {.allow_unused = true});
  Tensors analytic(inputs.size());
  for (std::size_t i = 0, k = 0; i < inputs.size(); ++i)
    if (inputs[i].requires_grad()) analytic[i] = g[k++];
  auto eval = [&]() {
    NoGradGuard guard;
    return scalar_fn(inputs).item();
  };
  GradcheckResult r = compare(inputs, analytic, eval, o);
  raise_if_failed(what, r, o);
  return r;
}

}  // namespace

GradcheckResult gradcheck(const TensorFunction& fn, const Tensors& inputs_in, GradcheckOptions o) {
  const Tensors inputs = leaves_of(inputs_in);
  Tensor y0;
  {
    NoGradGuard guard;
    y0 = fn(inputs);
  }
  Generator gen(o.seed + 1);
  if (y0.numel() <= 16) {  // the whole Jacobian, one output element at a time
    GradcheckResult worst;
    for (std::int64_t j = 0; j < y0.numel(); ++j) {
      Tensor v = zeros(y0.shape(), y0.dtype());
      dispatch(v.dtype(), [&](auto tag) { v.data<decltype(tag)>()[j] = 1; });
      GradcheckOptions inner = o;
      inner.raise = false;
      GradcheckResult r =
          check_scalar([&](const Tensors& in) { return project(fn(in), v); }, inputs, inner, "gradcheck");
      if (!r.ok || r.max_abs_error > worst.max_abs_error) {
        const bool was_ok = worst.ok;
        worst = r;
        worst.ok = was_ok && r.ok;
      }
    }
    raise_if_failed("gradcheck", worst, o);
    return worst;
  }
  Tensor v = randn(y0.shape(), gen, y0.dtype());
  return check_scalar([&](const Tensors& in) { return project(fn(in), v); }, inputs, o, "gradcheck");
}

GradcheckResult gradgradcheck(const TensorFunction& fn, const Tensors& inputs_in, GradcheckOptions o) {
  const Tensors inputs = leaves_of(inputs_in);
  Tensor y0;
  {
    NoGradGuard guard;
    y0 = fn(inputs);
  }
  Generator gen(o.seed + 2);
  const Tensor v = randn(y0.shape(), gen, y0.dtype());
  Tensors u;
  for (const Tensor& x : inputs) u.push_back(randn(x.shape(), gen, x.dtype()));
  // h(x) = sum_i <u_i, d<v, fn(x)>/dx_i>: its gradient is a Hessian-vector product.
  auto h = [&](const Tensors& in) {
    if (!GradMode::is_enabled()) {  // finite-difference evaluations: a first-order gradient suffices
      GradModeGuard on(true);
      Tensors wrt;
      for (const Tensor& x : in)
        if (x.requires_grad()) wrt.push_back(x);
      Tensors g = grad({project(fn(in), v)}, wrt, {.allow_unused = true});
      double total = 0;
      for (std::size_t i = 0, k = 0; i < in.size(); ++i)
        if (in[i].requires_grad()) {
          if (g[k].defined()) total += sum(mul(g[k], u[i])).item();
          ++k;
        }
      return scalar(total, f64);
    }
    Tensors wrt;
    for (const Tensor& x : in)
      if (x.requires_grad()) wrt.push_back(x);
    Tensors g = grad({project(fn(in), v)}, wrt, {.create_graph = true, .allow_unused = true});
    Tensor total = zeros({}, f64);
    for (std::size_t i = 0, k = 0; i < in.size(); ++i)
      if (in[i].requires_grad()) {
        if (g[k].defined()) total = add(total, sum(mul(g[k], u[i])));
        ++k;
      }
    return total;
  };
  return check_scalar(h, inputs, o, "gradgradcheck");
}

}  // namespace backprop
