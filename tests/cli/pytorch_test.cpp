// A model file written by `backprop train` loads in PyTorch (torch_predict.py) and predicts the same.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli_test_util.hpp"
#include "util/require.hpp"

using clitest::run;
using clitest::Scratch;

namespace {

bool have_torch() {
  return std::system("/usr/bin/python3 -c 'import torch, numpy' >/dev/null 2>&1") == 0;
}

std::vector<nlohmann::json> json_lines(const std::string& text) {
  std::vector<nlohmann::json> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);)
    if (!l.empty()) out.push_back(nlohmann::json::parse(l));
  return out;
}

}  // namespace

TEST(PyTorch, ModelFileLoadsAndPredictsTheSame) {
  REQUIRE_INSTALLED(have_torch(), "python3-torch python3-numpy", "/usr/bin/python3 with torch and numpy");
  Scratch s;
  clitest::write(s.path("train.csv"), clitest::blobs_csv(4, 30));
  clitest::write(s.path("x.csv"), clitest::blobs_csv(5, 5, false));
  const std::string out = s.path("run");
  // Batch norm (running statistics as buffers) and dropout (identity in eval mode) exercise the module names.
  const auto r =
      run(s, "train --quiet --data " + s.path("train.csv") +
                 " --layers 8,6 --batchnorm --dropout 0.1 --activation tanh --epochs 5 --batch-size 9"
                 " --out " +
                 out);
  ASSERT_EQ(r.code, 0) << r.err;
  const auto ours = run(s, "predict --json --model " + out + "/model.safetensors --input " + s.path("x.csv"));
  ASSERT_EQ(ours.code, 0) << ours.err;

  const std::string script = std::string(BACKPROP_SOURCE_DIR) + "/tests/cli/torch_predict.py";
  const std::string cmd = "/usr/bin/python3 " + clitest::quote(script) + " " +
                          clitest::quote(out + "/model.safetensors") + " " + clitest::quote(s.path("x.csv")) +
                          " >" + clitest::quote(s.path("torch.out")) + " 2>" +
                          clitest::quote(s.path("torch.err"));
  ASSERT_EQ(std::system(cmd.c_str()), 0) << clitest::slurp(s.path("torch.err"));

  const auto a = json_lines(ours.out);
  const auto b = json_lines(clitest::slurp(s.path("torch.out")));
  ASSERT_EQ(a.size(), 15u);
  ASSERT_EQ(b.size(), a.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i]["class"], b[i]["class"]) << "row " << i;
    EXPECT_NEAR(a[i]["probability"].get<double>(), b[i]["probability"].get<double>(), 2e-5) << "row " << i;
  }
}
