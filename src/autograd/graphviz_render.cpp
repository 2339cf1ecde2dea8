// Rendering DOT text with Graphviz's `dot` program (graphviz.hpp).
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <backprop/graphviz.hpp>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace backprop {

bool dot_installed() {
  const char* path = std::getenv("PATH");
  std::stringstream dirs(path ? path : "/usr/bin:/bin");
  for (std::string dir; std::getline(dirs, dir, ':');)
    if (!dir.empty() && ::access((dir + "/dot").c_str(), X_OK) == 0) return true;
  return false;
}

// Through temporary files rather than pipes, so that a large graph cannot deadlock the two processes.
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

std::string svg_path(const std::string& dot_path) {
  const std::string ext = ".dot";
  if (dot_path.size() > ext.size() && dot_path.compare(dot_path.size() - ext.size(), ext.size(), ext) == 0)
    return dot_path.substr(0, dot_path.size() - ext.size()) + ".svg";
  return dot_path + ".svg";
}

}  // namespace backprop
