// What the tool writes and reads when a path is not a plain file: an output flag follows a symbolic link to
// its target (and keeps the link), writes a FIFO, a device or "-" as a stream, refuses a directory, and does
// not replace a file of another kind without --force; every input flag reports a FIFO instead of waiting on
// it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include <chrono>
#include <thread>

#include "cli_test_util.hpp"
#include "util/special_files.hpp"

namespace fs = std::filesystem;
using clitest::run;
using clitest::Scratch;
using ::testing::HasSubstr;

namespace {

using testutil::FifoReader;
using testutil::kind_of;
using testutil::make_fifo;
using testutil::null_device;

struct Watched {
  clitest::Result result;
  bool hung = false;  // killed after the limit
};

// Runs `backprop ARGS` and kills it should it still run after a generous limit (a reader blocked on a
// FIFO), so a regression fails the test instead of hanging the suite.
Watched run_watched(const Scratch& s, const std::vector<std::string>& args) {
  static int counter = 0;
  const std::string out = s.path("watched.out." + std::to_string(counter));
  const std::string err = s.path("watched.err." + std::to_string(counter++));
  Watched w;
  const pid_t pid = clitest::spawn(args, out, err);
  EXPECT_GT(pid, 0);
  if (pid <= 0) return w;
  int status = 0;
  const auto limit = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  while (::waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > limit) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      w.hung = true;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  w.result.code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  w.result.out = clitest::slurp(out);
  w.result.err = clitest::slurp(err);
  return w;
}

// A small trained model and a CSV of inputs, made once for the suite.
class Outputs : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new Scratch();
    clitest::write(path("train.csv"), clitest::blobs_csv(3, 10));
    clitest::write(path("input.csv"), clitest::blobs_csv(4, 2, false));
    const auto r =
        run(*dir_, "train --quiet --data " + path("train.csv") +
                       " --target species --layers 8 --epochs 1 --val-split 0 --out " + path("run"));
    ASSERT_EQ(r.code, 0) << r.err;
    const auto p = run(*dir_, "predict --model " + model() + " --input " + path("input.csv"));
    ASSERT_EQ(p.code, 0) << p.err;
    predictions_ = new std::string(p.out);
  }
  static void TearDownTestSuite() {
    delete dir_;
    delete predictions_;
  }
  static std::string path(const std::string& name) { return dir_->path(name); }
  static std::string model() { return path("run/model.safetensors"); }
  static std::string predict_to(const std::string& output) {
    return "predict --model " + model() + " --input " + path("input.csv") + " --output " +
           clitest::quote(output);
  }
  static const std::string& predictions() { return *predictions_; }

  static inline Scratch* dir_ = nullptr;
  static inline std::string* predictions_ = nullptr;
};

}  // namespace

TEST_F(Outputs, PredictOutputFollowsALinkAndKeepsIt) {
  Scratch s;
  fs::create_directories(s.dir() / "real");
  clitest::write(s.path("real/old.tsv"), "old predictions\n");
  fs::create_symlink("real/old.tsv", s.dir() / "link.tsv");
  const auto r = run(s, predict_to(s.path("link.tsv")));
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(kind_of(s.path("link.tsv")), S_IFLNK);
  EXPECT_EQ(clitest::slurp(s.path("real/old.tsv")), predictions());
  // A dangling link: its target is created.
  fs::create_symlink("real/new.tsv", s.dir() / "dangling.tsv");
  ASSERT_EQ(run(s, predict_to(s.path("dangling.tsv"))).code, 0);
  EXPECT_EQ(kind_of(s.path("dangling.tsv")), S_IFLNK);
  EXPECT_EQ(clitest::slurp(s.path("real/new.tsv")), predictions());
}

TEST_F(Outputs, PredictOutputWritesAFifoADeviceOrStandardOutputAsAStream) {
  Scratch s;
  make_fifo(s.path("out.fifo"));
  const FifoReader reader(s.path("out.fifo"));
  ASSERT_GE(reader.fd, 0);
  const Watched w = run_watched(
      s, {"predict", "--model", model(), "--input", path("input.csv"), "--output", s.path("out.fifo")});
  ASSERT_FALSE(w.hung);
  EXPECT_EQ(w.result.code, 0) << w.result.err;
  EXPECT_EQ(reader.read_all(), predictions());
  EXPECT_EQ(kind_of(s.path("out.fifo")), S_IFIFO);

  const std::string device = null_device(s.dir().string());
  if (!device.empty()) {
    EXPECT_EQ(run(s, predict_to(device)).code, 0);
    EXPECT_EQ(kind_of(device), S_IFCHR);
    fs::create_symlink(device, s.dir() / "sink");
    const auto null = run(s, predict_to(s.path("sink")));
    EXPECT_EQ(null.code, 0) << null.err;
    EXPECT_EQ(kind_of(s.path("sink")), S_IFLNK);
    EXPECT_EQ(kind_of(device), S_IFCHR);
  }

  const auto out = run(s, predict_to("-"));
  EXPECT_EQ(out.code, 0) << out.err;
  EXPECT_EQ(out.out, predictions());
  EXPECT_FALSE(fs::exists(s.path("-")));
}

TEST_F(Outputs, PredictOutputRefusesADirectoryAndAFileOfAnotherKind) {
  Scratch s;
  fs::create_directories(s.dir() / "folder");
  const auto dir = run(s, predict_to(s.path("folder")));
  EXPECT_EQ(dir.code, 2);
  EXPECT_THAT(dir.err, HasSubstr("--output '" + s.path("folder") + "' is a directory"));
  EXPECT_EQ(kind_of(s.path("folder")), S_IFDIR);

  // A model given as --output: refused, byte for byte as it was, until --force.
  fs::copy_file(model(), s.path("other.safetensors"));
  const std::string before = clitest::slurp(s.path("other.safetensors"));
  const auto r = run(s, predict_to(s.path("other.safetensors")));
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(r.err,
              HasSubstr("--output " + s.path("other.safetensors") +
                        ": the file holds a safetensors model; refusing to replace it with predictions"));
  EXPECT_THAT(r.err, HasSubstr("--force"));
  EXPECT_EQ(clitest::slurp(s.path("other.safetensors")), before);
  const auto forced = run(s, predict_to(s.path("other.safetensors")) + " --force");
  EXPECT_EQ(forced.code, 0) << forced.err;
  EXPECT_EQ(clitest::slurp(s.path("other.safetensors")), predictions());
  // Text over text (earlier predictions) needs no --force.
  EXPECT_EQ(run(s, predict_to(s.path("other.safetensors"))).code, 0);
}

TEST(ExplainGraph, FollowsALinkAndWritesAFifoADeviceOrStandardOutput) {
  Scratch s;
  const auto plain = run(s, "explain --graph " + s.path("plain.dot"));
  ASSERT_EQ(plain.code, 0) << plain.err;
  const std::string dot = clitest::slurp(s.path("plain.dot"));
  ASSERT_THAT(dot, HasSubstr("digraph"));
  ASSERT_LT(dot.size(), 60000u);  // fits in a pipe's buffer, so the FIFO test needs no reader thread

  fs::create_directories(s.dir() / "real");
  clitest::write(s.path("real/step.dot"), "digraph old {}\n");
  fs::create_symlink("real/step.dot", s.dir() / "link.dot");
  const auto linked = run(s, "explain --graph " + s.path("link.dot"));
  ASSERT_EQ(linked.code, 0) << linked.err;
  EXPECT_EQ(kind_of(s.path("link.dot")), S_IFLNK);
  EXPECT_EQ(clitest::slurp(s.path("real/step.dot")), dot);

  make_fifo(s.path("graph.fifo"));
  const FifoReader reader(s.path("graph.fifo"));
  ASSERT_GE(reader.fd, 0);
  const Watched w = run_watched(s, {"explain", "--graph", s.path("graph.fifo")});
  ASSERT_FALSE(w.hung);
  EXPECT_EQ(w.result.code, 0) << w.result.err;
  EXPECT_EQ(reader.read_all(), dot);
  EXPECT_EQ(kind_of(s.path("graph.fifo")), S_IFIFO);
  EXPECT_FALSE(fs::exists(s.path("graph.fifo.svg")));

  const std::string device = null_device(s.dir().string());
  if (!device.empty()) {
    fs::create_symlink(device, s.dir() / "sink");
    EXPECT_EQ(run(s, "explain --graph " + s.path("sink")).code, 0);
    EXPECT_EQ(kind_of(s.path("sink")), S_IFLNK);
    EXPECT_EQ(kind_of(device), S_IFCHR);
  }

  const auto out = run(s, "explain --json --graph -");
  EXPECT_EQ(out.code, 0) << out.err;
  EXPECT_EQ(out.out.substr(0, dot.size()), dot);
}

TEST(ExplainGraph, RefusesADirectoryAndAFileOfAnotherKind) {
  Scratch s;
  fs::create_directories(s.dir() / "folder");
  const auto dir = run(s, "explain --graph " + s.path("folder"));
  EXPECT_EQ(dir.code, 2);
  EXPECT_THAT(dir.err, HasSubstr("is a directory"));
  EXPECT_EQ(kind_of(s.path("folder")), S_IFDIR);

  // A model file given as --graph is not replaced with DOT text, nor are notes.
  clitest::write(s.path("train.csv"), clitest::blobs_csv(5, 5));
  ASSERT_EQ(run(s, "train --quiet --data " + s.path("train.csv") +
                       " --target species --layers 4 --epochs 1 --val-split 0 --out " + s.path("run"))
                .code,
            0);
  const std::string model = s.path("run/model.safetensors");
  const std::string before = clitest::slurp(model);
  const auto r = run(s, "explain --graph " + model);
  EXPECT_EQ(r.code, 2);
  EXPECT_THAT(
      r.err,
      HasSubstr("--graph " + model +
                ": the file holds a safetensors model; refusing to replace it with Graphviz DOT text"));
  EXPECT_THAT(r.err, HasSubstr("--force"));
  EXPECT_EQ(clitest::slurp(model), before);
  clitest::write(s.path("notes.txt"), "my notes\n");
  EXPECT_EQ(run(s, "explain --graph " + s.path("notes.txt")).code, 2);
  EXPECT_EQ(clitest::slurp(s.path("notes.txt")), "my notes\n");

  const auto forced = run(s, "explain --force --graph " + model);
  EXPECT_EQ(forced.code, 0) << forced.err;
  EXPECT_THAT(clitest::slurp(model), ::testing::StartsWith("digraph"));
}

TEST_F(Outputs, EveryInputFlagReportsAFifoWithoutWaiting) {
  Scratch s;
  const std::string fifo = s.path("input.fifo");
  make_fifo(fifo);
  // A run folder whose files are FIFOs, and one whose checkpoints' `latest` is.
  fs::create_directories(s.dir() / "report_metrics");
  make_fifo(s.path("report_metrics/metrics.jsonl"));
  fs::create_directories(s.dir() / "report_config");
  fs::copy_file(path("run/metrics.jsonl"), s.path("report_config/metrics.jsonl"));
  make_fifo(s.path("report_config/config.toml"));
  fs::create_directories(s.dir() / "resume/checkpoints");
  make_fifo(s.path("resume/checkpoints/latest"));
  fs::create_directories(s.dir() / "idx");
  make_fifo(s.path("idx/t10k-images-idx3-ubyte"));

  const std::string csv = path("train.csv");
  const std::vector<std::vector<std::string>> cases = {
      {"train", "--config", fifo},
      {"train", "--data", fifo, "--target", "species", "--out", s.path("a")},
      {"train", "--resume", fifo},
      {"train", "--resume", s.path("resume")},
      {"train", "--data", csv, "--target", "species", "--init-from", fifo, "--out", s.path("b")},
      {"info", fifo},
      {"eval", "--model", fifo, "--data", csv},
      {"eval", "--model", model(), "--data", fifo},
      {"eval", "--model", model(), "--data", s.path("idx")},
      {"predict", "--model", fifo, "--input", path("input.csv")},
      {"predict", "--model", model(), "--input", fifo},
      {"report", s.path("report_metrics")},
      {"report", s.path("report_config")},
  };
  for (const auto& args : cases) {
    std::string line;
    for (const std::string& a : args) line += a + " ";
    const Watched w = run_watched(s, args);
    EXPECT_FALSE(w.hung) << line << "waited on a FIFO";
    EXPECT_NE(w.result.code, 0) << line;
    EXPECT_THAT(w.result.err, HasSubstr("is a FIFO, not a regular file")) << line;
  }
  EXPECT_EQ(kind_of(fifo), S_IFIFO);
}

TEST(ExplainGraph, TheSvgBesideTheGraphIsCheckedAndWrittenTheSameWay) {
  // A stand-in for Graphviz's `dot` on the PATH: wraps the DOT text it reads in an <svg> element.
  Scratch s;
  fs::create_directories(s.dir() / "bin");
  clitest::write(s.path("bin/dot"), "#!/bin/sh\necho '<svg>'; cat; echo '</svg>'\n");
  fs::permissions(s.path("bin/dot"), fs::perms::owner_all);
  const std::string with_dot =
      "PATH=" + clitest::quote(s.path("bin")) + ":\"$PATH\" " + clitest::quote(clitest::kCli);
  const auto r = clitest::run_shell(s, with_dot + " explain --graph " + s.path("step.dot"));
  ASSERT_EQ(r.code, 0) << r.err;
  const std::string dot = clitest::slurp(s.path("step.dot"));
  EXPECT_EQ(clitest::slurp(s.path("step.svg")), "<svg>\n" + dot + "</svg>\n");
  EXPECT_THAT(r.out, HasSubstr("and " + s.path("step.svg")));

  // An SVG path that holds something else: refused before either file is written, until --force.
  clitest::write(s.path("other.svg"), std::string("\x1f\x8b\x08\0binary", 10));
  const std::string before = clitest::slurp(s.path("other.svg"));
  const auto refused = clitest::run_shell(s, with_dot + " explain --graph " + s.path("other.dot"));
  EXPECT_EQ(refused.code, 2);
  EXPECT_THAT(refused.err, HasSubstr("--graph " + s.path("other.svg") + ": the file holds binary data"));
  EXPECT_FALSE(fs::exists(s.path("other.dot")));
  EXPECT_EQ(clitest::slurp(s.path("other.svg")), before);
  const auto forced = clitest::run_shell(s, with_dot + " explain --force --graph " + s.path("other.dot"));
  EXPECT_EQ(forced.code, 0) << forced.err;
  EXPECT_EQ(clitest::slurp(s.path("other.svg")), "<svg>\n" + dot + "</svg>\n");
}
