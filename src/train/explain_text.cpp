// Text of backprop/explain.hpp's results: the worked example as the delta rule's steps, and the tables of
// the dynamic-programming counts (what `backprop explain` prints).
#include <algorithm>
#include <backprop/error.hpp>
#include <backprop/explain.hpp>
#include <cmath>
#include <cstdio>
#include <iomanip>
#include <sstream>

namespace backprop::explain {

namespace {

using Vector = std::vector<double>;

// Rows of the layered-network table stop before the naive side enumerates more paths than this.
constexpr std::uint64_t kTablePaths = std::uint64_t{1} << 20;

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%10.6f", v);
  return buf;
}

std::string vec(const Vector& v) {
  std::string s = "[";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + number(v[i]);
  return s + " ]";
}

// A matrix as rows under one another, the first on the caption's line.
void matrix(std::ostream& out, const std::string& caption, const Matrix& m) {
  const std::string pad(caption.size(), ' ');
  for (std::int64_t r = 0; r < m.rows; ++r) {
    Vector row(m.values.begin() + r * m.cols, m.values.begin() + (r + 1) * m.cols);
    out << (r == 0 ? caption : pad) << vec(row) << "\n";
  }
}

// "^3" (built with append: operator+ here trips a false -Wrestrict in GCC 12).
std::string sup(std::size_t l) {
  std::string s = "^";
  s.append(std::to_string(l));
  return s;
}

void print_worked_example(std::ostream& out, const WorkedExample& e, const Verification& v) {
  const std::size_t L = e.layers.size();
  out << "One step of backpropagation, by hand: a ";
  for (std::size_t i = 0; i < e.sizes.size(); ++i) out << (i ? "-" : "") << e.sizes[i];
  out << " sigmoid network, one example, quadratic cost\n"
      << "  C = 1/2 sum_j (y_j - a^L_j)^2,  sigma(z) = 1 / (1 + e^-z),  sigma'(z) = sigma(z) (1 - sigma(z)), "
         " eta = "
      << e.lr << "\n\n";
  out << "Input and target (seed " << e.seed << ")\n";
  out << "  x = a^0 = " << vec(e.x) << "\n  y       = " << vec(e.y) << "\n";
  out << "Weights and biases\n";
  for (std::size_t l = 0; l < L; ++l) {
    matrix(out, "  W" + sup(l + 1) + " = ", e.layers[l].weight);
    out << "  b" << sup(l + 1) << " = " << vec(e.layers[l].bias) << "\n";
  }

  out << "\nI. Forward pass: z^l = W^l a^(l-1) + b^l,  a^l = sigma(z^l)\n";
  for (std::size_t l = 0; l < L; ++l) {
    out << "  z" << sup(l + 1) << " = " << vec(e.layers[l].z) << "\n";
    out << "  a" << sup(l + 1) << " = " << vec(e.layers[l].a) << "\n";
  }
  out << "  C   = " << number(e.cost) << "\n";

  out << "\nII. Output error: delta" << sup(L) << " = (a" << sup(L) << " - y) (.) sigma'(z" << sup(L)
      << ")\n";
  const LayerTrace& top = e.layers.back();
  out << "  a" << sup(L) << " - y       = " << vec(top.dC_da) << "\n";
  out << "  sigma'(z" << sup(L) << ")   = " << vec(top.sigma_prime) << "\n";
  out << "  delta" << sup(L) << "       = " << vec(top.delta) << "\n";
  for (std::size_t l = L - 1; l-- > 0;) {
    const LayerTrace& t = e.layers[l];
    const std::string here = sup(l + 1), above = sup(l + 2);
    out << "  Backpropagate: delta" << here << " = (W" << above << ")^T delta" << above << " (.) sigma'(z"
        << here << ")\n";
    out << "  (W" << above << ")^T delta" << above << " = " << vec(t.dC_da) << "\n";
    out << "  sigma'(z" << here << ")       = " << vec(t.sigma_prime) << "\n";
    out << "  delta" << here << "           = " << vec(t.delta) << "\n";
  }

  out << "\nIII. Gradients: dC/dW^l = delta^l (a^(l-1))^T,  dC/db^l = delta^l\n";
  for (std::size_t l = L; l-- > 0;) {
    matrix(out, "  dC/dW" + sup(l + 1) + " = ", e.layers[l].grad_weight);
    out << "  dC/db" << sup(l + 1) << " = " << vec(e.layers[l].grad_bias) << "\n";
  }

  out << "\nIV. Update: w <- w - eta dC/dw  (eta = " << e.lr << ")\n";
  for (std::size_t l = 0; l < L; ++l) {
    matrix(out, "  W" + sup(l + 1) + " = ", e.layers[l].new_weight);
    out << "  b" << sup(l + 1) << " = " << vec(e.layers[l].new_bias) << "\n";
  }
  out << "  C on the same example: " << number(e.cost) << " -> " << number(e.cost_after) << "\n\n";

  std::ostringstream diff;
  diff << std::setprecision(2) << std::scientific << v.max_abs_diff;
  if (v.agree()) {
    out << "Check: all " << v.numbers << " numbers agree with the autograd engine to " << v.tolerance
        << " (largest difference " << diff.str() << (v.worst.empty() ? "" : ", in " + v.worst) << ").\n";
  } else {
    out << "Check FAILED: " << v.disagreements << " of " << v.numbers
        << " numbers differ from the autograd engine by more than " << v.tolerance << " (worst: " << v.worst
        << ", off by " << diff.str() << ").\n";
  }
}

// 1, 2, ..., 8, then doubling, then n itself.
std::vector<int> growing(int n) {
  std::vector<int> rows;
  for (int i = 1; i <= n; i = i < 8 ? i + 1 : 2 * i) rows.push_back(i);
  if (rows.back() != n) rows.push_back(n);
  return rows;
}

std::string sci(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6e", v);
  return buf;
}

void print_chain(std::ostream& out, const std::vector<ChainCount>& rows) {
  out << "(a) A repeated subexpression: z = f(f(...f(w))), n times, f = sigmoid, w = " << rows.front().w
      << "\n"
      << "    dz/dw = f'(f^(n-1)(w)) ... f'(f(w)) f'(w). Expanded naively, each f^k(w) is evaluated again "
         "from w;\n"
      << "    the engine evaluates each once in the forward pass, stores it, and runs each node's backward "
         "once.\n\n";
  out << "         |          naive chain rule                         |   memoised engine\n"
      << "       n |   f evals  f' evals     mults  dz/dw              |  f evals  backward runs  dz/dw\n"
      << "  "
         "-------+---------------------------------------------------+---------------------------------------"
         "--\n";
  for (const ChainCount& c : rows) {
    out << std::setw(8) << c.n << " | " << std::setw(9) << c.naive_f << " " << std::setw(9) << c.naive_fprime
        << " " << std::setw(9) << c.naive_mul << "  " << std::left << std::setw(18) << sci(c.naive_grad)
        << std::right << " | " << std::setw(8) << c.engine_forward_nodes << " " << std::setw(14)
        << c.engine_backward_runs << "  " << sci(c.engine_grad)
        << (c.each_node_ran_once ? "" : "  (a node ran twice!)") << "\n";
  }
  out << "  naive: n (n + 1) / 2 evaluations of f, n of f', n - 1 multiplications; engine: n + n.\n\n";
}

void print_layered(std::ostream& out, const std::vector<LayeredCount>& rows, bool truncated) {
  out << "(b) Many paths: a layered sigmoid network of width W and depth L (one output y), dy/dx.\n"
      << "    Naively dy/dx_i is a sum over every path from x_i to y of the product of the edges' local\n"
      << "    derivatives (W^L paths, L multiplications each); the delta rule shares the sums layer by "
         "layer:\n"
      << "    O(L W^2).\n\n";
  const std::string rule(96, '-');
  out << "         |       naive: every path             | delta rule | engine\n"
      << "   W   L |      paths       mults        adds  |      mults | backward runs  max |naive - engine|\n"
      << "  " << rule.substr(0, 7) << "+" << rule.substr(0, 37) << "+" << rule.substr(0, 12) << "+"
      << rule.substr(0, 36) << "\n";
  for (const LayeredCount& c : rows) {
    out << std::setw(4) << c.width << std::setw(4) << c.depth << " | " << std::setw(10) << c.paths << " "
        << std::setw(11) << c.naive_mul << " " << std::setw(11) << c.naive_add << "  | " << std::setw(10)
        << c.dp_mul << " | " << std::setw(13) << c.engine_backward_runs << "  " << sci(c.max_abs_diff)
        << "\n";
  }
  if (truncated) out << "  (deeper rows left out: more than " << kTablePaths << " paths to enumerate)\n";
}

}  // namespace

std::string to_text(const WorkedExample& example, const Verification& verification) {
  std::ostringstream out;
  print_worked_example(out, example, verification);
  return out.str();
}

DynamicProgramming dynamic_programming(int n, std::uint64_t seed) {
  BP_CHECK(n >= 1 && n <= kMaxRepeated, ValueError, "dynamic_programming: n must be in [1, ", kMaxRepeated,
           "], got ", n);
  DynamicProgramming d;
  for (int k : growing(n)) {
    d.chain.push_back(count_chain(k));
    const ChainCount& c = d.chain.back();
    d.agree = d.agree && c.each_node_ran_once &&
              std::abs(c.naive_grad - c.engine_grad) <= 1e-12 * std::abs(c.engine_grad);
  }
  for (int width : {2, 3}) {
    for (int depth : growing(n)) {
      std::uint64_t paths = 1;
      for (int i = 0; i < depth && paths <= kTablePaths; ++i) paths *= static_cast<std::uint64_t>(width);
      if (paths > kTablePaths) {
        d.truncated = true;
        break;
      }
      LayeredCount c = count_layered(width, depth, seed);
      double scale = 0;
      for (double g : c.engine_grad) scale = std::max(scale, std::abs(g));
      d.agree = d.agree && c.max_abs_diff <= 1e-12 * scale;
      d.layered.push_back(std::move(c));
    }
  }
  return d;
}

std::string to_text(const DynamicProgramming& d) {
  std::ostringstream out;
  out << "Why backpropagation is dynamic programming\n\n";
  print_chain(out, d.chain);
  print_layered(out, d.layered, d.truncated);
  out << "\n"
      << (d.agree ? "Check: the naive and memoised derivatives agree in every row (to 1e-12)."
                  : "Check FAILED: the naive and memoised derivatives differ.")
      << "\n";
  return out.str();
}

std::string to_json(const DynamicProgramming& d) {
  std::string s = "{\"chain\": [";
  for (std::size_t i = 0; i < d.chain.size(); ++i) s += (i ? ", " : "") + to_json(d.chain[i]);
  s += "], \"layered\": [";
  for (std::size_t i = 0; i < d.layered.size(); ++i) s += (i ? ", " : "") + to_json(d.layered[i]);
  s += std::string("], \"agree\": ") + (d.agree ? "true" : "false") + "}";
  return s;
}

}  // namespace backprop::explain
