// The run folder of the library (backprop/io/run_folder.hpp): inputs are never overwritten, an earlier run is
// replaced only by a finished one, and what the user kept in the folder stays.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/error.hpp>
#include <backprop/io.hpp>
#include <backprop/io/run_folder.hpp>
#include <fstream>
#include <sstream>

#include "io/io_test_util.hpp"

namespace bp = backprop;
namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

namespace {

std::string read(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

void write(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

}  // namespace

TEST(RunFolderLib, AnInputInsideTheFolderIsRefusedNamingIt) {
  iotest::ScratchDir s;
  const fs::path run = s.path() / "run";
  write(run / "config.toml", "[train]\n");
  try {
    bp::io::check_run_folder(run.string(), {{"--config", (run / "config.toml").string()}}, "--out");
    FAIL() << "an input the run would overwrite was accepted";
  } catch (const bp::ConfigError& e) {
    EXPECT_THAT(e.what(),
                HasSubstr("--out " + run.string() + ": the run would overwrite its input --config"));
  }
  EXPECT_NO_THROW(bp::io::check_run_folder((s.path() / "other").string(), {{"--config", "x.toml"}}));
}

TEST(RunFolderLib, AFileWhereTheFolderShouldBeIsAFileError) {
  iotest::ScratchDir s;
  write(s.path() / "afile", "x");
  EXPECT_THROW(bp::io::check_run_folder((s.path() / "afile" / "sub").string(), {}), bp::FileError);
  EXPECT_THROW(bp::io::check_run_folder((s.path() / "afile").string(), {}), bp::FileError);
}

TEST(RunFolderLib, AStagedRunReplacesTheOldOneAndKeepsTheUsersFiles) {
  iotest::ScratchDir s;
  const fs::path run = s.path() / "run";
  write(run / "summary.json", "old");
  write(run / "checkpoints" / "epoch-0001.safetensors", "old checkpoint");
  write(run / "checkpoints" / "mine.txt", "kept checkpoint note");
  write(run / "notes.txt", "kept");
  EXPECT_THAT(bp::io::run_entries(run.string()), ElementsAre("summary.json", "checkpoints"));

  const std::string staging = bp::io::staging_dir(run.string());
  EXPECT_EQ(fs::path(staging).filename(), "run");  // the report keeps the folder's name as its title
  EXPECT_FALSE(fs::exists(staging));
  {
    bp::io::RunFolder folder(staging);
    folder.prepare_fresh();
    folder.write_summary("new");
  }
  EXPECT_EQ(read(run / "summary.json"), "old");  // untouched until the new run has finished
  EXPECT_EQ(bp::io::replace_run(staging, run.string()), "");
  EXPECT_EQ(read(run / "summary.json"), "new\n");
  EXPECT_EQ(read(run / "notes.txt"), "kept");
  EXPECT_EQ(read(run / "checkpoints" / "mine.txt"), "kept checkpoint note");
  EXPECT_FALSE(fs::exists(run / "checkpoints" / "epoch-0001.safetensors"));
  EXPECT_FALSE(fs::exists(fs::path(staging).parent_path()));
}

TEST(RunFolderLib, AResumeKeepsTheMetricsAndDropsTheOutcome) {
  iotest::ScratchDir s;
  const fs::path run = s.path() / "run";
  write(run / "model.safetensors", "m");
  write(run / "summary.json", "s");
  write(run / "model.safetensors.tmp-12-0", "cut short");
  write(run / "metrics.jsonl", "");
  bp::io::RunFolder folder(run.string());
  folder.prepare_resume(0, 0);
  EXPECT_FALSE(fs::exists(run / "model.safetensors"));
  EXPECT_FALSE(fs::exists(run / "summary.json"));
  EXPECT_FALSE(fs::exists(run / "model.safetensors.tmp-12-0"));
  EXPECT_TRUE(fs::exists(run / "metrics.jsonl"));
}

TEST(RunFolderLib, AReportThatCannotBeWrittenIsAReasonNotAnException) {
  iotest::ScratchDir s;
  const fs::path run = s.path() / "run";
  bp::io::RunFolder folder(run.string());
  write(run / "metrics.jsonl", "");
  fs::create_directories(run / "report.html");  // a folder where the report goes
  std::string why;
  EXPECT_NO_THROW(why = folder.try_report());
  EXPECT_THAT(why, HasSubstr("report.html"));
  EXPECT_THROW(folder.write_report(), bp::FileError);
  // With writes off (an MPI rank other than 0) nothing is created or written.
  bp::io::RunFolder silent((s.path() / "silent").string(), false);
  silent.write_summary("x");
  EXPECT_EQ(silent.try_report(), "");
  EXPECT_FALSE(fs::exists(s.path() / "silent"));
}

TEST(RunFolderLib, ANewRunDirIsATimeStampThatIsNotTaken) {
  iotest::ScratchDir dir;
  const std::string parent = dir.file("runs");
  const std::string first = bp::io::new_run_dir(parent);
  EXPECT_THAT(first, ::testing::MatchesRegex(parent + "/[0-9]{8}-[0-9]{6}"));
  EXPECT_FALSE(std::filesystem::exists(first));  // nothing is created
  std::filesystem::create_directories(first);
  // Within the same second the next one gets "-2"; a second later, a new stamp: never the taken one.
  const std::string second = bp::io::new_run_dir(parent);
  EXPECT_NE(second, first);
  EXPECT_THAT(second, ::testing::MatchesRegex(parent + "/[0-9]{8}-[0-9]{6}(-2)?"));
  EXPECT_FALSE(std::filesystem::exists(second));
}
