// What a first-time user meets: the version, `help`, the exit codes the help and the docs list, boolean flags
// given twice, and RMSprop's momentum default.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/config.hpp>
#include <backprop/version.hpp>
#include <filesystem>
#include <regex>
#include <set>

#include "cli_test_util.hpp"

using clitest::run;
using clitest::Scratch;
using ::testing::HasSubstr;
namespace bp = backprop;
namespace cfg = backprop::config;
namespace fs = std::filesystem;

namespace {

// The exit codes named in `text` from the first occurrence of `from` up to the next `until`: every number
// that stands alone (not part of a word such as SIGINT).
std::set<int> codes_between(const std::string& text, const std::string& from, const std::string& until) {
  const std::size_t begin = text.find(from);
  if (begin == std::string::npos) return {};
  const std::size_t end = text.find(until, begin + from.size());
  const std::string part = text.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
  std::set<int> codes;
  const std::regex number(R"((^|[\s|(,])(\d+)(?=[\s|,/]))");
  for (auto it = std::sregex_iterator(part.begin(), part.end(), number); it != std::sregex_iterator(); ++it)
    codes.insert(std::stoi((*it)[2].str()));
  return codes;
}

cfg::Config printed(const Scratch& s, const std::string& flags) {
  const auto r = run(s, "train " + flags + " --print-config");
  EXPECT_EQ(r.code, 0) << r.err;
  return cfg::parse_toml(r.out, "printed");
}

}  // namespace

TEST(Newcomer, VersionIsTheOneInCMakeLists) {
  const std::string cmake = clitest::slurp(std::string(BACKPROP_SOURCE_DIR) + "/CMakeLists.txt");
  std::smatch m;
  ASSERT_TRUE(
      std::regex_search(cmake, m, std::regex(R"(project\(backprop VERSION ([0-9]+\.[0-9]+\.[0-9]+))")));
  const std::string version = m[1].str();
  EXPECT_EQ(std::string(bp::version), version);
  EXPECT_EQ(std::to_string(bp::version_major) + "." + std::to_string(bp::version_minor) + "." +
                std::to_string(bp::version_patch),
            version);
  Scratch s;
  const auto r = run(s, "--version");
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, "backprop " + version + "\n");
}

TEST(Newcomer, HelpCommandPrintsTheSameAsHelpFlags) {
  Scratch s;
  const auto general = run(s, "help");
  EXPECT_EQ(general.code, 0) << general.err;
  EXPECT_EQ(general.out, run(s, "--help").out);
  EXPECT_THAT(general.out, HasSubstr("help"));
  for (const char* command : {"train", "eval", "predict", "info", "report", "explain"}) {
    const auto r = run(s, std::string("help ") + command);
    EXPECT_EQ(r.code, 0) << command << ": " << r.err;
    EXPECT_EQ(r.out, run(s, std::string(command) + " --help").out) << command;
  }
  EXPECT_THAT(run(s, "help train").out, HasSubstr("--optimizer"));
  const auto bad = run(s, "help trian");
  EXPECT_EQ(bad.code, 2);
  EXPECT_THAT(bad.err, HasSubstr("unknown command 'trian'; did you mean 'train'?"));
}

TEST(Newcomer, HelpReadmeAndCliDocListTheSameExitCodes) {
  const std::set<int> all = {0, 1, 2, 3, 4, 5, 130, 143};
  Scratch s;
  for (const char* args : {"--help", "train --help", "help eval"})
    EXPECT_EQ(codes_between(run(s, args).out, "Exit codes:", "Documentation:"), all) << args;
  const std::string readme = clitest::slurp(std::string(BACKPROP_SOURCE_DIR) + "/README.md");
  EXPECT_EQ(codes_between(readme, "Exit codes:", "\n\n"), all);
  // docs/cli.md: the first column of the table under "## Exit codes".
  const std::string doc = clitest::slurp(std::string(BACKPROP_SOURCE_DIR) + "/docs/cli.md");
  const std::size_t begin = doc.find("## Exit codes");
  ASSERT_NE(begin, std::string::npos);
  std::set<int> table;
  std::istringstream rows(doc.substr(begin, doc.find("\n\n", doc.find("| code", begin)) - begin));
  for (std::string row; std::getline(rows, row);) {
    std::smatch m;
    if (!std::regex_search(row, m, std::regex(R"(^\| (\d+)(?: / (\d+))? \|)"))) continue;
    table.insert(std::stoi(m[1].str()));
    if (m[2].matched) table.insert(std::stoi(m[2].str()));
  }
  EXPECT_EQ(table, all);
}

TEST(Newcomer, OfAFlagAndItsNegationTheLastWins) {
  Scratch s;
  EXPECT_FALSE(printed(s, "--standardize --no-standardize").data.standardize);
  EXPECT_TRUE(printed(s, "--no-standardize --standardize").data.standardize);
  EXPECT_TRUE(printed(s, "--no-batchnorm --batchnorm").model.batchnorm);
  EXPECT_FALSE(printed(s, "--batchnorm --no-batchnorm").model.batchnorm);
  EXPECT_FALSE(printed(s, "--batchnorm --no-batchnorm --batchnorm --no-batchnorm").model.batchnorm);
  EXPECT_TRUE(printed(s, "--no-detect-anomaly --detect-anomaly").run.detect_anomaly);
  // A flag overrides the file either way.
  clitest::write(s.path("run.toml"), "[data]\nstandardize = false\n");
  EXPECT_TRUE(
      printed(s, "--config " + s.path("run.toml") + " --no-standardize --standardize").data.standardize);
}

TEST(Newcomer, RmspropMomentumIsZeroUnlessGiven) {
  cfg::Config c;
  EXPECT_EQ(c.optimizer.momentum, 0.9);
  cfg::set(c, "optimizer.name", "rmsprop", "--optimizer");
  EXPECT_EQ(c.optimizer.momentum, 0.0);
  cfg::set(c, "optimizer.name", "nesterov", "--optimizer");  // back to a momentum optimiser
  EXPECT_EQ(c.optimizer.momentum, 0.9);

  cfg::Config given;
  cfg::set(given, "optimizer.momentum", "0.5", "--momentum");
  cfg::set(given, "optimizer.name", "rmsprop", "--optimizer");
  EXPECT_EQ(given.optimizer.momentum, 0.5);

  // In a file the order of the keys does not matter, and an explicit 0.9 is kept.
  EXPECT_EQ(cfg::parse_toml("[optimizer]\nname = \"rmsprop\"\n").optimizer.momentum, 0.0);
  EXPECT_EQ(cfg::parse_toml("[optimizer]\nname = \"rmsprop\"\nmomentum = 0.9\n").optimizer.momentum, 0.9);
  EXPECT_EQ(cfg::parse_toml("[optimizer]\nmomentum = 0.9\nname = \"rmsprop\"\n").optimizer.momentum, 0.9);
  EXPECT_EQ(cfg::parse_toml("[optimizer]\nname = \"momentum\"\n").optimizer.momentum, 0.9);

  // The effective configuration the command line trains with (and writes to config.toml).
  Scratch s;
  EXPECT_EQ(printed(s, "--optimizer rmsprop").optimizer.momentum, 0.0);
  EXPECT_EQ(printed(s, "--optimizer rmsprop --momentum 0.3").optimizer.momentum, 0.3);
  EXPECT_EQ(printed(s, "--momentum 0.3 --optimizer rmsprop").optimizer.momentum, 0.3);
  EXPECT_EQ(printed(s, "--optimizer momentum").optimizer.momentum, 0.9);
  clitest::write(s.path("run.toml"), "[optimizer]\nmomentum = 0.7\n");
  EXPECT_EQ(printed(s, "--config " + s.path("run.toml") + " --optimizer rmsprop").optimizer.momentum, 0.7);
  // The printed configuration reads back to the same training: its momentum is now given.
  const cfg::Config back = printed(s, "--optimizer rmsprop");
  EXPECT_EQ(cfg::parse_toml(cfg::to_toml(back)).optimizer.momentum, 0.0);
}

// The TOML a reader copies from the docs, and the fuzzer's seed, are configurations backprop accepts.
TEST(Newcomer, DocumentedConfigFilesParse) {
  const fs::path source = BACKPROP_SOURCE_DIR;
  int blocks = 0;
  for (const auto& entry : fs::directory_iterator(source / "docs")) {
    if (entry.path().extension() != ".md") continue;
    const std::string text = clitest::slurp(entry.path().string());
    for (std::size_t at = text.find("```toml\n"); at != std::string::npos; at = text.find("```toml\n", at)) {
      at += 8;
      const std::string block = text.substr(at, text.find("```", at) - at);
      EXPECT_NO_THROW(cfg::validate(cfg::parse_toml(block, entry.path().filename().string())))
          << entry.path() << ":\n"
          << block;
      ++blocks;
    }
  }
  EXPECT_GE(blocks, 1);
  for (const auto& entry : fs::directory_iterator(source / "fuzz" / "corpus" / "config")) {
    EXPECT_NO_THROW(cfg::validate(cfg::load_toml(entry.path().string()))) << entry.path();
    ++blocks;
  }
  EXPECT_GE(blocks, 2);
}
