// What every command takes: each number of each command is range-checked by the one flag table (exit 2,
// naming the flag, the value given and the limit), and eval / predict read a model's features by column
// name or by count, saying what does not fit (exit 3) and which columns they ignore.
#include <gmock/gmock.h>

#include <algorithm>
#include <backprop/config.hpp>
#include <nlohmann/json.hpp>

#include "cli/cli_test_util.hpp"

using ::testing::HasSubstr;
using ::testing::Not;

namespace {

using clitest::run;
using clitest::Scratch;

// A model of the blobs table (features sepal, petal, weight, height; target species, the last column, not
// named at training), trained once for the suite.
class Columns : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new Scratch();
    clitest::write(dir_->path("train.csv"), clitest::blobs_csv(1, 20));
    const auto r = run(*dir_, "train --quiet --threads 1 --data " + dir_->path("train.csv") +
                                  " --layers 8 --epochs 3 --out " + dir_->path("run"));
    ASSERT_EQ(r.code, 0) << r.err;
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string model() { return dir_->path("run/model.safetensors"); }
  static std::string train_csv() { return dir_->path("train.csv"); }

  static Scratch* dir_;
};

Scratch* Columns::dir_ = nullptr;

// The rows of `csv` (comma-separated, no quotes) with its columns taken in the order `order` (indices).
std::string reorder(const std::string& csv, const std::vector<std::size_t>& order) {
  std::istringstream in(csv);
  std::string out;
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> cells;
    std::istringstream fields(line);
    for (std::string f; std::getline(fields, f, ',');) cells.push_back(f);
    for (std::size_t k = 0; k < order.size(); ++k) out += (k ? "," : "") + cells[order[k]];
    out += "\n";
  }
  return out;
}

// A raw IDX file of n images of rows x cols bytes, or of n labels when rows == 0.
std::string idx(std::uint32_t n, std::uint32_t rows, std::uint32_t cols) {
  std::string s = {0, 0, 8, static_cast<char>(rows ? 3 : 1)};
  auto u32 = [&](std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) s += static_cast<char>((v >> shift) & 0xff);
  };
  u32(n);
  if (rows) {
    u32(rows);
    u32(cols);
  }
  s += std::string(static_cast<std::size_t>(n) * (rows ? rows * cols : 1), '\x01');
  return s;
}

// What `eval --json` measured: examples, loss, accuracy and the confusion matrix, as JSON text.
std::string scores(const std::string& eval_json) {
  const nlohmann::json j = nlohmann::json::parse(eval_json);
  return nlohmann::json{{"examples", j["examples"]},
                        {"loss", j["loss"]},
                        {"accuracy", j["accuracy"]},
                        {"confusion", j["confusion"]}}
      .dump();
}

}  // namespace

// Each value flag of each command, out of range or not a number: exit 2 before anything is read, naming
// the flag, the value given and the limit, in the words train uses for its keys. Inputs that do not exist
// make a wrongly accepted value end in exit 3, not in a run.
TEST(Inputs, EveryNumberOfEveryCommandIsRangeCheckedNamingTheFlagAndTheLimit) {
  Scratch s;
  const std::string model = " --model " + s.path("none.safetensors");
  const std::string train = "train --data " + s.path("none.csv") + " --out " + s.path("run") + " ";
  const struct {
    std::string args, phrase;
  } cases[] = {
      {"predict --input x.csv --limit -1" + model,
       "--limit: expected an integer >= 0 and at most 1000000000000, got '-1'"},
      {"predict --input x.csv --limit 2x" + model, "--limit: expected an integer >= 0"},
      {"eval --data x.csv --limit -3" + model,
       "--limit: expected an integer >= 0 and at most 1000000000000, got '-3'"},
      {"eval --data x.csv --split tset" + model,
       "--split: expected one of: train, test, got 'tset'; did you mean 'test'?"},
      {"explain --seed -5", "--seed: expected an integer >= 0 and at most 9007199254740992, got '-5'"},
      {"explain --seed 18446744073709551611",
       "--seed: expected an integer >= 0 and at most 9007199254740992"},
      {"explain --seed 9007199254740993", "got '9007199254740993'"},
      {"explain --repeated 4097", "--repeated: expected an integer >= 0 and at most 4096, got '4097'"},
      {"explain --lr 1e308", "--lr: expected a number > 0 and at most 1000000, got '1e308'"},
      {"explain --lr 0", "--lr: expected a number > 0"},
      {train + "--lr 1e308", "--lr: expected a number > 0 and at most 1000000, got '1e308'"},
      {train + "--weight-decay 1e308", "--weight-decay: expected a number >= 0 and at most 1000000"},
      {train + "--l2 1e300", "--l2: expected a number >= 0 and at most 1000000"},
      {train + "--layers 100000000",
       "--layers: expected a comma-separated list of integers >= 1 and at most 1000000 (or none), got "
       "'100000000'"},
      {train + "--seed 9007199254740993", "--seed: expected an integer >= 0 and at most 9007199254740992"},
      {train + "--limit-train -1", "--limit-train: expected an integer >= 0 and at most 1000000000000"},
      {train + "--schedule exponential:1e308", "--schedule): GAMMA must be a number > 0 and at most 1"},
      {train + "--schedule step:10:2", "--schedule): GAMMA must be a number > 0 and at most 1"},
  };
  for (const auto& c : cases) {
    const auto r = run(s, c.args);
    EXPECT_EQ(r.code, 2) << c.args << "\n" << r.err;
    EXPECT_THAT(r.err, HasSubstr(c.phrase)) << c.args;
  }
  // The limit is also in the help.
  EXPECT_THAT(run(s, "eval --help").out,
              HasSubstr("only the first N examples (0: all); an integer >= 0 and at most 1000000000000"));
  EXPECT_THAT(run(s, "explain --help").out, HasSubstr("up to N; an integer >= 0 and at most 4096"));
}

// docs/cli.md lists every number flag of every command with the range the table enforces, word for word.
TEST(Inputs, TheDocumentedRangesAreTheTables) {
  const std::string doc = clitest::slurp(std::string(BACKPROP_SOURCE_DIR) + "/docs/cli.md");
  for (const backprop::config::KeyInfo& k : backprop::config::keys()) {
    if (k.type == "string" || k.type == "boolean") continue;
    EXPECT_THAT(doc, HasSubstr("| `train` | `" + k.flag + "` | " + k.expects + " |"));
  }
  for (const backprop::config::CommandFlag& f : backprop::config::command_flags())
    EXPECT_THAT(doc, HasSubstr("| `" + f.command + "` | `" + f.flag + "` | " + f.expects + " |"));
}

// A header's columns are matched by name: another order gives the same predictions as the training order.
TEST_F(Columns, PredictReadsTheModelsColumnsByNameInAnyOrder) {
  Scratch s;
  const std::string x = clitest::blobs_csv(5, 4, false);  // sepal,petal,weight,height
  clitest::write(s.path("x.csv"), x);
  clitest::write(s.path("reordered.csv"), reorder(x, {3, 1, 0, 2}));
  const auto a = run(s, "predict --model " + model() + " --input " + s.path("x.csv"));
  ASSERT_EQ(a.code, 0) << a.err;
  EXPECT_EQ(a.err, "");  // nothing ignored, no note
  const auto b = run(s, "predict --model " + model() + " --input " + s.path("reordered.csv"));
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(b.out, a.out);
  EXPECT_EQ(std::count(a.out.begin(), a.out.end(), '\n'), 12);
  // Without a header row the training order is the only reading: the same rows, same predictions.
  clitest::write(s.path("bare.csv"), x.substr(x.find('\n') + 1));
  const auto c = run(s, "predict --model " + model() + " --input " + s.path("bare.csv"));
  ASSERT_EQ(c.code, 0) << c.err;
  EXPECT_EQ(c.out, a.out);
}

// Columns that are not the model's features (the target, an id, a text note) are ignored, not parsed, and
// listed in a note on stderr; the target column is dropped although training did not name it.
TEST_F(Columns, PredictIgnoresOtherColumnsWithANote) {
  Scratch s;
  const std::string x = clitest::blobs_csv(5, 4, false);
  clitest::write(s.path("x.csv"), x);
  // The same rows, as species,height,weight,petal,sepal, between an id and a text note.
  std::string extra;
  std::istringstream in(reorder(clitest::blobs_csv(5, 4, true), {4, 3, 2, 1, 0}));
  int row = 0;
  for (std::string line; std::getline(in, line); ++row)
    extra += (row == 0 ? std::string("id,") : std::to_string(row) + ",") + line +
             (row == 0 ? ",note\n" : ",\"some, text\"\n");
  clitest::write(s.path("extra.csv"), extra);
  const auto a = run(s, "predict --model " + model() + " --input " + s.path("x.csv"));
  const auto b = run(s, "predict --model " + model() + " --input " + s.path("extra.csv"));
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(b.out, a.out);
  EXPECT_THAT(b.err, HasSubstr("note: " + s.path("extra.csv") +
                               ": ignoring columns 'id', 'species', 'note' (not features of the model)"));
  // The training file itself: its target column is ignored by name.
  const auto t = run(s, "predict --model " + model() + " --input " + train_csv());
  ASSERT_EQ(t.code, 0) << t.err;
  EXPECT_THAT(t.err, HasSubstr("ignoring column 'species'"));
}

// A missing feature is named; a headerless table of another column count is refused naming both counts
// (never read with a column dropped); a duplicated column name is named with its columns.
TEST_F(Columns, PredictRefusesColumnsThatDoNotFitSayingWhy) {
  Scratch s;
  clitest::write(s.path("missing.csv"), "sepal,petal,height,species\n1,2,3,x\n");
  auto r = run(s, "predict --model " + model() + " --input " + s.path("missing.csv"));
  EXPECT_EQ(r.code, 3);
  EXPECT_THAT(r.err, HasSubstr("no column named 'weight'; the feature columns are 'sepal', 'petal', "
                               "'weight', 'height'"));
  const std::string labelled = clitest::blobs_csv(5, 2, true);
  clitest::write(s.path("bare5.csv"), labelled.substr(labelled.find('\n') + 1));  // 4 features + label
  r = run(s, "predict --model " + model() + " --input " + s.path("bare5.csv"));
  EXPECT_EQ(r.code, 3);
  EXPECT_THAT(r.err, HasSubstr("has 5 columns and no header row; expected 4 feature columns ('sepal', "
                               "'petal', 'weight', 'height', in this order), or a header row naming them"));
  EXPECT_EQ(r.out, "");
  clitest::write(s.path("bare3.csv"), "1,2,3\n");
  r = run(s, "predict --model " + model() + " --input " + s.path("bare3.csv"));
  EXPECT_EQ(r.code, 3);
  EXPECT_THAT(r.err, HasSubstr("has 3 columns and no header row; expected 4 feature columns"));
  clitest::write(s.path("dup.csv"), "sepal,petal,weight,height,petal\n1,2,3,4,5\n");
  r = run(s, "predict --model " + model() + " --input " + s.path("dup.csv"));
  EXPECT_EQ(r.code, 3);
  EXPECT_THAT(r.err, HasSubstr("duplicate column names in the header: 'petal' in columns 2 and 5"));
}

// Images given to a table model, and a table given to an image model: both shapes are named, before any
// label is compared with the model's classes.
TEST_F(Columns, ModelAndDataOfDifferentShapesNameBoth) {
  Scratch s;
  clitest::write(s.path("images-idx3-ubyte"), idx(3, 28, 28));
  auto r = run(s, "predict --model " + model() + " --input " + s.path("images-idx3-ubyte"));
  EXPECT_EQ(r.code, 3);
  EXPECT_THAT(r.err, HasSubstr("the model takes 4 features (columns 'sepal', 'petal', 'weight', 'height'), "
                               "the data has 784 (28x28 images)"));
  std::filesystem::create_directories(s.path("idx"));
  clitest::write(s.path("idx/t10k-images-idx3-ubyte"), idx(3, 28, 28));
  clitest::write(s.path("idx/t10k-labels-idx1-ubyte"), idx(3, 0, 0));
  r = run(s, "eval --model " + model() + " --data " + s.path("idx"));
  EXPECT_EQ(r.code, 3);
  EXPECT_THAT(r.err, HasSubstr("--data " + s.path("idx") +
                               ": the model takes 4 features (columns 'sepal', "
                               "'petal', 'weight', 'height'), the data has 784 (28x28 images)"));
  EXPECT_THAT(r.err, Not(HasSubstr("label")));

  // An image model (trained on the IDX folder) given a table.
  clitest::write(s.path("idx/train-images-idx3-ubyte"), idx(4, 4, 4));
  clitest::write(s.path("idx/train-labels-idx1-ubyte"), idx(4, 0, 0));
  clitest::write(s.path("idx/t10k-images-idx3-ubyte"), idx(2, 4, 4));
  clitest::write(s.path("idx/t10k-labels-idx1-ubyte"), idx(2, 0, 0));
  ASSERT_EQ(run(s, "train --quiet --data " + s.path("idx") + " --layers 2 --epochs 1 --val-split 0 --out " +
                       s.path("img"))
                .code,
            0);
  r = run(s, "eval --model " + s.path("img/model.safetensors") + " --data " + train_csv());
  EXPECT_EQ(r.code, 3);
  EXPECT_THAT(
      r.err,
      HasSubstr("the model takes 16 features (4x4 images), the data has 4 (CSV columns besides the target)"));
  r = run(s, "predict --model " + s.path("img/model.safetensors") + " --input " + train_csv());
  EXPECT_EQ(r.code, 3);
  EXPECT_THAT(r.err, HasSubstr("the model takes 16 features (4x4 images), the data has 5 (CSV columns)"));
}

// eval reads the same way: features by name in any order (same loss and accuracy), other columns noted; a
// target that is not named at training must be the one column besides the features, or be named.
TEST_F(Columns, EvalReadsTheModelsColumnsByName) {
  Scratch s;
  const std::string labelled = clitest::blobs_csv(6, 5, true);  // sepal,petal,weight,height,species
  clitest::write(s.path("test.csv"), labelled);
  clitest::write(s.path("reordered.csv"), reorder(labelled, {4, 2, 0, 3, 1}));
  const auto a = run(s, "eval --json --model " + model() + " --data " + s.path("test.csv"));
  ASSERT_EQ(a.code, 0) << a.err;
  const auto b = run(s, "eval --json --model " + model() + " --data " + s.path("reordered.csv"));
  ASSERT_EQ(b.code, 0) << b.err;
  EXPECT_EQ(scores(b.out), scores(a.out));
  EXPECT_EQ(nlohmann::json::parse(a.out)["examples"], 15);
  std::string with_id;
  std::istringstream in(labelled);
  int row = 0;
  for (std::string line; std::getline(in, line); ++row)
    with_id += (row == 0 ? std::string("id,") : std::to_string(row) + ",") + line + "\n";
  clitest::write(s.path("id.csv"), with_id);
  auto r = run(s, "eval --json --model " + model() + " --data " + s.path("id.csv"));
  EXPECT_EQ(r.code, 3);
  EXPECT_THAT(r.err, HasSubstr("besides the feature columns the header holds 'id', 'species'; name the "
                               "target column"));
  r = run(s, "eval --json --model " + model() + " --data " + s.path("id.csv") + " --target species");
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(scores(r.out), scores(a.out));
  EXPECT_THAT(r.err, HasSubstr("ignoring column 'id' (not features of the model)"));
  clitest::write(s.path("missing.csv"), "sepal,weight,height,species\n1,2,3,setosa\n");
  r = run(s, "eval --model " + model() + " --data " + s.path("missing.csv"));
  EXPECT_EQ(r.code, 3);
  EXPECT_THAT(r.err, HasSubstr("no column named 'petal'"));
}

// train reads its CSV with the same reader: a duplicated column name is refused before training.
TEST(Inputs, TrainRefusesDuplicateColumnNames) {
  Scratch s;
  clitest::write(s.path("dup.csv"), "a,b,a,label\n1,2,3,x\n4,5,6,y\n");
  const auto r = run(s, "train --quiet --data " + s.path("dup.csv") + " --out " + s.path("run"));
  EXPECT_EQ(r.code, 3);
  EXPECT_THAT(r.err, HasSubstr("dup.csv:1: duplicate column names in the header: 'a' in columns 1 and 3"));
  EXPECT_FALSE(std::filesystem::exists(s.path("run/model.safetensors")));
}

// train's --test-data is read with the training file's columns too: in another order it scores the same.
TEST(Inputs, TrainTestDataColumnsAreMatchedByName) {
  Scratch s;
  clitest::write(s.path("train.csv"), clitest::blobs_csv(1, 20));
  const std::string test = clitest::blobs_csv(2, 5);
  clitest::write(s.path("test.csv"), test);
  clitest::write(s.path("reordered.csv"), reorder(test, {4, 2, 0, 3, 1}));
  const std::string args = "train --json --threads 1 --layers 8 --epochs 3 --data " + s.path("train.csv");
  const auto a = run(s, args + " --test-data " + s.path("test.csv") + " --out " + s.path("a"));
  ASSERT_EQ(a.code, 0) << a.err;
  const auto b = run(s, args + " --test-data " + s.path("reordered.csv") + " --out " + s.path("b"));
  ASSERT_EQ(b.code, 0) << b.err;
  const nlohmann::json ja = nlohmann::json::parse(a.out), jb = nlohmann::json::parse(b.out);
  ASSERT_TRUE(ja.contains("test")) << a.out;
  EXPECT_EQ(jb["test"], ja["test"]);
}
