// Runs tests/nn/torch_layers.py (PyTorch's side of a computation) and the shared deterministic fill.
#pragma once
#include <unistd.h>

#include <backprop/backprop.hpp>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace torchcmp {

inline bool have_torch() {
  return std::system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") == 0;
}

/// Value k is scale * sin(0.37 (k + 1) + seed), as filled() in torch_layers.py.
inline backprop::Tensor filled(const backprop::Shape& shape, double seed, double scale = 1.0) {
  std::int64_t n = 1;
  for (auto d : shape) n *= d;
  std::vector<double> v(static_cast<std::size_t>(n));
  for (std::int64_t k = 0; k < n; ++k)
    v[static_cast<std::size_t>(k)] = scale * std::sin(0.37 * double(k + 1) + seed);
  return backprop::from_vector(v, shape, backprop::f64);
}

/// The output of tests/nn/`script` for `mode`: name -> values. Empty (and `err` set) when the script failed.
inline std::map<std::string, std::vector<double>> run_torch(const std::string& mode, std::string& err,
                                                            const std::string& script = "torch_layers.py") {
  const auto out = std::filesystem::temp_directory_path() /
                   ("bp_torch_layers_" + mode + "_" + std::to_string(::getpid()) + ".txt");
  const std::string cmd = "/usr/bin/python3 " + std::string(BACKPROP_SOURCE_DIR) + "/tests/nn/" + script +
                          " " + mode + " >" + out.string() + " 2>&1";
  std::map<std::string, std::vector<double>> result;
  const int rc = std::system(cmd.c_str());
  std::ifstream in(out);
  std::stringstream all;
  all << in.rdbuf();
  std::filesystem::remove(out);
  if (rc != 0) {
    err = all.str();
    return result;
  }
  for (std::string line; std::getline(all, line);) {
    std::istringstream ls(line);
    std::string name;
    ls >> name;
    for (double v; ls >> v;) result[name].push_back(v);
  }
  return result;
}

}  // namespace torchcmp
