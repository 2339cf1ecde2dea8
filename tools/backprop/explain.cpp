// `backprop explain`: checks the flags, prints the library's text or JSON (backprop/explain.hpp) and writes the
// graph files (backprop/graphviz.hpp renders the SVG).
#include <backprop/config.hpp>
#include <backprop/error.hpp>
#include <backprop/explain.hpp>
#include <backprop/graphviz.hpp>
#include <backprop/io.hpp>
#include <iostream>
#include <string>

#include "cli.hpp"
#include "outputs.hpp"

namespace cli {

namespace {

namespace bp = backprop;
namespace ex = backprop::explain;

// Writes the DOT text (and its SVG rendering beside it, unless --graph is a stream); returns a line saying
// what was written (for the text output). Both outputs are checked before either is written.
std::string write_graph(const std::string& path, const std::string& dot, bool force) {
  check_output("--graph", path, bp::io::FileKind::dot, "Graphviz DOT text", force);
  const bool stream = bp::io::is_stream(path);
  const bool render = !stream && bp::dot_installed();
  const std::string svg = bp::svg_path(path);
  if (render) check_output("--graph", svg, bp::io::FileKind::text, "an SVG image (text)", force);
  bp::io::write_file_atomic(path, dot, {.force = force});
  std::string line = "Graph: wrote " + path + " (forward graph and the backward graph create_graph records)";
  if (stream) return line;
  if (!render) return line + "; install Graphviz to render it: dot -Tsvg " + path + " -o graph.svg";
  const std::string image = bp::render_svg(dot);
  if (image.empty()) return line + "; `dot` failed to render it to " + svg;
  bp::io::write_file_atomic(svg, image, {.force = force});
  return line + " and " + svg;
}

int run(const ExplainArgs& args, std::ostream& out) {
  // The ranges of the command flag table, also for a caller that fills ExplainArgs itself.
  bp::config::check_flag("explain", "--repeated", args.repeated);
  bp::config::check_flag("explain", "--lr", args.lr);
  bp::config::check_flag("explain", "--seed", static_cast<double>(args.seed));

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
  } catch (const bp::Error& e) {
    std::cerr << "backprop: error: " << e.what() << "\n";
    if (dynamic_cast<const bp::ConfigError*>(&e) || dynamic_cast<const bp::ValueError*>(&e)) return kUsage;
    return dynamic_cast<const bp::FileError*>(&e) ? kData : kInternal;
  }
}

}  // namespace cli
