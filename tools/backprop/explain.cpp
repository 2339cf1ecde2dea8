// `backprop explain`: checks the flags, prints the library's text or JSON (backprop/explain.hpp) and writes the
// graph files.
#include "explain.hpp"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <backprop/error.hpp>
#include <backprop/explain.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>

extern char** environ;

namespace {

namespace ex = backprop::explain;

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
  BP_CHECK(args.repeated >= 0 && args.repeated <= ex::kMaxRepeated, ConfigError, "explain: --repeated ",
           args.repeated, " is outside [0, ", ex::kMaxRepeated, "]");
  BP_CHECK(std::isfinite(args.lr) && args.lr > 0, ConfigError, "explain: --lr ", args.lr,
           " must be a finite positive number");

  if (args.repeated > 0) {
    const ex::DynamicProgramming d = ex::dynamic_programming(args.repeated, args.seed);
    out << (args.json ? ex::to_json(d) + "\n" : ex::to_text(d));
    if (!args.graph.empty()) {
      std::string line = write_graph(
          args.graph, ex::worked_example_dot(ex::worked_example({.lr = args.lr, .seed = args.seed})));
      if (!args.json) out << line << "\n";
    }
    return d.agree ? 0 : 1;
  }

  const ex::WorkedExample e = ex::worked_example({.sizes = {2, 3, 2}, .lr = args.lr, .seed = args.seed});
  const ex::Verification v = ex::verify(e);
  std::string graph_line;
  if (!args.graph.empty()) graph_line = write_graph(args.graph, ex::worked_example_dot(e));
  if (args.json) {
    out << ex::to_json(e, v) << "\n";
  } else {
    out << ex::to_text(e, v);
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
