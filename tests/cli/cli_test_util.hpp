// Helpers for the tests of the `backprop` tool: a scratch directory, running the binary, small CSV files.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <backprop/generator.hpp>
#include <backprop/io.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace clitest {

namespace fs = std::filesystem;

#ifdef BACKPROP_CLI_PATH
inline const std::string kCli = BACKPROP_CLI_PATH;
#else
inline const std::string kCli = std::string(BACKPROP_BINARY_DIR) + "/tools/backprop/backprop";
#endif

inline constexpr const char* kFashionDir = "/usr/share/datasets/fashion-mnist";

inline bool have_fashion() {
  return fs::exists(fs::path(kFashionDir) / "train-images-idx3-ubyte.gz");
}

/// A fresh directory for one test, removed afterwards.
class Scratch {
 public:
  Scratch() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("backprop_cli_" + std::to_string(::getpid()) + "_" +
            (info ? std::string(info->test_suite_name()) + "." + info->name() : "x"));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  ~Scratch() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }
  Scratch(const Scratch&) = delete;
  Scratch& operator=(const Scratch&) = delete;
  std::string path(const std::string& name) const { return (dir_ / name).string(); }
  const fs::path& dir() const { return dir_; }

 private:
  fs::path dir_;
};

inline std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void write(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  out << text;
}

struct Result {
  int code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
  std::string all() const { return out + err; }
};

inline std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

/// Runs the shell text `command` with stdout and stderr captured in files next to `scratch`.
inline Result run_shell(const Scratch& scratch, const std::string& command) {
  static int counter = 0;
  const std::string out = scratch.path("stdout." + std::to_string(counter));
  const std::string err = scratch.path("stderr." + std::to_string(counter++));
  const std::string cmd = "{ " + command + "; } >" + quote(out) + " 2>" + quote(err) + " </dev/null";
  const int status = std::system(cmd.c_str());
  Result r;
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

/// Runs `backprop ARGS` (ARGS is shell text) with stdout and stderr captured in files next to `scratch`.
inline Result run(const Scratch& scratch, const std::string& args) {
  return run_shell(scratch, quote(kCli) + " " + args);
}

/// Starts `backprop ARGS...` without waiting, stdout and stderr into the files `out` and `err`, with the
/// variables of `env` ("NAME=value") added to this process's environment. Returns the pid (-1 on failure).
inline pid_t spawn(const std::vector<std::string>& args, const std::string& out, const std::string& err,
                   const std::vector<std::string>& env = {}) {
  std::vector<std::string> all = {kCli};
  all.insert(all.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : all) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> vars = env;
  for (char** e = ::environ; *e != nullptr; ++e) vars.emplace_back(*e);
  std::vector<char*> envp;
  for (std::string& v : vars) envp.push_back(v.data());
  envp.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
}

#ifdef BACKPROP_SLOW_SAVE_SHIM
/// Environment for spawn() that preloads tests/cli/shim/slow_save.cpp into `backprop` with `settings` (such
/// as "SLOW_SAVE_MS=15"). Under AddressSanitizer a preloaded library comes before the sanitizer's runtime,
/// which it then accepts with verify_asan_link_order=0.
inline std::vector<std::string> save_shim_env(std::vector<std::string> settings) {
  settings.push_back(std::string("LD_PRELOAD=") + BACKPROP_SLOW_SAVE_SHIM);
  const char* asan = std::getenv("ASAN_OPTIONS");
  settings.push_back(std::string("ASAN_OPTIONS=") +
                     (asan != nullptr && *asan ? std::string(asan) + ":" : "") + "verify_asan_link_order=0");
  return settings;
}
#endif

/// Whitespace-separated words of `s` (for spawn's argument list).
inline std::vector<std::string> words(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

/// Three well-separated classes with string labels and features on very different scales (so a model that
/// forgot its standardisation would fail): header "sepal,petal,weight,height,species".
inline std::string blobs_csv(std::uint64_t seed, int rows_per_class, bool with_label = true) {
  backprop::Generator gen(seed);
  const char* names[] = {"setosa", "versicolor", "virginica"};
  std::string s = with_label ? "sepal,petal,weight,height,species\n" : "sepal,petal,weight,height\n";
  for (int i = 0; i < rows_per_class * 3; ++i) {
    const int c = i % 3;
    char row[200];
    std::snprintf(row, sizeof row, "%.4f,%.4f,%.2f,%.6f", c + 0.3 * gen.normal(),
                  2.0 * c + 0.5 * gen.normal(), 5000 + 1000 * c + 200 * gen.normal(),
                  0.001 * c + 0.0003 * gen.normal());
    s += row;
    if (with_label) s += std::string(",") + names[c];
    s += "\n";
  }
  return s;
}

/// y = 2 x1 - 3 x2 + 0.5 + small noise, header "x1,x2,y".
inline std::string linear_csv(std::uint64_t seed, int rows) {
  backprop::Generator gen(seed);
  std::string s = "x1,x2,y\n";
  for (int i = 0; i < rows; ++i) {
    const double a = gen.uniform(-1, 1), b = gen.uniform(-1, 1);
    char row[120];
    std::snprintf(row, sizeof row, "%.5f,%.5f,%.5f\n", a, b, 2 * a - 3 * b + 0.5 + 0.01 * gen.normal());
    s += row;
  }
  return s;
}

/// True when two safetensors files hold the same tensor names with identical bytes.
inline ::testing::AssertionResult same_tensors(const std::string& a, const std::string& b) {
  const backprop::io::NamedTensors x = backprop::io::load_safetensors(a);
  const backprop::io::NamedTensors y = backprop::io::load_safetensors(b);
  if (x.tensors.size() != y.tensors.size())
    return ::testing::AssertionFailure() << x.tensors.size() << " vs " << y.tensors.size() << " tensors";
  for (const auto& [name, t] : x.tensors) {
    if (!y.contains(name)) return ::testing::AssertionFailure() << b << " lacks " << name;
    const backprop::Tensor& u = y.at(name);
    if (u.shape() != t.shape() || u.dtype() != t.dtype() ||
        std::memcmp(u.raw_data(), t.raw_data(), t.nbytes()) != 0)
      return ::testing::AssertionFailure() << "tensor " << name << " differs";
  }
  return ::testing::AssertionSuccess();
}

}  // namespace clitest
