// The hostile-input table: one row per case of bad input a careless or hostile user gives the tool, each run
// against a fresh copy of a prepared folder (a small CSV, a trained run, a text file, ...). A row names the
// shell that prepares the case (links, FIFOs, damaged copies), the command, the exit code, a phrase the
// message must contain, the files that must keep their bytes, the kinds of file that must still be there
// (a link stays a link, a FIFO a FIFO) and an optional shell check of what was written. Every command runs
// under a watchdog: a command that blocks fails its row instead of hanging the suite.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cli/cli_test_util.hpp"

namespace {

using clitest::Result;
using clitest::Scratch;
namespace fs = std::filesystem;

struct Hostile {
  const char* name;                         // the test's name
  const char* prepare;                      // shell run in the case folder first ("" for nothing)
  const char* command;                      // shell run in the case folder; $BP is the backprop binary
  int exit;                                 // the exit code the command must end with
  const char* phrase;                       // the message (stdout + stderr) must contain this
  std::vector<std::string> unchanged = {};  // files that must keep their bytes
  std::vector<std::string> kinds = {};      // "PATH=file|dir|link|fifo|chardev": what must still be there
  const char* check = "";                   // shell that must succeed afterwards ("" for none)
};

// What every case starts from: a 90-row, 3-class CSV (small.csv), the same without its header
// (headerless.csv), a run folder trained on it (run/), a 60-row regression CSV (linear.csv), a text file
// (notes.txt) and a Graphviz file (graph.dot).
const std::vector<Hostile>& cases() {
  static const std::vector<Hostile> rows = {
      // ---- inputs that are not regular files: refused at once, never opened for reading ----
      {"DataFifoIsRefused",
       "mkfifo fifo",
       "$BP train --data fifo --out new",
       3,
       "not a regular file",
       {},
       {"fifo=fifo"}},
      {"DataDirectoryWithoutIdxFilesIsRefused", "mkdir empty", "$BP train --data empty --out new", 3,
       "empty"},
      {"ConfigFifoIsRefused",
       "mkfifo fifo",
       "$BP train --config fifo --out new",
       3,
       "is a FIFO, not a regular file",
       {},
       {"fifo=fifo"}},
      {"InfoFifoIsRefused",
       "mkfifo fifo",
       "$BP info fifo",
       3,
       "is a FIFO, not a regular file",
       {},
       {"fifo=fifo"}},
      {"EvalModelFifoIsRefused",
       "mkfifo fifo",
       "$BP eval --model fifo --data small.csv",
       3,
       "is a FIFO, not a regular file",
       {},
       {"fifo=fifo"}},
      {"PredictInputFifoIsRefused",
       "mkfifo fifo",
       "$BP predict --model run/model.safetensors --input fifo",
       3,
       "is a FIFO, not a regular file",
       {},
       {"fifo=fifo"}},
      {"ResumeFifoIsRefused",
       "mkfifo fifo",
       "$BP train --resume fifo",
       3,
       "is a FIFO, not a regular file",
       {},
       {"fifo=fifo"}},
      {"ReportWithAFifoForItsMetricsIsRefused",
       "rm run/metrics.jsonl && mkfifo run/metrics.jsonl",
       "$BP report run",
       3,
       "is a FIFO, not a regular file",
       {"run/model.safetensors"},
       {"run/metrics.jsonl=fifo"}},
      // ---- outputs that are links, FIFOs, folders, or files of another kind ----
      {"GraphOverAModelIsRefused",
       "",
       "$BP explain --graph run/model.safetensors",
       2,
       "holds a safetensors model; refusing to replace it with Graphviz DOT text",
       {"run/model.safetensors"},
       {"run/model.safetensors=file"}},
      {"PredictionsOverAModelAreRefused",
       "cp run/model.safetensors copy.safetensors",
       "$BP predict --model run/model.safetensors --input small.csv --output copy.safetensors",
       2,
       "--force",
       {"copy.safetensors"}},
      {"GraphIntoAFolderIsRefused",
       "mkdir out",
       "$BP explain --graph out",
       2,
       "is a directory",
       {},
       {"out=dir"}},
      {"PredictOutputThroughALinkKeepsTheLink",
       "ln -s notes.txt link.txt",
       "$BP predict --model run/model.safetensors --input small.csv --output link.txt",
       0,
       "",
       {},
       {"link.txt=link", "notes.txt=file"},
       "grep -q setosa notes.txt"},
      {"PredictOutputToAFifoReachesItsReader",  // a regression that renames over the FIFO leaves cat waiting
       "mkfifo fifo",
       "cat fifo > got.txt & $BP predict --model run/model.safetensors --input small.csv --output fifo; "
       "s=$?; "
       "wait; exit $s",
       0,
       "",
       {},
       {"fifo=fifo"},
       "grep -q setosa got.txt"},
      // ---- outputs that are inputs, folders that are files ----
      {"TrainOutThatIsTheDataIsRefused",
       "",
       "$BP train --data small.csv --target species --out small.csv",
       2,
       "is also the input --data",
       {"small.csv"},
       {"small.csv=file"}},
      {"PredictOutputThatIsTheModelIsRefused",
       "",
       "$BP predict --model run/model.safetensors --input small.csv --output run/model.safetensors",
       2,
       "--output",
       {"run/model.safetensors"}},
      {"TrainOutThatIsAFileIsRefused",
       "",
       "$BP train --data small.csv --target species --layers 4 --epochs 1 --out notes.txt",
       3,
       "notes.txt",
       {"notes.txt"},
       {"notes.txt=file"}},
      // ---- a run folder is never emptied before the new run has finished ----
      {"TrainOntoAnEarlierRunIsRefused",
       "",
       "$BP train --data small.csv --target species --layers 4 --epochs 1 --out run",
       2,
       "--overwrite",
       {"run/model.safetensors", "run/metrics.jsonl", "run/summary.json", "run/config.toml"}},
      {"OverwriteThatDivergesKeepsTheEarlierRun",
       "",
       "$BP train --data linear.csv --task regression --layers none --epochs 20 --lr 1000000 --optimizer sgd "
       "--schedule none --out run --overwrite",
       4,
       "unchanged",
       {"run/model.safetensors", "run/metrics.jsonl", "run/summary.json", "run/report.html"}},
      // ---- standard output that cannot be written ----
      {"InfoToAFullDiskIsAnError", "", "$BP info run/model.safetensors > /dev/full", 3,
       "cannot write standard output"},
      {"PredictToAFullDiskIsAnError", "",
       "$BP predict --model run/model.safetensors --input small.csv > /dev/full", 3,
       "cannot write standard output"},
      // ---- damaged and missing files ----
      {"MissingModelIsNamed", "", "$BP info nothere.safetensors", 3, "nothere.safetensors"},
      {"CutModelIsADataError",
       "head -c 100 run/model.safetensors > cut.safetensors",
       "$BP info cut.safetensors",
       3,
       "cut.safetensors",
       {"cut.safetensors"}},
      {"TextFileAsModelSaysItIsNotSafetensors",
       "",
       "$BP eval --model notes.txt --data small.csv",
       3,
       "'notes.txt' is not a safetensors file (it looks like text)",
       {"notes.txt"}},
      // ---- resources ----
      {"NetworkTooBigForTheMachineIsRefusedNamingLayers",
       "",
       "$BP train --data small.csv --target species --layers 200000,200000,200000 --out new",
       2,
       "reduce --layers 200000,200000,200000",
       {},
       {},
       "test ! -e new/metrics.jsonl"},
      {"RaggedCsvNamesTheLine", "printf 'a,b,c\\n1,2,3\\n4,5\\n' > ragged.csv",
       "$BP train --data ragged.csv --out new", 3, "ragged.csv:3"},
      {"ConfigSyntaxErrorNamesTheLine", "printf '[train]\\nepochs = = 3\\n' > bad.toml",
       "$BP train --config bad.toml --out new", 2, "bad.toml:2"},
      // ---- flags ----
      {"UnknownFlagSuggestsTheClosest", "", "$BP train --lrr 0.1", 2, "--lr"},
      {"ZeroWidthLayerIsAUsageError", "", "$BP train --data small.csv --target species --layers 0 --out new",
       2, "--layers"},
      // ---- numbers out of range, for every command (one flag table) ----
      {"PredictNegativeLimitIsRefused", "",
       "$BP predict --model run/model.safetensors --input small.csv --limit -1", 2,
       "--limit: expected an integer >= 0 and at most 1000000000000, got '-1'"},
      {"EvalNegativeLimitIsRefused", "", "$BP eval --model run/model.safetensors --data small.csv --limit -3",
       2, "--limit: expected an integer >= 0"},
      {"ExplainNegativeSeedIsRefused", "", "$BP explain --seed -5", 2,
       "--seed: expected an integer >= 0 and at most 9007199254740992, got '-5'"},
      {"HugeLearningRateIsRefusedNamingTheFlag", "",
       "$BP train --data small.csv --target species --lr 1e308 --out new", 2,
       "--lr: expected a number > 0 and at most 1000000, got '1e308'"},
      {"HugeLayerNamesTheWidthLimit", "",
       "$BP train --data small.csv --target species --layers 100000000 --out new", 2,
       "integers >= 1 and at most 1000000"},
      {"GrowingScheduleIsRefusedNamingTheFlag", "",
       "$BP train --data small.csv --target species --schedule exponential:1e308 --out new", 2,
       "(--schedule): GAMMA must be a number > 0 and at most 1"},
      // ---- columns that do not fit the model ----
      {"HeaderlessInputWithAColumnTooManyIsRefused", "",
       "$BP predict --model run/model.safetensors --input headerless.csv", 3,
       "has 5 columns and no header row; expected 4 feature columns"},
      {"DuplicateColumnNamesAreNamed", "printf 'a,b,a,y\\n1,2,3,x\\n4,5,6,y\\n' > dup.csv",
       "$BP train --data dup.csv --out new", 3,
       "duplicate column names in the header: 'a' in columns 1 and 3"},
      {"ImagesGivenToATableModelNameBothShapes",
       "printf '\\0\\0\\10\\3\\0\\0\\0\\1\\0\\0\\0\\34\\0\\0\\0\\34' > img && head -c 784 /dev/zero >> img",
       "$BP predict --model run/model.safetensors --input img", 3,
       "the model takes 4 features (columns 'sepal', 'petal', 'weight', 'height'), the data has 784 (28x28 "
       "images)"},
  };
  return rows;
}

void PrintTo(const Hostile& c, std::ostream* out) {
  *out << c.command;
}

std::string kind_of(const fs::path& p) {
  struct stat st {};
  if (::lstat(p.c_str(), &st) != 0) return "missing";
  if (S_ISLNK(st.st_mode)) return "link";
  if (S_ISFIFO(st.st_mode)) return "fifo";
  if (S_ISCHR(st.st_mode)) return "chardev";
  if (S_ISDIR(st.st_mode)) return "dir";
  if (S_ISREG(st.st_mode)) return "file";
  return "other";
}

// FNV-1a of a file's bytes (the whole text is compared as well; the hash names it in messages).
std::uint64_t fnv(const std::string& bytes) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ull;
  return h;
}

fs::path prepared_dir;  // set once prepared() has made it; removed when the test process ends

class RemovePrepared : public ::testing::Environment {
 public:
  void TearDown() override {
    std::error_code ec;
    if (!prepared_dir.empty()) fs::remove_all(prepared_dir, ec);
  }
};
const auto* const remove_prepared = ::testing::AddGlobalTestEnvironment(new RemovePrepared);

// The prepared folder, made once per test process.
const fs::path& prepared() {
  static const fs::path dir = [] {
    const fs::path d = fs::temp_directory_path() / ("backprop_hostile_" + std::to_string(::getpid()));
    prepared_dir = d;
    fs::remove_all(d);
    fs::create_directories(d);
    clitest::write((d / "small.csv").string(), clitest::blobs_csv(7, 30));
    const std::string body = clitest::blobs_csv(7, 30);
    clitest::write((d / "headerless.csv").string(), body.substr(body.find('\n') + 1));
    clitest::write((d / "linear.csv").string(), clitest::linear_csv(3, 60));
    clitest::write((d / "notes.txt").string(), "the user's own notes\n");
    clitest::write((d / "graph.dot").string(), "digraph g { a -> b; }\n");
    const std::string train =
        "cd " + clitest::quote(d.string()) + " && " + clitest::quote(clitest::kCli) +
        " train --data small.csv --target species --layers 8 --epochs 2 --quiet --out run"
        " >/dev/null 2>&1";
    if (std::system(train.c_str()) != 0) ADD_FAILURE() << "could not prepare the trained run: " << train;
    return d;
  }();
  return dir;
}

class HostileInput : public ::testing::TestWithParam<Hostile> {};

TEST_P(HostileInput, EndsAsTheTableSays) {
  const Hostile& c = GetParam();
  Scratch scratch;
  const fs::path dir = scratch.dir() / "case";
  fs::copy(prepared(), dir, fs::copy_options::recursive);
  const std::string cd = "cd " + clitest::quote(dir.string()) + " && ";
  if (*c.prepare) {
    const Result p = clitest::run_shell(scratch, cd + c.prepare);
    ASSERT_EQ(p.code, 0) << "prepare failed: " << c.prepare << "\n" << p.err;
  }
  std::vector<std::string> before;
  for (const std::string& f : c.unchanged) before.push_back(clitest::slurp((dir / f).string()));

  // The watchdog: 124 (or 137 after the kill) means the command did not end within 120 s.
  const std::string command = cd + "export BP=" + clitest::quote(clitest::kCli) +
                              "; timeout -k 5 120 sh -c " + clitest::quote(c.command);
  const Result r = clitest::run_shell(scratch, command);
  ASSERT_NE(r.code, 124) << c.command << ": did not end within 120 s (blocked?)";
  ASSERT_NE(r.code, 137) << c.command << ": did not end within 120 s (blocked?)";
  EXPECT_EQ(r.code, c.exit) << c.command << "\n" << r.all();
  EXPECT_NE(r.all().find(c.phrase), std::string::npos) << c.command << ": no '" << c.phrase << "' in\n"
                                                       << r.all();
  for (std::size_t i = 0; i < c.unchanged.size(); ++i) {
    const std::string now = clitest::slurp((dir / c.unchanged[i]).string());
    EXPECT_TRUE(now == before[i]) << c.unchanged[i] << " changed: hash " << fnv(before[i]) << " -> "
                                  << fnv(now) << " (" << before[i].size() << " -> " << now.size()
                                  << " bytes)";
  }
  for (const std::string& k : c.kinds) {
    const std::size_t eq = k.find('=');
    EXPECT_EQ(kind_of(dir / k.substr(0, eq)), k.substr(eq + 1)) << k;
  }
  if (*c.check) {
    const Result ok = clitest::run_shell(scratch, cd + c.check);
    EXPECT_EQ(ok.code, 0) << "check failed: " << c.check << "\n" << ok.all();
  }
}

INSTANTIATE_TEST_SUITE_P(Table, HostileInput, ::testing::ValuesIn(cases()),
                         [](const ::testing::TestParamInfo<Hostile>& info) { return info.param.name; });

}  // namespace
