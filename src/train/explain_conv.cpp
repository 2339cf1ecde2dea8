// One step of backpropagation through a convolution layer, by hand in plain loops, and the same numbers from
// the engine (backprop/explain.hpp: conv_example, verify, to_text, to_json).
#include <algorithm>
#include <backprop/autograd.hpp>
#include <backprop/error.hpp>
#include <backprop/explain.hpp>
#include <backprop/ops.hpp>
#include <cmath>
#include <cstdio>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

namespace backprop::explain {

namespace {

using Vector = std::vector<double>;

double sigmoid(double z) {
  return 1.0 / (1.0 + std::exp(-z));
}

// Two decimals, as the dense worked example draws its numbers (easy to follow by hand).
double draw(Generator& gen, double lo, double hi) {
  return std::round(gen.uniform(lo, hi) * 100.0) / 100.0;
}

// Position (c, i, j) of a row-major [planes, h, w] array.
std::size_t at3(std::int64_t c, std::int64_t i, std::int64_t j, std::int64_t h, std::int64_t w) {
  return static_cast<std::size_t>((c * h + i) * w + j);
}

}  // namespace

ConvExample conv_example(const ConvExampleOptions& o) {
  BP_CHECK(o.channels >= 1 && o.channels <= 4 && o.filters >= 1 && o.filters <= 4, ValueError,
           "explain --conv: channels and filters must be in [1, 4], got ", o.channels, " and ", o.filters);
  BP_CHECK(o.kernel >= 1 && o.stride >= 1 && o.padding >= 0 && o.padding < o.kernel, ValueError,
           "explain --conv: kernel >= 1, stride >= 1 and 0 <= padding < kernel, got ", o.kernel, ", ",
           o.stride, ", ", o.padding);
  BP_CHECK(o.size >= o.kernel && o.size <= 12, ValueError,
           "explain --conv: the image size must be in [kernel, 12], got ", o.size);
  BP_CHECK(std::isfinite(o.lr) && o.lr > 0, ValueError,
           "explain --conv: lr must be a finite number > 0, got ", o.lr);
  ConvExample e;
  e.options = o;
  const std::int64_t C = o.channels, F = o.filters, K = o.kernel, H = o.size, W = o.size;
  e.out = (H + 2 * o.padding - K) / o.stride + 1;
  const std::int64_t OH = e.out, OW = e.out;
  Generator gen(o.seed);
  e.x.resize(static_cast<std::size_t>(C * H * W));
  for (double& v : e.x) v = draw(gen, 0, 1);
  e.weight.resize(static_cast<std::size_t>(F * C * K * K));
  for (double& v : e.weight) v = draw(gen, -1, 1);
  e.bias.resize(static_cast<std::size_t>(F));
  for (double& v : e.bias) v = draw(gen, -0.5, 0.5);
  e.y.resize(static_cast<std::size_t>(F * OH * OW));
  for (double& v : e.y) v = draw(gen, 0, 1);

  // x at (c, u, v) of the zero-padded input.
  const auto input = [&](const Vector& x, std::int64_t c, std::int64_t u, std::int64_t v) {
    return u < 0 || u >= H || v < 0 || v >= W ? 0.0 : x[at3(c, u, v, H, W)];
  };
  const auto widx = [&](std::int64_t f, std::int64_t c, std::int64_t p, std::int64_t q) {
    return static_cast<std::size_t>(((f * C + c) * K + p) * K + q);
  };
  const auto forward = [&](const Vector& weight, const Vector& bias, Vector& z, Vector& a) {
    z.assign(static_cast<std::size_t>(F * OH * OW), 0.0);
    a.assign(z.size(), 0.0);
    double cost = 0;
    for (std::int64_t f = 0; f < F; ++f)
      for (std::int64_t i = 0; i < OH; ++i)
        for (std::int64_t j = 0; j < OW; ++j) {
          double s = bias[static_cast<std::size_t>(f)];
          for (std::int64_t c = 0; c < C; ++c)
            for (std::int64_t p = 0; p < K; ++p)
              for (std::int64_t q = 0; q < K; ++q)
                s += weight[widx(f, c, p, q)] *
                     input(e.x, c, i * o.stride + p - o.padding, j * o.stride + q - o.padding);
          const std::size_t k = at3(f, i, j, OH, OW);
          z[k] = s;
          a[k] = sigmoid(s);
          cost += 0.5 * (e.y[k] - a[k]) * (e.y[k] - a[k]);
        }
    return cost;
  };
  e.cost = forward(e.weight, e.bias, e.z, e.a);

  // delta = dC/dz = (a - y) sigma'(z), one per output position.
  e.delta.resize(e.z.size());
  for (std::size_t k = 0; k < e.z.size(); ++k) e.delta[k] = (e.a[k] - e.y[k]) * e.a[k] * (1 - e.a[k]);
  // dC/dW[f, c, p, q] = sum over positions of delta[f, i, j] x[c, i s + p - pad, j s + q - pad]: the
  // correlation of the input with the deltas. dC/db[f] = sum of delta[f].
  e.grad_weight.assign(e.weight.size(), 0.0);
  e.grad_bias.assign(e.bias.size(), 0.0);
  // dC/dx[c, u, v] = sum of delta[f, i, j] W[f, c, p, q] over the (i, j, p, q) with i s + p - pad = u and
  // j s + q - pad = v: the transposed convolution of the deltas with the same weights.
  e.grad_input.assign(e.x.size(), 0.0);
  for (std::int64_t f = 0; f < F; ++f)
    for (std::int64_t i = 0; i < OH; ++i)
      for (std::int64_t j = 0; j < OW; ++j) {
        const double d = e.delta[at3(f, i, j, OH, OW)];
        e.grad_bias[static_cast<std::size_t>(f)] += d;
        for (std::int64_t c = 0; c < C; ++c)
          for (std::int64_t p = 0; p < K; ++p)
            for (std::int64_t q = 0; q < K; ++q) {
              const std::int64_t u = i * o.stride + p - o.padding, v = j * o.stride + q - o.padding;
              e.grad_weight[widx(f, c, p, q)] += d * input(e.x, c, u, v);
              if (u >= 0 && u < H && v >= 0 && v < W)
                e.grad_input[at3(c, u, v, H, W)] += d * e.weight[widx(f, c, p, q)];
            }
      }
  e.new_weight = e.weight;
  for (std::size_t k = 0; k < e.weight.size(); ++k) e.new_weight[k] -= o.lr * e.grad_weight[k];
  e.new_bias = e.bias;
  for (std::size_t k = 0; k < e.bias.size(); ++k) e.new_bias[k] -= o.lr * e.grad_bias[k];
  Vector z, a;
  e.cost_after = forward(e.new_weight, e.new_bias, z, a);
  return e;
}

Verification verify(const ConvExample& e, double tolerance) {
  const ConvExampleOptions& o = e.options;
  const std::int64_t C = o.channels, F = o.filters, K = o.kernel;
  Verification result;
  result.tolerance = tolerance;
  const auto compare = [&](const std::string& name, const Vector& hand, const Tensor& engine) {
    const Vector got = engine.to_vector();
    BP_CHECK(got.size() == hand.size(), ValueError, "explain --conv: ", name, " has ", hand.size(),
             " values by hand but ", got.size(), " from the engine");
    for (std::size_t i = 0; i < hand.size(); ++i) {
      const double d = std::abs(hand[i] - got[i]);
      ++result.numbers;
      if (!(d <= tolerance)) ++result.disagreements;
      if (!(d <= result.max_abs_diff)) {
        result.max_abs_diff = std::isnan(d) ? std::numeric_limits<double>::infinity() : d;
        result.worst = name + "[" + std::to_string(i) + "]";
      }
    }
  };
  const auto engine_cost = [&](const Vector& weight, const Vector& bias, Tensor* z_out, Tensors* grads) {
    Tensor x = from_vector(e.x, {1, C, o.size, o.size}, f64).requires_grad_();
    Tensor w = from_vector(weight, {F, C, K, K}, f64).requires_grad_();
    Tensor b = from_vector(bias, {F}, f64).requires_grad_();
    const Tensor z = conv2d(x, w, b, o.stride, o.padding);
    const Tensor y = from_vector(e.y, z.shape(), f64);
    const Tensor diff = sub(y, sigmoid(z));
    const Tensor cost = mul(sum(mul(diff, diff)), 0.5);
    if (grads) *grads = grad({cost}, {z, w, b, x});
    if (z_out) *z_out = z.detach();
    return cost.detach();
  };
  Tensor z;
  Tensors g;
  const Tensor cost = engine_cost(e.weight, e.bias, &z, &g);
  compare("C", {e.cost}, cost);
  compare("z", e.z, z);
  compare("a", e.a, sigmoid(z));
  compare("delta", e.delta, g[0]);
  compare("dC/dW", e.grad_weight, g[1]);
  compare("dC/db", e.grad_bias, g[2]);
  compare("dC/dx", e.grad_input, g[3]);
  compare("C after the update", {e.cost_after}, engine_cost(e.new_weight, e.new_bias, nullptr, nullptr));
  return result;
}

namespace {

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%7.3f", v);
  return buf;
}

// Planes of a [planes, rows, cols] array side by side, one row of text per row of the planes.
void planes(std::ostream& out, const std::string& caption, const Vector& v, std::int64_t count,
            std::int64_t rows, std::int64_t cols) {
  const std::string pad(caption.size(), ' ');
  for (std::int64_t r = 0; r < rows; ++r) {
    out << (r == 0 ? caption : pad);
    for (std::int64_t p = 0; p < count; ++p) {
      out << (p ? "   |" : "");
      for (std::int64_t c = 0; c < cols; ++c)
        out << number(v[static_cast<std::size_t>((p * rows + r) * cols + c)]);
    }
    out << "\n";
  }
}

}  // namespace

std::string to_text(const ConvExample& e, const Verification& v) {
  const ConvExampleOptions& o = e.options;
  const std::int64_t C = o.channels, F = o.filters, K = o.kernel, N = o.size, M = e.out;
  std::ostringstream out;
  out << "One step of backpropagation through a convolution layer, by hand: " << C << " input channel"
      << (C > 1 ? "s" : "") << " of " << N << "x" << N << ", " << F << " filters of " << K << "x" << K
      << ", stride " << o.stride << ", padding " << o.padding << ", sigmoid, quadratic cost\n"
      << "  z[f,i,j] = b[f] + sum_c,p,q W[f,c,p,q] x[c, i s + p - pad, j s + q - pad]   (" << F
      << " planes of " << M << "x" << M << ")\n"
      << "  a = sigma(z),  C = 1/2 sum (y - a)^2,  eta = " << o.lr << "\n\n";
  out << "Input, filters and target (seed " << o.seed << "); planes side by side\n";
  planes(out, "  x    = ", e.x, C, N, N);
  for (std::int64_t f = 0; f < F; ++f) {
    const Vector wf(e.weight.begin() + f * C * K * K, e.weight.begin() + (f + 1) * C * K * K);
    planes(out, "  W[" + std::to_string(f) + "] = ", wf, C, K, K);
  }
  out << "  b    = ";
  for (double b : e.bias) out << number(b);
  out << "\n";
  planes(out, "  y    = ", e.y, F, M, M);
  out << "\nI. Forward pass: each filter slides over the input\n";
  planes(out, "  z = ", e.z, F, M, M);
  planes(out, "  a = ", e.a, F, M, M);
  out << "  C = " << number(e.cost) << "\n";
  out << "\nII. Deltas at every output position: delta = (a - y) (.) sigma'(z)\n";
  planes(out, "  delta = ", e.delta, F, M, M);
  out << "\nIII. Gradients\n"
      << "  dC/dW[f,c,p,q] = sum_i,j delta[f,i,j] x[c, i s + p - pad, j s + q - pad]  (the input correlated "
         "with "
         "the deltas)\n";
  for (std::int64_t f = 0; f < F; ++f) {
    const Vector gf(e.grad_weight.begin() + f * C * K * K, e.grad_weight.begin() + (f + 1) * C * K * K);
    planes(out, "  dC/dW[" + std::to_string(f) + "] = ", gf, C, K, K);
  }
  out << "  dC/db[f] = sum_i,j delta[f,i,j] = ";
  for (double g : e.grad_bias) out << number(g);
  out << "\n  dC/dx = the transposed convolution of the deltas with the same filters (what a layer below "
         "receives)\n";
  planes(out, "  dC/dx = ", e.grad_input, C, N, N);
  out << "\nIV. Update w <- w - eta dC/dw: C " << number(e.cost) << " -> " << number(e.cost_after) << "\n\n";
  out << "Checked against the autograd engine (conv2d in float64): " << v.numbers << " numbers, "
      << (v.agree() ? "all agree" : std::to_string(v.disagreements) + " DISAGREE") << " (largest difference "
      << v.max_abs_diff << (v.worst.empty() ? "" : " at " + v.worst) << ", tolerance " << v.tolerance
      << ")\n";
  return out.str();
}

std::string to_json(const ConvExample& e, const Verification& v) {
  const ConvExampleOptions& o = e.options;
  nlohmann::json j = {{"kind", "conv"},
                      {"channels", o.channels},
                      {"filters", o.filters},
                      {"kernel", o.kernel},
                      {"stride", o.stride},
                      {"padding", o.padding},
                      {"size", o.size},
                      {"out", e.out},
                      {"lr", o.lr},
                      {"seed", o.seed},
                      {"x", e.x},
                      {"weight", e.weight},
                      {"bias", e.bias},
                      {"y", e.y},
                      {"z", e.z},
                      {"a", e.a},
                      {"delta", e.delta},
                      {"grad_weight", e.grad_weight},
                      {"grad_bias", e.grad_bias},
                      {"grad_input", e.grad_input},
                      {"cost", e.cost},
                      {"cost_after", e.cost_after},
                      {"verification",
                       {{"numbers", v.numbers},
                        {"agree", v.agree()},
                        {"max_abs_diff", v.max_abs_diff},
                        {"worst", v.worst},
                        {"tolerance", v.tolerance}}}};
  return j.dump();
}

}  // namespace backprop::explain
