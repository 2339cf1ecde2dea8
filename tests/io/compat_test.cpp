// Compatibility with the rest of the ecosystem: a file written by backprop, read by a hand-written Python
// reader into PyTorch tensors; and a file written by a Python script (committed, so this half runs without
// Python) loaded by backprop. Both sides compare every element bit for bit.
#include <gtest/gtest.h>

#include <backprop/backprop.hpp>
#include <backprop/io.hpp>
#include <bit>
#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "io/io_test_util.hpp"
#include "util/require.hpp"

namespace bp = backprop;

namespace {

const std::string kPython = "/usr/bin/python3";
const std::string kTestDir = std::string(BACKPROP_SOURCE_DIR) + "/tests/io";

bool python_with_torch() {
  static const bool ok = iotest::fs::exists(kPython) &&
                         std::system((kPython + " -c 'import torch' >/dev/null 2>&1").c_str()) == 0;
  return ok;
}

// Runs a shell command; returns its exit status and standard output.
std::pair<int, std::string> run(const std::string& command) {
  std::string out;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (pipe == nullptr) return {-1, out};
  char buffer[4096];
  while (const std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
  return {::pclose(pipe), out};
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> parts;
  std::string part;
  std::istringstream in(s);
  while (std::getline(in, part, sep)) parts.push_back(part);
  if (!s.empty() && s.back() == sep) parts.emplace_back();
  return parts;
}

std::uint64_t bits(double x) {
  return std::bit_cast<std::uint64_t>(x);
}

}  // namespace

TEST(Compat, FileWrittenByBackpropReadsInPythonByHand) {
  REQUIRE_INSTALLED(python_with_torch(), "python3-torch", kPython + " with torch");
  iotest::ScratchDir dir;
  bp::Generator gen(11);
  const bp::io::NamedTensors saved{.tensors = {{"fc.weight", bp::randn({4, 3}, gen)},
                                               {"fc.bias", bp::randn({3}, gen, bp::f64)},
                                               {"step", bp::scalar(17.0, bp::f64)},
                                               {"unused", bp::zeros({2, 0})}},
                                   .metadata = {{"epoch", "4"}, {"optimizer", "sgd"}}};
  const std::string path = dir.file("model.safetensors");
  bp::io::save_safetensors(path, saved);

  const auto [status, out] = run(kPython + " " + kTestDir + "/read_safetensors.py '" + path + "'");
  ASSERT_EQ(status, 0) << "the Python reader rejected the file; it printed:\n" << out;
  std::size_t tensor = 0;
  std::map<std::string, std::string> metadata;
  bool checksum_ok = false;
  for (const std::string& line : split(out, '\n')) {
    if (line.empty()) continue;
    const std::vector<std::string> f = split(line, '\t');
    if (f[0] == "tensor") {
      ASSERT_EQ(f.size(), 5u) << line;
      ASSERT_LT(tensor, saved.tensors.size());
      const auto& [name, t] = saved.tensors[tensor++];
      EXPECT_EQ(f[1], name);
      EXPECT_EQ(f[2], t.dtype() == bp::f32 ? "F32" : "F64");
      bp::Shape shape;
      for (const std::string& d : split(f[3], ',')) shape.push_back(std::stoll(d));
      EXPECT_EQ(shape, t.shape()) << name;
      const std::vector<std::string> values = f[4].empty() ? std::vector<std::string>{} : split(f[4], ' ');
      ASSERT_EQ(static_cast<std::int64_t>(values.size()), t.numel()) << name;
      for (std::size_t i = 0; i < values.size(); ++i)
        EXPECT_EQ(bits(std::strtod(values[i].c_str(), nullptr)), bits(t.flat(static_cast<std::int64_t>(i))))
            << name << " element " << i << ": Python read " << values[i];
    } else if (f[0] == "meta") {
      ASSERT_EQ(f.size(), 3u) << line;
      metadata[f[1]] = f[2];
    } else {
      checksum_ok = checksum_ok || line == "checksum ok";
    }
  }
  EXPECT_EQ(tensor, saved.tensors.size());
  EXPECT_EQ(metadata, saved.metadata);
  EXPECT_TRUE(checksum_ok) << "Python did not confirm backprop's checksum:\n" << out;
}

TEST(Compat, ReferenceFileWrittenByPythonLoads) {
  const auto loaded = bp::io::load_safetensors(kTestDir + "/data/reference.safetensors");
  // File order: the Python writer sorts by element size, then by name.
  std::vector<std::string> names;
  for (const auto& [name, t] : loaded.tensors) names.push_back(name);
  EXPECT_EQ(names,
            (std::vector<std::string>{"head.bias", "mask", "embedding.weight", "special", "temperature"}));
  EXPECT_EQ(loaded.metadata,
            (std::map<std::string, std::string>{{"format", "pt"}, {"source", "tests/io/make_reference.py"}}));

  // The same formulas as make_reference.py, each correctly rounded, so equality is exact.
  const bp::Tensor& w = loaded.at("embedding.weight");
  ASSERT_EQ(w.shape(), (bp::Shape{3, 4}));
  ASSERT_EQ(w.dtype(), bp::f32);
  for (int i = 0; i < 12; ++i) EXPECT_EQ(w.data<float>()[i], static_cast<float>(i) / 3.0f - 1.5f) << i;
  const bp::Tensor& b = loaded.at("head.bias");
  ASSERT_EQ(b.shape(), (bp::Shape{5}));
  ASSERT_EQ(b.dtype(), bp::f64);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(b.data<double>()[i], (i - 2) / 7.0) << i;
  const bp::Tensor& temperature = loaded.at("temperature");
  EXPECT_EQ(temperature.dim(), 0);
  EXPECT_EQ(temperature.item(), 0.125);
  const bp::Tensor& special = loaded.at("special");
  const float expected[] = {-0.0f, static_cast<float>(1e-40), static_cast<float>(3.4e38),
                            static_cast<float>(-1e-7)};
  ASSERT_EQ(special.numel(), 4);
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(std::bit_cast<std::uint32_t>(special.data<float>()[i]),
              std::bit_cast<std::uint32_t>(expected[i]))
        << i;
  EXPECT_EQ(loaded.at("mask").shape(), (bp::Shape{0, 3}));
  EXPECT_EQ(loaded.at("mask").dtype(), bp::f64);
}

TEST(Compat, ReferenceFileIsWhatTheScriptWrites) {
  REQUIRE_INSTALLED(python_with_torch(), "python3-torch", kPython + " with torch");
  iotest::ScratchDir dir;
  const std::string path = dir.file("reference.safetensors");
  const auto [status, out] = run(kPython + " " + kTestDir + "/make_reference.py '" + path + "' 2>&1");
  ASSERT_EQ(status, 0) << out;
  EXPECT_EQ(iotest::read_bytes(path), iotest::read_bytes(kTestDir + "/data/reference.safetensors"))
      << "tests/io/make_reference.py no longer produces the committed file; rerun it and commit the result";
}
