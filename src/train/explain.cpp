// The worked example of `backprop explain`: one step of gradient descent on a small sigmoid network, by hand
// (plain loops over doubles, following the delta rule literally), then the same step through the autograd
// engine, number by number. The counting half (why backprop is dynamic programming) is in
// explain_counting.cpp.
#include <backprop/autograd.hpp>
#include <backprop/explain.hpp>
#include <backprop/generator.hpp>
#include <backprop/graphviz.hpp>
#include <backprop/ops.hpp>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

namespace backprop::explain {

namespace {

using Vector = std::vector<double>;

double sigma(double z) {
  return 1.0 / (1.0 + std::exp(-z));
}
double two_decimals(double v) {
  return std::round(v * 100.0) / 100.0;
}

// "^3": built with append, not operator+, which trips a false -Wrestrict in GCC 12.
std::string superscript(std::size_t l) {
  std::string s = "^";
  s.append(std::to_string(l));
  return s;
}

// z^l = W^l a^(l-1) + b^l and a^l = sigma(z^l) for every layer; returns C = 1/2 sum_j (y_j - a^L_j)^2.
double forward(const std::vector<Matrix>& weights, const std::vector<Vector>& biases, const Vector& x,
               const Vector& y, std::vector<Vector>* zs, std::vector<Vector>* as) {
  Vector a = x;
  for (std::size_t l = 0; l < weights.size(); ++l) {
    const Matrix& w = weights[l];
    Vector z(static_cast<std::size_t>(w.rows));
    for (std::int64_t j = 0; j < w.rows; ++j) {
      double s = biases[l][static_cast<std::size_t>(j)];
      for (std::int64_t k = 0; k < w.cols; ++k) s += w(j, k) * a[static_cast<std::size_t>(k)];
      z[static_cast<std::size_t>(j)] = s;
    }
    a.assign(z.size(), 0.0);
    for (std::size_t j = 0; j < z.size(); ++j) a[j] = sigma(z[j]);
    if (zs) zs->push_back(z);
    if (as) as->push_back(a);
  }
  double cost = 0.0;
  for (std::size_t j = 0; j < a.size(); ++j) cost += 0.5 * (y[j] - a[j]) * (y[j] - a[j]);
  return cost;
}

void check_finite(const Vector& v, const char* what, std::size_t expected) {
  BP_CHECK(v.size() == expected, ValueError, "explain: ", what, " has ", v.size(),
           " values but the network's ", what[0] == 'x' ? "input" : "output", " layer has ", expected,
           " units");
  for (std::size_t i = 0; i < v.size(); ++i)
    BP_CHECK(std::isfinite(v[i]), ValueError, "explain: ", what, "[", i, "] = ", v[i],
             " is not a finite number");
}

// The example's network as tensors: parameters are f64 leaves that require grad, x and y are constants.
struct EngineNetwork {
  Tensors weights, biases, zs, as;
  Tensor cost;
};

Tensor column(const Vector& v) {
  return from_vector(v, {static_cast<std::int64_t>(v.size()), 1}, f64);
}

Tensor quadratic_cost(const Tensor& y, const Tensor& a) {
  return mul(sum(pow(sub(y, a), 2.0)), 0.5);
}

EngineNetwork build_network(const WorkedExample& ex, bool updated) {
  EngineNetwork net;
  Tensor a = column(ex.x);
  for (const LayerTrace& layer : ex.layers) {
    const Matrix& w = updated ? layer.new_weight : layer.weight;
    net.weights.push_back(from_vector(w.values, {w.rows, w.cols}, f64).requires_grad_());
    net.biases.push_back(column(updated ? layer.new_bias : layer.bias).requires_grad_());
    Tensor z = add(matmul(net.weights.back(), a), net.biases.back());
    a = sigmoid(z);
    net.zs.push_back(z);
    net.as.push_back(a);
  }
  net.cost = quadratic_cost(column(ex.y), a);
  return net;
}

void check_consistent(const WorkedExample& ex) {
  BP_CHECK(ex.sizes.size() >= 2 && ex.layers.size() == ex.sizes.size() - 1, ValueError,
           "explain: the example has ", ex.layers.size(), " layers for ", ex.sizes.size(),
           " sizes (expected sizes - 1)");
  BP_CHECK(ex.x.size() == static_cast<std::size_t>(ex.sizes.front()) &&
               ex.y.size() == static_cast<std::size_t>(ex.sizes.back()),
           ValueError, "explain: x has ", ex.x.size(), " and y ", ex.y.size(), " values, expected ",
           ex.sizes.front(), " and ", ex.sizes.back());
  for (std::size_t l = 0; l < ex.layers.size(); ++l) {
    const LayerTrace& t = ex.layers[l];
    const auto n = static_cast<std::size_t>(ex.sizes[l + 1]);
    const auto m = static_cast<std::size_t>(ex.sizes[l]);
    const bool ok = t.weight.values.size() == n * m && t.new_weight.values.size() == n * m &&
                    t.grad_weight.values.size() == n * m && t.bias.size() == n && t.z.size() == n &&
                    t.a.size() == n && t.delta.size() == n && t.grad_bias.size() == n &&
                    t.new_bias.size() == n;
    BP_CHECK(ok, ValueError, "explain: layer ", l + 1, " of the example does not have the sizes [", n, " x ",
             m, "] its sizes entry says");
  }
}

}  // namespace

WorkedExample worked_example(const WorkedExampleOptions& options) {
  BP_CHECK(options.sizes.size() >= 2, ValueError,
           "explain: sizes needs at least 2 entries (inputs, outputs), got ", options.sizes.size());
  for (std::size_t i = 0; i < options.sizes.size(); ++i)
    BP_CHECK(options.sizes[i] >= 1 && options.sizes[i] <= 64, ValueError, "explain: sizes[", i,
             "] = ", options.sizes[i], " is outside [1, 64]");
  BP_CHECK(std::isfinite(options.lr) && options.lr > 0, ValueError, "explain: learning rate ", options.lr,
           " must be a finite positive number");

  WorkedExample ex;
  ex.sizes = options.sizes;
  ex.lr = options.lr;
  ex.seed = options.seed;
  const std::size_t n_layers = options.sizes.size() - 1;
  Generator gen(options.seed);
  auto draw = [&](std::size_t count, double lo, double hi) {
    Vector v(count);
    for (double& e : v) e = two_decimals(gen.uniform(lo, hi));
    return v;
  };
  ex.x = options.x.empty() ? draw(static_cast<std::size_t>(options.sizes.front()), 0.0, 1.0) : options.x;
  ex.y = options.y.empty() ? draw(static_cast<std::size_t>(options.sizes.back()), 0.0, 1.0) : options.y;
  check_finite(ex.x, "x", static_cast<std::size_t>(options.sizes.front()));
  check_finite(ex.y, "y", static_cast<std::size_t>(options.sizes.back()));

  std::vector<Matrix> weights;
  std::vector<Vector> biases;
  for (std::size_t l = 0; l < n_layers; ++l) {
    const std::int64_t rows = options.sizes[l + 1], cols = options.sizes[l];
    weights.push_back({rows, cols, draw(static_cast<std::size_t>(rows * cols), -1.0, 1.0)});
    biases.push_back(draw(static_cast<std::size_t>(rows), -0.5, 0.5));
  }

  // I. Forward pass.
  std::vector<Vector> zs, as;
  ex.cost = forward(weights, biases, ex.x, ex.y, &zs, &as);
  ex.layers.resize(n_layers);
  for (std::size_t l = 0; l < n_layers; ++l) {
    LayerTrace& t = ex.layers[l];
    t.weight = weights[l];
    t.bias = biases[l];
    t.z = zs[l];
    t.a = as[l];
  }

  // II. Errors, from the output layer down. For C = 1/2 sum (y - a^L)^2, dC/da^L = a^L - y; below that,
  // z^(l+1) = W^(l+1) a^l + b^(l+1) gives dC/da^l_k = sum_j W^(l+1)_jk delta^(l+1)_j. Then a^l = sigma(z^l)
  // gives delta^l = dC/dz^l = dC/da^l (.) sigma'(z^l), with sigma'(z) = sigma(z) (1 - sigma(z)).
  for (std::size_t l = n_layers; l-- > 0;) {
    LayerTrace& t = ex.layers[l];
    const std::size_t n = t.a.size();
    t.dC_da.assign(n, 0.0);
    if (l + 1 == n_layers) {
      for (std::size_t j = 0; j < n; ++j) t.dC_da[j] = t.a[j] - ex.y[j];
    } else {
      const LayerTrace& above = ex.layers[l + 1];
      for (std::int64_t j = 0; j < above.weight.rows; ++j)
        for (std::size_t k = 0; k < n; ++k)
          t.dC_da[k] +=
              above.weight(j, static_cast<std::int64_t>(k)) * above.delta[static_cast<std::size_t>(j)];
    }
    t.sigma_prime.resize(n);
    t.delta.resize(n);
    for (std::size_t j = 0; j < n; ++j) {
      t.sigma_prime[j] = t.a[j] * (1.0 - t.a[j]);
      t.delta[j] = t.dC_da[j] * t.sigma_prime[j];
    }
  }

  // III. Gradients: z^l_j = sum_k W^l_jk a^(l-1)_k + b^l_j, so dC/dW^l_jk = delta^l_j a^(l-1)_k, dC/db^l_j =
  // delta^l_j. IV. The update w <- w - eta dC/dw.
  for (std::size_t l = 0; l < n_layers; ++l) {
    LayerTrace& t = ex.layers[l];
    const Vector& below = l == 0 ? ex.x : ex.layers[l - 1].a;
    t.grad_weight = {t.weight.rows, t.weight.cols, Vector(t.weight.values.size())};
    t.new_weight = t.grad_weight;
    for (std::int64_t j = 0; j < t.weight.rows; ++j)
      for (std::int64_t k = 0; k < t.weight.cols; ++k) {
        t.grad_weight(j, k) = t.delta[static_cast<std::size_t>(j)] * below[static_cast<std::size_t>(k)];
        t.new_weight(j, k) = t.weight(j, k) - ex.lr * t.grad_weight(j, k);
      }
    t.grad_bias = t.delta;
    t.new_bias.resize(t.bias.size());
    for (std::size_t j = 0; j < t.bias.size(); ++j) t.new_bias[j] = t.bias[j] - ex.lr * t.grad_bias[j];
  }

  std::vector<Matrix> new_weights;
  std::vector<Vector> new_biases;
  for (const LayerTrace& t : ex.layers) {
    new_weights.push_back(t.new_weight);
    new_biases.push_back(t.new_bias);
  }
  ex.cost_after = forward(new_weights, new_biases, ex.x, ex.y, nullptr, nullptr);
  return ex;
}

Verification verify(const WorkedExample& ex, double tolerance) {
  check_consistent(ex);
  Verification result;
  result.tolerance = tolerance;
  auto compare = [&](const std::string& name, const Vector& hand, const Tensor& engine, std::int64_t cols) {
    const Vector e = engine.to_vector();
    BP_CHECK(e.size() == hand.size(), ValueError, "explain: ", name, " has ", hand.size(),
             " values by hand but ", e.size(), " from the engine");
    for (std::size_t i = 0; i < hand.size(); ++i) {
      const double d = std::abs(hand[i] - e[i]);
      ++result.numbers;
      std::ostringstream where;
      where << name << "[" << (cols > 0 ? i / static_cast<std::size_t>(cols) : i) << "]";
      if (cols > 0) where << "[" << i % static_cast<std::size_t>(cols) << "]";
      if (!(d <= tolerance)) ++result.disagreements;  // NaN fails too
      if (!(d <= result.max_abs_diff)) {
        result.max_abs_diff = std::isnan(d) ? std::numeric_limits<double>::infinity() : d;
        result.worst = where.str();
      }
    }
  };

  EngineNetwork net = build_network(ex, false);
  Tensors inputs = net.zs;
  for (std::size_t l = 0; l < ex.layers.size(); ++l) {
    inputs.push_back(net.weights[l]);
    inputs.push_back(net.biases[l]);
  }
  const Tensors grads = grad({net.cost}, inputs);
  const std::size_t n_layers = ex.layers.size();
  compare("C", {ex.cost}, net.cost, 0);
  NoGradGuard no_grad;
  for (std::size_t l = 0; l < n_layers; ++l) {
    const LayerTrace& t = ex.layers[l];
    const std::string sup = superscript(l + 1);
    const Tensor& dw = grads[n_layers + 2 * l];
    const Tensor& db = grads[n_layers + 2 * l + 1];
    compare("z" + sup, t.z, net.zs[l], 0);
    compare("a" + sup, t.a, net.as[l], 0);
    compare("delta" + sup, t.delta, grads[l], 0);
    compare("dC/dW" + sup, t.grad_weight.values, dw, t.weight.cols);
    compare("dC/db" + sup, t.grad_bias, db, 0);
    compare("W" + sup + " updated", t.new_weight.values, sub(net.weights[l].detach(), mul(dw, ex.lr)),
            t.weight.cols);
    compare("b" + sup + " updated", t.new_bias, sub(net.biases[l].detach(), mul(db, ex.lr)), 0);
  }
  compare("C after the update", {ex.cost_after}, build_network(ex, true).cost, 0);
  return result;
}

std::string worked_example_dot(const WorkedExample& ex) {
  check_consistent(ex);
  EngineNetwork net = build_network(ex, false);
  const std::uint64_t first_backward = net.cost.grad_fn()->sequence_nr() + 1;
  Tensors params;
  DotOptions options{.backward_from = first_backward};
  std::vector<std::string> labels = {"C = 1/2 sum (y - a^L)^2"};
  for (std::size_t l = 0; l < ex.layers.size(); ++l) {
    const std::string sup = superscript(l + 1);
    params.push_back(net.weights[l]);
    params.push_back(net.biases[l]);
    options.leaves.push_back({"W" + sup, net.weights[l]});
    options.leaves.push_back({"b" + sup, net.biases[l]});
    labels.push_back("dC/dW" + sup);
    labels.push_back("dC/db" + sup);
  }
  Tensors roots = {net.cost};
  for (const Tensor& g : grad({net.cost}, params, {.create_graph = true})) roots.push_back(g);
  std::ostringstream title;
  title << "backprop explain: ";
  for (std::size_t i = 0; i < ex.sizes.size(); ++i) title << (i ? "-" : "") << ex.sizes[i];
  title << " sigmoid network, quadratic cost; forward graph and the backward graph grad(..., create_graph) "
           "records";
  options.title = title.str();
  return to_dot(roots, labels, options);
}

std::string to_json(const WorkedExample& ex, const Verification& v) {
  using nlohmann::json;
  json layers = json::array();
  auto matrix = [](const Matrix& m) {
    json rows = json::array();
    for (std::int64_t r = 0; r < m.rows; ++r)
      rows.push_back(Vector(m.values.begin() + r * m.cols, m.values.begin() + (r + 1) * m.cols));
    return rows;
  };
  for (std::size_t l = 0; l < ex.layers.size(); ++l) {
    const LayerTrace& t = ex.layers[l];
    layers.push_back({{"layer", l + 1},
                      {"weight", matrix(t.weight)},
                      {"bias", t.bias},
                      {"z", t.z},
                      {"a", t.a},
                      {"dC_da", t.dC_da},
                      {"sigma_prime", t.sigma_prime},
                      {"delta", t.delta},
                      {"grad_weight", matrix(t.grad_weight)},
                      {"grad_bias", t.grad_bias},
                      {"new_weight", matrix(t.new_weight)},
                      {"new_bias", t.new_bias}});
  }
  json out = {{"sizes", ex.sizes},
              {"lr", ex.lr},
              {"seed", ex.seed},
              {"x", ex.x},
              {"y", ex.y},
              {"cost", ex.cost},
              {"cost_after", ex.cost_after},
              {"layers", layers},
              {"verification",
               {{"numbers", v.numbers},
                {"tolerance", v.tolerance},
                {"max_abs_diff", v.max_abs_diff},
                {"worst", v.worst},
                {"disagreements", v.disagreements},
                {"agree", v.agree()}}}};
  return out.dump();
}

}  // namespace backprop::explain
