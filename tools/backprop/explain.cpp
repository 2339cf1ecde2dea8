// `backprop explain`: checks the flags, prints the library's text or JSON (backprop/explain.hpp) and writes the
// graph files.
#include "explain.hpp"

#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <backprop/config.hpp>
#include <backprop/error.hpp>
#include <backprop/explain.hpp>
#include <backprop/io.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "outputs.hpp"

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

// Renders DOT text to SVG with Graphviz's `dot`, run without a shell, through temporary files (so the output
// goes through the one writer like every other file). Empty when `dot` fails.
std::string render_svg(const std::string& dot) {
  std::FILE* in = std::tmpfile();
  std::FILE* svg = std::tmpfile();
  std::string image;
  if (in != nullptr && svg != nullptr && std::fwrite(dot.data(), 1, dot.size(), in) == dot.size() &&
      std::fflush(in) == 0 && ::lseek(fileno(in), 0, SEEK_SET) == 0) {
    std::vector<std::string> args = {"dot", "-Tsvg"};
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, fileno(in), STDIN_FILENO);
    posix_spawn_file_actions_adddup2(&actions, fileno(svg), STDOUT_FILENO);
    pid_t pid = 0;
    int status = 0;
    const bool ran = posix_spawnp(&pid, "dot", &actions, nullptr, argv.data(), environ) == 0 &&
                     waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    posix_spawn_file_actions_destroy(&actions);
    if (ran && std::fseek(svg, 0, SEEK_SET) == 0) {
      char buffer[1 << 16];
      while (const std::size_t n = std::fread(buffer, 1, sizeof buffer, svg)) image.append(buffer, n);
    }
  }
  if (in != nullptr) std::fclose(in);
  if (svg != nullptr) std::fclose(svg);
  return image;
}

std::string svg_path_for(const std::string& dot_path) {
  const std::string ext = ".dot";
  if (dot_path.size() > ext.size() && dot_path.compare(dot_path.size() - ext.size(), ext.size(), ext) == 0)
    return dot_path.substr(0, dot_path.size() - ext.size()) + ".svg";
  return dot_path + ".svg";
}

// Writes the DOT text (and its SVG rendering beside it, unless --graph is a stream); returns a line saying
// what was written (for the text output). Both outputs are checked before either is written.
std::string write_graph(const std::string& path, const std::string& dot, bool force) {
  namespace io = backprop::io;
  cli::check_output("--graph", path, io::FileKind::dot, "Graphviz DOT text", force);
  const bool stream = cli::is_stream_output(path);
  const bool render = !stream && on_path("dot");
  const std::string svg = svg_path_for(path);
  if (render) cli::check_output("--graph", svg, io::FileKind::text, "an SVG image (text)", force);
  io::write_file_atomic(path, dot, {.force = force});
  std::string line = "Graph: wrote " + path + " (forward graph and the backward graph create_graph records)";
  if (stream) return line;
  if (!render) return line + "; install Graphviz to render it: dot -Tsvg " + path + " -o graph.svg";
  const std::string image = render_svg(dot);
  if (image.empty()) return line + "; `dot` failed to render it to " + svg;
  io::write_file_atomic(svg, image, {.force = force});
  return line + " and " + svg;
}

int run(const ExplainArgs& args, std::ostream& out) {
  // The ranges of the command flag table, also for a caller that fills ExplainArgs itself.
  backprop::config::check_flag("explain", "--repeated", args.repeated);
  backprop::config::check_flag("explain", "--lr", args.lr);
  backprop::config::check_flag("explain", "--seed", static_cast<double>(args.seed));

  if (args.repeated > 0) {
    const ex::DynamicProgramming d = ex::dynamic_programming(args.repeated, args.seed);
    out << (args.json ? ex::to_json(d) + "\n" : ex::to_text(d));
    if (!args.graph.empty()) {
      out.flush();  // before a --graph of "-" writes to standard output
      std::string line = write_graph(
          args.graph, ex::worked_example_dot(ex::worked_example({.lr = args.lr, .seed = args.seed})),
          args.force);
      if (!args.json) out << line << "\n";
    }
    return d.agree ? 0 : 1;
  }

  if (args.conv) {
    BP_CHECK(args.repeated == 0 && args.graph.empty(), ConfigError,
             "--conv shows one convolution layer's step; it does not combine with ",
             args.repeated > 0 ? "--repeated" : "--graph");
    const ex::ConvExample c = ex::conv_example({.lr = args.lr, .seed = args.seed});
    const ex::Verification v = ex::verify(c);
    out << (args.json ? ex::to_json(c, v) + "\n" : ex::to_text(c, v));
    return v.agree() ? 0 : 1;
  }
  const ex::WorkedExample e = ex::worked_example({.sizes = {2, 3, 2}, .lr = args.lr, .seed = args.seed});
  const ex::Verification v = ex::verify(e);
  std::string graph_line;
  if (!args.graph.empty()) graph_line = write_graph(args.graph, ex::worked_example_dot(e), args.force);
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
