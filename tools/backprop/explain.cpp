// The printing layer of `backprop explain`; every number comes from backprop/explain.hpp.
#include "explain.hpp"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <backprop/error.hpp>
#include <backprop/explain.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <vector>

extern char** environ;

namespace {

namespace ex = backprop::explain;
using Vector = std::vector<double>;

constexpr int kMaxRepeated = 4096;
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
void matrix(std::ostream& out, const std::string& caption, const ex::Matrix& m) {
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

void print_worked_example(std::ostream& out, const ex::WorkedExample& e, const ex::Verification& v) {
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
  const ex::LayerTrace& top = e.layers.back();
  out << "  a" << sup(L) << " - y       = " << vec(top.dC_da) << "\n";
  out << "  sigma'(z" << sup(L) << ")   = " << vec(top.sigma_prime) << "\n";
  out << "  delta" << sup(L) << "       = " << vec(top.delta) << "\n";
  for (std::size_t l = L - 1; l-- > 0;) {
    const ex::LayerTrace& t = e.layers[l];
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

void print_chain(std::ostream& out, const std::vector<ex::ChainCount>& rows) {
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
  for (const ex::ChainCount& c : rows) {
    out << std::setw(8) << c.n << " | " << std::setw(9) << c.naive_f << " " << std::setw(9) << c.naive_fprime
        << " " << std::setw(9) << c.naive_mul << "  " << std::left << std::setw(18) << sci(c.naive_grad)
        << std::right << " | " << std::setw(8) << c.engine_forward_nodes << " " << std::setw(14)
        << c.engine_backward_runs << "  " << sci(c.engine_grad)
        << (c.each_node_ran_once ? "" : "  (a node ran twice!)") << "\n";
  }
  out << "  naive: n (n + 1) / 2 evaluations of f, n of f', n - 1 multiplications; engine: n + n.\n\n";
}

void print_layered(std::ostream& out, const std::vector<ex::LayeredCount>& rows, bool truncated) {
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
  for (const ex::LayeredCount& c : rows) {
    out << std::setw(4) << c.width << std::setw(4) << c.depth << " | " << std::setw(10) << c.paths << " "
        << std::setw(11) << c.naive_mul << " " << std::setw(11) << c.naive_add << "  | " << std::setw(10)
        << c.dp_mul << " | " << std::setw(13) << c.engine_backward_runs << "  " << sci(c.max_abs_diff)
        << "\n";
  }
  if (truncated) out << "  (deeper rows left out: more than " << kTablePaths << " paths to enumerate)\n";
}

bool on_path(const std::string& program) {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');)
    if (!dir.empty() && ::access((dir + "/" + program).c_str(), X_OK) == 0) return true;
  return false;
}

// Runs `dot -Tsvg in -o out` without a shell (file names are passed as they are). True on success.
bool render_svg(const std::string& dot_path, const std::string& svg_path) {
  std::vector<std::string> args = {"dot", "-Tsvg", dot_path, "-o", svg_path};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  if (posix_spawnp(&pid, "dot", nullptr, nullptr, argv.data(), environ) != 0) return false;
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return false;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

std::string svg_path_for(const std::string& dot_path) {
  const std::string ext = ".dot";
  if (dot_path.size() > ext.size() && dot_path.compare(dot_path.size() - ext.size(), ext.size(), ext) == 0)
    return dot_path.substr(0, dot_path.size() - ext.size()) + ".svg";
  return dot_path + ".svg";
}

// Writes the DOT text; returns a line saying what was written (for the text output).
std::string write_graph(const std::string& path, const std::string& dot) {
  {
    std::ofstream file(path, std::ios::binary | std::ios::trunc);
    BP_CHECK(file.good(), FileError, "explain: --graph ", path, ": cannot open the file for writing");
    file << dot;
    file.close();
    BP_CHECK(file.good(), FileError, "explain: --graph ", path, ": writing the file failed");
  }
  std::string line = "Graph: wrote " + path + " (forward graph and the backward graph create_graph records)";
  if (!on_path("dot")) return line + "; install Graphviz to render it: dot -Tsvg " + path + " -o graph.svg";
  const std::string svg = svg_path_for(path);
  if (render_svg(path, svg)) return line + " and " + svg;
  return line + "; `dot` failed to render it to " + svg;
}

int run(const ExplainArgs& args, std::ostream& out) {
  BP_CHECK(args.repeated >= 0 && args.repeated <= kMaxRepeated, ConfigError, "explain: --repeated ",
           args.repeated, " is outside [0, ", kMaxRepeated, "]");
  BP_CHECK(std::isfinite(args.lr) && args.lr > 0, ConfigError, "explain: --lr ", args.lr,
           " must be a finite positive number");

  if (args.repeated > 0) {
    std::vector<ex::ChainCount> chain;
    std::vector<ex::LayeredCount> layered;
    bool agree = true;
    for (int n : growing(args.repeated)) {
      chain.push_back(ex::count_chain(n));
      agree = agree && chain.back().each_node_ran_once &&
              std::abs(chain.back().naive_grad - chain.back().engine_grad) <=
                  1e-12 * std::abs(chain.back().engine_grad);
    }
    bool truncated = false;
    for (int width : {2, 3}) {
      for (int depth : growing(args.repeated)) {
        std::uint64_t paths = 1;
        for (int i = 0; i < depth && paths <= kTablePaths; ++i) paths *= static_cast<std::uint64_t>(width);
        if (paths > kTablePaths) {
          truncated = true;
          break;
        }
        const ex::LayeredCount c = ex::count_layered(width, depth, args.seed);
        double scale = 0;
        for (double g : c.engine_grad) scale = std::max(scale, std::abs(g));
        agree = agree && c.max_abs_diff <= 1e-12 * scale;
        layered.push_back(c);
      }
    }
    if (args.json) {
      out << "{\"chain\": [";
      for (std::size_t i = 0; i < chain.size(); ++i) out << (i ? ", " : "") << ex::to_json(chain[i]);
      out << "], \"layered\": [";
      for (std::size_t i = 0; i < layered.size(); ++i) out << (i ? ", " : "") << ex::to_json(layered[i]);
      out << "], \"agree\": " << (agree ? "true" : "false") << "}\n";
    } else {
      out << "Why backpropagation is dynamic programming\n\n";
      print_chain(out, chain);
      print_layered(out, layered, truncated);
      out << "\n"
          << (agree ? "Check: the naive and memoised derivatives agree in every row (to 1e-12)."
                    : "Check FAILED: the naive and memoised derivatives differ.")
          << "\n";
    }
    if (!args.graph.empty()) {
      std::string line = write_graph(
          args.graph, ex::worked_example_dot(ex::worked_example({.lr = args.lr, .seed = args.seed})));
      if (!args.json) out << line << "\n";
    }
    return agree ? 0 : 1;
  }

  const ex::WorkedExample e = ex::worked_example({.sizes = {2, 3, 2}, .lr = args.lr, .seed = args.seed});
  const ex::Verification v = ex::verify(e);
  std::string graph_line;
  if (!args.graph.empty()) graph_line = write_graph(args.graph, ex::worked_example_dot(e));
  if (args.json) {
    out << ex::to_json(e, v) << "\n";
  } else {
    print_worked_example(out, e, v);
    if (!graph_line.empty()) out << graph_line << "\n";
  }
  return v.agree() ? 0 : 1;
}

}  // namespace

int run_explain(const ExplainArgs& args, std::ostream& out) {
  try {
    return run(args, out);
  } catch (const backprop::ConfigError& e) {
    std::cerr << "backprop: error: " << e.what() << "\n";
    return 2;
  } catch (const backprop::ValueError& e) {
    std::cerr << "backprop: error: " << e.what() << "\n";
    return 2;
  } catch (const backprop::FileError& e) {
    std::cerr << "backprop: error: " << e.what() << "\n";
    return 3;
  } catch (const backprop::Error& e) {
    std::cerr << "backprop: error: " << e.what() << "\n";
    return 1;
  }
}
