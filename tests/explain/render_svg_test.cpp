// render_svg, dot_installed and svg_path (backprop/graphviz.hpp), with stand-in `dot` programs on PATH.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <backprop/graphviz.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace bp = backprop;
namespace fs = std::filesystem;

namespace {

// A folder holding an executable `dot` with the given shell script, put alone on PATH while alive.
class FakeDot {
 public:
  explicit FakeDot(const std::string& script) {
    dir_ = fs::temp_directory_path() / ("backprop_dot_" + std::to_string(::getpid()));
    fs::create_directories(dir_);
    if (!script.empty()) {
      std::ofstream(dir_ / "dot") << "#!/bin/sh\n" << script << "\n";
      fs::permissions(dir_ / "dot", fs::perms::owner_all);
    }
    const char* path = std::getenv("PATH");
    old_ = path ? path : "";
    ::setenv("PATH", dir_.c_str(), 1);
  }
  ~FakeDot() {
    ::setenv("PATH", old_.c_str(), 1);
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

 private:
  fs::path dir_;
  std::string old_;
};

}  // namespace

TEST(RenderSvg, PassesTheDotTextThroughTheProgram) {
  const FakeDot dot("echo '<svg>'; /bin/cat; echo '</svg>'");
  EXPECT_TRUE(bp::dot_installed());
  EXPECT_EQ(bp::render_svg("digraph { a -> b }\n"), "<svg>\ndigraph { a -> b }\n</svg>\n");
}

TEST(RenderSvg, EmptyWhenDotFailsOrIsMissing) {
  {
    const FakeDot failing("echo partial; exit 1");
    EXPECT_TRUE(bp::dot_installed());
    EXPECT_EQ(bp::render_svg("digraph {}"), "");
  }
  const FakeDot missing("");
  EXPECT_FALSE(bp::dot_installed());
  EXPECT_EQ(bp::render_svg("digraph {}"), "");
}

TEST(SvgPath, ReplacesDotOrAppends) {
  EXPECT_EQ(bp::svg_path("graph.dot"), "graph.svg");
  EXPECT_EQ(bp::svg_path("out/step.dot"), "out/step.svg");
  EXPECT_EQ(bp::svg_path("graph"), "graph.svg");
  EXPECT_EQ(bp::svg_path(".dot"), ".dot.svg");
  EXPECT_EQ(bp::svg_path("graph.gv"), "graph.gv.svg");
}
