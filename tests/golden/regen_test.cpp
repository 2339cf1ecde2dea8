// The committed golden values are what make_golden.py computes: regenerated with PyTorch into a scratch file,
// they match ops_golden.json in structure exactly (keys, lengths, shapes, op names, arguments) and in every
// number to 1e-9 (relative, at least 1e-12 absolute; both are float64 computations). The PyTorch version
// string may differ.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "util/require.hpp"

using json = nlohmann::json;
namespace fs = std::filesystem;

namespace {

const std::string kPython = "/usr/bin/python3";
const std::string kDir = std::string(BACKPROP_SOURCE_DIR) + "/tests/golden";

bool python_with_torch() {
  return fs::exists(kPython) &&
         std::system((kPython + " -c 'import torch, numpy' >/dev/null 2>&1").c_str()) == 0;
}

json load(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  return json::parse(in);
}

// Appends to `diffs` (up to 20) where `a` (committed) and `b` (regenerated) differ, naming the JSON path.
void compare(const json& a, const json& b, const std::string& at, std::vector<std::string>& diffs,
             std::size_t& numbers) {
  if (diffs.size() >= 20) return;
  if (a.is_number() && b.is_number()) {
    ++numbers;
    const double x = a.get<double>(), y = b.get<double>();
    if (!(std::abs(x - y) <= std::max(1e-12, 1e-9 * std::max(std::abs(x), std::abs(y)))))
      diffs.push_back(at + ": " + a.dump() + " vs " + b.dump());
    return;
  }
  if (a.type() != b.type()) {
    diffs.push_back(at + ": a " + a.type_name() + " vs a " + b.type_name());
    return;
  }
  if (a.is_object()) {
    for (const auto& [key, value] : a.items())
      if (!b.contains(key)) diffs.push_back(at + "." + key + ": missing from the regenerated file");
    for (const auto& [key, value] : b.items()) {
      if (!a.contains(key))
        diffs.push_back(at + "." + key + ": not in the committed file");
      else if (!(at.empty() && key == "torch_version"))
        compare(a.at(key), value, at + "." + key, diffs, numbers);
    }
  } else if (a.is_array()) {
    if (a.size() != b.size()) {
      diffs.push_back(at + ": " + std::to_string(a.size()) + " vs " + std::to_string(b.size()) + " elements");
      return;
    }
    for (std::size_t i = 0; i < a.size(); ++i)
      compare(a[i], b[i], at + "[" + std::to_string(i) + "]", diffs, numbers);
  } else if (a != b) {
    diffs.push_back(at + ": " + a.dump() + " vs " + b.dump());
  }
}

}  // namespace

TEST(GoldenFile, RegeneratedByPyTorchMatchesTheCommittedFile) {
  REQUIRE_INSTALLED(python_with_torch(), "python3-torch python3-numpy", kPython + " with torch and numpy");
  const fs::path out =
      fs::temp_directory_path() / ("backprop_golden_" + std::to_string(::getpid()) + ".json");
  const std::string cmd = kPython + " '" + kDir + "/make_golden.py' '" + out.string() + "' >/dev/null";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
  const json committed = load(kDir + "/ops_golden.json");
  const json fresh = load(out.string());
  fs::remove(out);
  std::vector<std::string> diffs;
  std::size_t numbers = 0;
  compare(committed, fresh, "", diffs, numbers);
  for (const std::string& d : diffs) ADD_FAILURE() << d;
  EXPECT_GT(numbers, 1000u);  // the comparison did walk the values
  std::printf("[ golden ] %zu numbers compared, PyTorch %s (committed: %s)\n", numbers,
              fresh.value("torch_version", "?").c_str(), committed.value("torch_version", "?").c_str());
}
