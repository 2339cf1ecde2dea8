// train::run (backprop/train/run.hpp) over dist::Collective on two ranks: rank 0 alone writes the run folder,
// a stop request of one rank stops both and each returns only once rank 0's checkpoint and summary are
// written, the resumed run finishes; synchronised batch norm needs RunOptions::sync_batchnorm.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <backprop/backprop.hpp>
#include <backprop/dist.hpp>
#include <backprop/train/run.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace bp = backprop;
namespace dist = backprop::dist;
namespace fs = std::filesystem;
using ::testing::HasSubstr;

namespace {

// A folder every rank names alike (after rank 0's process id), emptied now and removed at the end.
class SharedDir {
 public:
  SharedDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    const auto pid = static_cast<long long>(dist::all_reduce_max(dist::is_root() ? ::getpid() : 0));
    dir_ = fs::temp_directory_path() / ("backprop_dist_run_" + std::to_string(pid) + "_" + info->name());
    if (dist::is_root()) {
      fs::remove_all(dir_);
      fs::create_directories(dir_);
      write_table();
    }
    dist::barrier();
  }
  ~SharedDir() {
    dist::barrier();
    std::error_code ec;
    if (dist::is_root()) fs::remove_all(dir_, ec);
  }
  SharedDir(const SharedDir&) = delete;
  SharedDir& operator=(const SharedDir&) = delete;
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

 private:
  // 150 rows of three separated classes: "a,b,y".
  void write_table() const {
    bp::Generator gen(3);
    std::ofstream out(dir_ / "table.csv");
    out << "a,b,y\n";
    for (int i = 0; i < 150; ++i) {
      const int c = i % 3;
      out << c + 0.3 * gen.normal() << "," << 2.0 * c + 0.3 * gen.normal() << ",k" << c << "\n";
    }
  }
  fs::path dir_;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<bp::train::Override> small_run(const SharedDir& dir) {
  return {{"data.source", dir.path("table.csv"), "--data"},
          {"data.target", "y", "--target"},
          {"model.layers", "8", "--layers"},
          {"train.epochs", "3", "--epochs"}};
}

}  // namespace

TEST(DistRun, AStopOnOneRankStopsBothAfterRankZeroSavedAndTheRunResumes) {
  SharedDir dir;
  const std::string out = dir.path("run");
  std::atomic<bool> stop{!dist::is_root()};  // rank 1 asks; the Trainer makes every rank stop
  const bp::train::RunResult r = bp::train::run(bp::train::run_config({.overrides = small_run(dir)}),
                                                {.out = out,
                                                 .log = nullptr,
                                                 .notices = nullptr,
                                                 .stop = &stop,
                                                 .collective = std::make_shared<dist::Collective>()});
  EXPECT_EQ(r.end, bp::train::RunEnd::interrupted);
  EXPECT_EQ(r.signal, 0);
  EXPECT_EQ(r.history.total_updates, 1);
  // Every rank, rank 1 too, returns only once rank 0 has written the checkpoint and the summary.
  EXPECT_TRUE(fs::exists(out + "/checkpoints/epoch-0000-step-00000001.safetensors"));
  EXPECT_THAT(slurp(out + "/summary.json"), HasSubstr("\"status\": \"interrupted\""));
  EXPECT_EQ(r.checkpoint,
            dist::is_root() ? out + "/checkpoints/epoch-0000-step-00000001.safetensors" : "");  // rank 0's
  dist::barrier();

  const bp::train::RunResult resumed = bp::train::run(
      bp::train::run_config({.resume = out}),
      {.log = nullptr, .notices = nullptr, .collective = std::make_shared<dist::Collective>()});
  EXPECT_EQ(resumed.end, bp::train::RunEnd::finished);
  EXPECT_EQ(resumed.history.epochs_done, 3);
  dist::barrier();
  EXPECT_TRUE(fs::exists(out + "/model.safetensors"));
  EXPECT_EQ(dist::is_root(), !resumed.summary_text.empty());  // rank 0 alone has the summary
}

TEST(DistRun, SyncBatchNormOverRanksNeedsItsConversion) {
  SharedDir dir;
  std::vector<bp::train::Override> settings = small_run(dir);
  settings.insert(settings.end(), {{"model.batchnorm", "true", "--batchnorm"},
                                   {"model.sync_batchnorm", "true", "--sync-batchnorm"}});
  try {
    bp::train::run(
        bp::train::run_config({.overrides = settings}),
        {.out = dir.path("run"), .log = nullptr, .collective = std::make_shared<dist::Collective>()});
    FAIL() << "ran without RunOptions::sync_batchnorm";
  } catch (const bp::ValueError& e) {
    EXPECT_THAT(e.what(), HasSubstr("needs RunOptions::sync_batchnorm"));
  }
  const bp::train::RunResult r = bp::train::run(
      bp::train::run_config({.overrides = settings}),
      {.out = dir.path("run"),
       .log = nullptr,
       .collective = std::make_shared<dist::Collective>(),
       .sync_batchnorm = [](const bp::nn::Sequential& net) { return dist::convert_sync_batchnorm(net); }});
  EXPECT_EQ(r.end, bp::train::RunEnd::finished);
}
