// The HTML training report: a synthetic run folder in, a well-formed self-contained page out; missing pieces
// become notes; malformed metrics lines are errors naming the line; thumbnails carry the record's pixels.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <backprop/error.hpp>
#include <backprop/generator.hpp>
#include <backprop/io/metrics.hpp>
#include <backprop/io/report.hpp>
#include <backprop/tensor.hpp>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "html_check.hpp"
#include "png_decode.hpp"
#include "synthetic_run.hpp"

namespace bp = backprop;
namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;
using namespace report_test;

namespace {

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::path(::testing::TempDir()) / ("backprop_report_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> entries(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

TEST(Report, WritesAWellFormedSelfContainedPage) {
  const fs::path dir = fresh_dir("full");
  write_synthetic_run(dir);
  bp::io::write_report(dir.string());
  const std::string html = slurp(dir / "report.html");

  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_EQ(check_tags(html), "");
  EXPECT_EQ(count_of(html, "<svg"), 3u);  // loss, accuracy, gradient norms
  for (const char* text : {"Loss", "Accuracy", ">train<", ">validation<", "lowest validation loss",
                           "Gradient norm per layer", ">0.weight<", ">6.weight<", "Ankle boot", "T-shirt/top",
                           "backprop_report_full", "Overfitting", "Vanishing gradients", "recall"})
    EXPECT_NE(html.find(text), std::string::npos) << "missing: " << text;
  // Self-contained: no script and nothing fetched (the SVG namespace URI is a name, not a request).
  EXPECT_EQ(html.find("<script"), std::string::npos);
  EXPECT_EQ(html.find("src=\"http"), std::string::npos);
  EXPECT_EQ(html.find("href=\"http"), std::string::npos);
  EXPECT_EQ(html.find("url("), std::string::npos);
  EXPECT_EQ(count_of(html, "<img "), 20u);
  // The config is shown verbatim, escaped.
  EXPECT_NE(html.find("note = &quot;a &lt; b &amp;&amp; c &gt; d&quot;"), std::string::npos);
  EXPECT_EQ(html.find("a < b"), std::string::npos);
  // Written by rename: nothing but the inputs and the page is left in the folder.
  EXPECT_EQ(entries(dir), (std::vector<std::string>{"config.toml", "metrics.jsonl", "report.html"}));
}

TEST(Report, ConfusionMatrixShowsTheCounts) {
  const fs::path dir = fresh_dir("confusion");
  const std::vector<std::string> lines = write_synthetic_run(dir, {.epochs = 2});
  const auto test = nlohmann::json::parse(lines.back());
  const std::string html =
      bp::io::render_report(bp::io::read_report_data((dir / "metrics.jsonl").string()), "", "t");
  const std::size_t table = html.find("<table class=\"confusion\">");
  ASSERT_NE(table, std::string::npos);
  const std::string confusion = html.substr(table, html.find("</table>", table) - table);
  EXPECT_EQ(count_of(confusion, "<tr>"), 11u);  // header + 10 classes
  for (std::size_t r = 0; r < 10; ++r) {
    const int diagonal = test["confusion"][r][r].get<int>();
    EXPECT_THAT(confusion, HasSubstr("<b>" + std::to_string(diagonal) + "</b>")) << "class " << r;
  }
}

// A test record of k classes where class c is mistaken for class (c + 1) % k in c % 7 examples.
bp::io::TestRecord many_classes(std::size_t k) {
  bp::io::TestRecord t{.loss = 1, .accuracy = 0.5, .examples = 0};
  t.confusion.assign(k, std::vector<std::int64_t>(k, 0));
  for (std::size_t c = 0; c < k; ++c) {
    t.class_names.push_back("class " + std::to_string(c));
    t.confusion[c][c] = 10;
    t.confusion[c][(c + 1) % k] = static_cast<std::int64_t>(c % 7);
    t.per_class_accuracy.push_back(10.0 / (10.0 + static_cast<double>(c % 7)));
  }
  return t;
}

TEST(Report, ManyClassesGiveTheLargestConfusionsNotTheMatrix) {
  // The record: the whole matrix up to kFullConfusionClasses classes, then the largest cells, largest first.
  const std::string small = bp::io::to_json(many_classes(bp::io::kFullConfusionClasses));
  EXPECT_THAT(small, HasSubstr("\"confusion\""));
  EXPECT_THAT(small, Not(HasSubstr("top_confusions")));
  const bp::io::TestRecord record = many_classes(300);
  const std::string line = bp::io::to_json(record);
  EXPECT_THAT(line, Not(HasSubstr("\"confusion\"")));
  const std::vector<bp::io::Confusion> top = bp::io::top_confusions(record.confusion);
  ASSERT_EQ(top.size(), bp::io::kTopConfusions);
  EXPECT_EQ(top[0].true_class, 6);  // 6 mistakes, the most; ties in row order
  EXPECT_EQ(top[0].predicted, 7);
  EXPECT_EQ(top[0].count, 6);
  EXPECT_EQ(top[1].true_class, 13);
  for (std::size_t i = 1; i < top.size(); ++i) EXPECT_GE(top[i - 1].count, top[i].count);

  // Read back, written again: the same line; the report parser reads it too.
  const fs::path dir = fresh_dir("many_classes");
  { std::ofstream(dir / "metrics.jsonl") << line << "\n"; }
  const bp::io::Metrics read = bp::io::read_metrics((dir / "metrics.jsonl").string());
  ASSERT_TRUE(read.test.has_value());
  EXPECT_TRUE(read.test->confusion.empty());
  EXPECT_EQ(read.test->top_confusions.size(), bp::io::kTopConfusions);
  EXPECT_EQ(bp::io::to_json(*read.test), line);
  bp::io::ReportData data = bp::io::read_report_data((dir / "metrics.jsonl").string());
  const std::string html = bp::io::render_report(data, "", "t");
  EXPECT_EQ(check_tags(html), "");
  EXPECT_THAT(html, Not(HasSubstr("<table class=\"confusion\">")));
  EXPECT_THAT(html, HasSubstr("300 classes, more than 50"));
  EXPECT_THAT(html, HasSubstr("<tr><td>class 6</td><td>class 7</td><td>6</td></tr>"));
  EXPECT_THAT(html, HasSubstr("<tr><td>class 0</td><td>100.0%</td></tr>"));

  // A whole matrix of many classes (an older record, or one written by hand) renders the same way, and the
  // page grows linearly with the class count, not with its square.
  const auto page = [](std::size_t k) {
    bp::io::TestRecord r = many_classes(k);
    return bp::io::render_report(bp::io::parse_report_data(bp::io::to_json(r)), "", "t");
  };
  bp::io::ReportData whole;
  whole.test = bp::io::ReportTest{
      .loss = 1, .accuracy = 0.5, .confusion = record.confusion, .class_names = record.class_names};
  const std::string from_matrix = bp::io::render_report(whole, "", "t");
  EXPECT_THAT(from_matrix, HasSubstr("<tr><td>class 6</td><td>class 7</td><td>6</td></tr>"));
  EXPECT_THAT(from_matrix, Not(HasSubstr("<table class=\"confusion\">")));
  const double ratio = static_cast<double>(page(1200).size()) / static_cast<double>(page(600).size());
  EXPECT_LT(ratio, 2.5) << "a page of twice the classes should be at most about twice the size";
}

TEST(Report, ThumbnailsCarryTheRecordPixels) {
  const fs::path dir = fresh_dir("pixels");
  const std::vector<std::string> lines = write_synthetic_run(dir, {.epochs = 1, .misclassified = 3});
  const auto wrong = nlohmann::json::parse(lines.back())["misclassified"];
  const std::string html =
      bp::io::render_report(bp::io::read_report_data((dir / "metrics.jsonl").string()), "", "t");
  std::size_t at = 0;
  for (std::size_t i = 0; i < 3; ++i) {
    at = html.find("data:image/png;base64,", at);
    ASSERT_NE(at, std::string::npos) << "image " << i;
    at += 22;
    const Image img = decode_png(base64_decode(html.substr(at, html.find('"', at) - at)));
    ASSERT_EQ(img.width, 28);
    ASSERT_EQ(img.height, 28);
    ASSERT_EQ(img.channels, 1);
    for (std::size_t p = 0; p < 784; ++p)
      ASSERT_EQ(img.pixels[p], std::lround(wrong[i]["pixels"][p].get<double>() * 255))
          << "image " << i << " pixel " << p;
  }
}

TEST(Report, MissingPiecesBecomeNotes) {
  const fs::path dir = fresh_dir("sparse");
  write_synthetic_run(dir,
                      {.epochs = 4, .validation = false, .grad_flow = false, .test = false, .config = ""});
  bp::io::write_report(dir.string());
  const std::string html = slurp(dir / "report.html");
  EXPECT_EQ(check_tags(html), "");
  EXPECT_EQ(count_of(html, "<svg"), 2u);
  for (const char* text :
       {"No validation split", "No gradient-flow records", "No test record", "No config.toml"})
    EXPECT_NE(html.find(text), std::string::npos) << "missing: " << text;
  EXPECT_EQ(html.find(">validation<"), std::string::npos);
  EXPECT_EQ(html.find("Overfitting"), std::string::npos);
}

TEST(Report, EmptyMetricsStillGiveAPage) {
  const std::string html = bp::io::render_report(bp::io::parse_report_data("\n\n"), "", "empty");
  EXPECT_EQ(check_tags(html), "");
  EXPECT_NE(html.find("no epoch or test records"), std::string::npos);
  EXPECT_EQ(count_of(html, "<svg"), 0u);
}

TEST(Report, NotesNeedASustainedSignal) {
  // A validation loss that is lowest near the end (noise) is not called overfitting; a sustained rise is.
  auto page = [](const std::vector<double>& val) {
    std::string lines;
    for (std::size_t i = 0; i < val.size(); ++i)
      lines += "{\"epoch\": " + std::to_string(i + 1) +
               ", \"train_loss\": " + std::to_string(1.0 - 0.05 * i) +
               ", \"val_loss\": " + std::to_string(val[i]) + "}\n";
    return bp::io::render_report(bp::io::parse_report_data(lines), "", "t");
  };
  EXPECT_EQ(page({0.9, 0.8, 0.7, 0.75, 0.69, 0.72}).find("Overfitting"), std::string::npos);
  EXPECT_NE(page({0.9, 0.8, 0.7, 0.75, 0.78, 0.8}).find("Overfitting"), std::string::npos);
  // Gradient norms: a first layer 10x below the last at any record is flagged, a factor 3 is not.
  auto flow = [](double first) {
    return bp::io::render_report(
        bp::io::parse_report_data(
            "{\"type\": \"grad_flow\", \"epoch\": 1, \"step\": 5, \"layers\": [{\"name\": "
            "\"a\", \"grad_norm\": " +
            std::to_string(first) + "}, {\"name\": \"b\", \"grad_norm\": 1.0}]}\n"),
        "", "t");
  };
  EXPECT_NE(flow(0.05).find("Vanishing gradients: at step 5 (epoch 1)"), std::string::npos);
  EXPECT_EQ(flow(0.3).find("Vanishing"), std::string::npos);
  EXPECT_NE(flow(0.3).find("no vanishing gradients"), std::string::npos);
}

TEST(Report, MisclassifiedWithoutPixelsAreListed) {
  const fs::path dir = fresh_dir("nopixels");
  write_synthetic_run(dir, {.epochs = 2, .pixels = false, .misclassified = 5});
  const std::string html =
      bp::io::render_report(bp::io::read_report_data((dir / "metrics.jsonl").string()), "", "t");
  EXPECT_EQ(check_tags(html), "");
  EXPECT_EQ(count_of(html, "<img "), 0u);
  EXPECT_EQ(count_of(html, "<figcaption>"), 5u);
}

TEST(Report, ParsesRecordsNullsAndUnknownTypes) {
  const bp::io::ReportData d = bp::io::parse_report_data(
      "{\"type\": \"run\", \"anything\": [1, 2]}\n"
      "{\"epoch\": 1, \"train_loss\": 0.9, \"val_loss\": null, \"lr\": 0.1, \"updates\": 30}\n"
      "\n"
      "{\"type\": \"epoch\", \"epoch\": 2, \"train_loss\": 0.7, \"val_loss\": 0.8, \"val_accuracy\": 0.7}\n");
  ASSERT_EQ(d.epochs.size(), 2u);
  EXPECT_EQ(d.epochs[0].epoch, 1);
  EXPECT_DOUBLE_EQ(d.epochs[0].train_loss, 0.9);
  EXPECT_TRUE(std::isnan(d.epochs[0].val_loss));
  EXPECT_TRUE(std::isnan(d.epochs[0].train_accuracy));
  EXPECT_DOUBLE_EQ(d.epochs[1].val_accuracy, 0.7);
  EXPECT_FALSE(d.test.has_value());
  EXPECT_TRUE(d.grad_flow.empty());
}

TEST(Report, MalformedLinesNameTheLineNumber) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{\"epoch\": 1}\n{not json}\n", "m.jsonl line 2: not valid JSON"},
      {"\n\n[1, 2]\n", "m.jsonl line 3: expected a JSON object, got array"},
      {"{\"epoch\": 1, \"train_loss\": \"low\"}",
       "line 1: \"train_loss\" should be a number, got string \"low\""},
      {"{\"type\": \"epoch\", \"train_loss\": 1}", "line 1: an epoch record has no \"epoch\""},
      {"{\"epoch\": 1.5}", "\"epoch\" should be an integer"},
      {"{\"type\": \"grad_flow\", \"epoch\": 1, \"step\": 3}", "a grad_flow record has no \"layers\" array"},
      {"{\"type\": \"grad_flow\", \"epoch\": 1, \"step\": 3, \"layers\": [{\"name\": \"a\", \"grad_norm\": "
       "\"x\"}]}",
       "\"grad_norm\" should be a number"},
      {"{\"type\": \"test\", \"confusion\": [[1, 2], [3]]}",
       "confusion matrix should be square (2 x 2); row 1 is 1 long"},
      {"{\"type\": \"test\", \"confusion\": [[1, -2], [3, 4]]}", "confusion[0][1] should be a count"},
      {"{\"type\": \"test\", \"confusion\": [[1, 2], [3, 4]], \"class_names\": [\"a\", \"b\", \"c\"]}",
       "3 class_names for a 2 x 2 confusion matrix"},
      {"{\"type\": \"test\", \"confusion\": [[1, 2], [3, 4]], \"misclassified\": [{\"index\": 0, \"true\": "
       "5, "
       "\"predicted\": 1}]}",
       "misclassified[0] names class 5 but the confusion matrix has 2 classes"},
      {"{\"type\": \"test\", \"class_names\": [\"a\", \"b\"], \"top_confusions\": [{\"true\": 0, "
       "\"predicted\": "
       "2, \"count\": 1}]}",
       "top_confusions[0] names class 2 but there are 2 classes"},
      {"{\"type\": \"test\", \"class_names\": [\"a\", \"b\"], \"top_confusions\": [{\"true\": 0, \"count\": "
       "1}]}",
       "a top confusion has no \"predicted\""},
      {"{\"type\": \"test\", \"class_names\": [\"a\", \"b\"], \"per_class_accuracy\": [0.5]}",
       "per_class_accuracy has 1 entries for 2 classes"},
      {"{\"type\": \"test\", \"misclassified\": [{\"index\": 0, \"true\": 0, \"predicted\": 1, \"pixels\": "
       "[0.5, 2]}]}",
       "misclassified[0].pixels[1] = 2 is outside [0, 1]"},
      {"{\"type\": \"test\", \"misclassified\": [{\"index\": 0, \"true\": 0, \"predicted\": 1, \"pixels\": "
       "[0, 0, 1]}]}",
       "has 3 pixels, which is not a square image"},
      {"{\"type\": \"test\", \"misclassified\": [{\"index\": 0, \"true\": 0, \"predicted\": 1, \"pixels\": "
       "[0, 0, 1], "
       "\"shape\": [2, 2]}]}",
       "has 3 pixels but its shape is 2 x 2"},
  };
  for (const auto& [text, message] : cases) {
    try {
      bp::io::parse_report_data(text, "m.jsonl");
      ADD_FAILURE() << "no error for: " << text;
    } catch (const bp::FileError& e) {
      EXPECT_THAT(e.what(), HasSubstr(message)) << "for: " << text;
    }
  }
  // A last line cut off mid-write (no newline) is not there yet; the same text with its newline is an error.
  EXPECT_EQ(bp::io::parse_report_data("{\"epoch\": 1}\n{\"epoch\": 2, \"tra").epochs.size(), 1u);
  EXPECT_THROW(bp::io::parse_report_data("{\"epoch\": 1}\n{\"epoch\": 2, \"tra\n"), bp::FileError);
  // A non-square image is fine when its shape says so.
  const auto d = bp::io::parse_report_data(
      "{\"type\": \"test\", \"misclassified\": [{\"index\": 0, \"true\": 0, \"predicted\": 1, \"pixels\": "
      "[0, 0, 1, 1, "
      "0, 1], \"shape\": [2, 3]}]}");
  EXPECT_EQ(d.test->misclassified[0].width, 3);
}

TEST(Report, WriteReportErrorsNameTheFile) {
  EXPECT_THAT(
      [] { bp::io::write_report("/nonexistent/run"); },
      ::testing::ThrowsMessage<bp::FileError>(HasSubstr("run folder '/nonexistent/run' does not exist")));
  const fs::path empty = fresh_dir("nometrics");
  EXPECT_THAT([&] { bp::io::write_report(empty.string()); },
              ::testing::ThrowsMessage<bp::FileError>(HasSubstr((empty / "metrics.jsonl").string())));
  const fs::path bad = fresh_dir("badline");
  std::ofstream(bad / "metrics.jsonl")
      << "{\"epoch\": 1, \"train_loss\": 0.5}\n{\"epoch\": 2, \"train_loss\": [1]}\n";
  EXPECT_THAT([&] { bp::io::write_report(bad.string()); },
              ::testing::ThrowsMessage<bp::FileError>(
                  HasSubstr("metrics.jsonl line 2: \"train_loss\" should be a number")));
  EXPECT_FALSE(fs::exists(bad / "report.html"));
}

TEST(Report, RewritingReplacesThePage) {
  const fs::path dir = fresh_dir("rewrite");
  write_synthetic_run(dir, {.epochs = 3, .test = false});
  bp::io::write_report(dir.string());
  EXPECT_THAT(slurp(dir / "report.html"), Not(HasSubstr("Test loss")));
  write_synthetic_run(dir, {.epochs = 3, .test = true});
  bp::io::write_report(dir.string());
  EXPECT_THAT(slurp(dir / "report.html"), HasSubstr("Test loss"));
  EXPECT_EQ(entries(dir), (std::vector<std::string>{"config.toml", "metrics.jsonl", "report.html"}));
}

TEST(Png, RoundTripsGrayRgbAndRgba) {
  bp::Generator gen(11);
  for (int channels : {1, 3, 4}) {
    const std::int64_t w = 13, h = 7;
    std::vector<std::uint8_t> pixels(static_cast<std::size_t>(w * h * channels));
    for (auto& p : pixels) p = static_cast<std::uint8_t>(gen.below(256));
    const Image img = decode_png(bp::io::encode_png(pixels, w, h, channels));
    EXPECT_EQ(img.width, w);
    EXPECT_EQ(img.height, h);
    EXPECT_EQ(img.channels, channels);
    EXPECT_EQ(img.pixels, pixels) << channels << " channels";
  }
  EXPECT_THAT([] { bp::io::encode_png(std::vector<std::uint8_t>(10), 4, 4); },
              ::testing::ThrowsMessage<bp::ValueError>(
                  HasSubstr("10 bytes for a 4 x 4 image with 1 channels (expected 16)")));
  EXPECT_THAT([] { bp::io::encode_png({}, 0, 4); },
              ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("0 x 4")));
  EXPECT_THAT([] { bp::io::encode_png({1}, 1, 1, 2); },
              ::testing::ThrowsMessage<bp::ValueError>(HasSubstr("2 channels")));
}

TEST(HtmlCheck, CatchesUnbalancedAndStrayTags) {
  EXPECT_EQ(check_tags("<p><b>x</b></p><img src=\"a\"><br>"), "");
  EXPECT_THAT(check_tags("<p><b>x</p>"), HasSubstr("closes <b>"));
  EXPECT_THAT(check_tags("<pre>a < b</pre>"), HasSubstr("does not start a tag"));
  EXPECT_THAT(check_tags("<div>"), HasSubstr("never closed"));
}

TEST(Report, FirstLayerFiltersAreDrawnFromTheFirstConvolution) {
  // Two 4-D weights: "2.weight" comes first in the network (numeric order, not the text order of "10" < "2").
  std::map<std::string, bp::Tensor> state;
  state["10.weight"] = bp::zeros({4, 3, 3, 3});
  state["2.weight"] = bp::arange(0, 2 * 2 * 3 * 2).reshape({2, 2, 3, 2});  // 2 filters over 2 channels, 3x2
  state["0.weight"] = bp::zeros({5, 4});                                   // a dense layer: not a filter
  const auto f = bp::io::first_filters(state);
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->name, "2.weight");
  EXPECT_EQ(f->shape, (std::vector<std::int64_t>{2, 2, 3, 2}));
  EXPECT_FALSE(bp::io::first_filters({{"0.weight", bp::zeros({5, 4})}}).has_value());

  bp::io::ReportData data;
  data.filters = f;
  const std::string html = bp::io::render_report(data, "", "t");
  EXPECT_EQ(check_tags(html), "");
  EXPECT_THAT(html, HasSubstr("First-layer filters"));
  EXPECT_THAT(html, HasSubstr("the mean over 2 input channels"));
  // Filter 0 is the mean of 0..5 and 6..11: 3..8, rising in row-major order, drawn black to white.
  const std::size_t at = html.find("data:image/png;base64,", html.find("id=\"filters\"")) + 22;
  const Image img = decode_png(base64_decode(html.substr(at, html.find('"', at) - at)));
  ASSERT_EQ(img.width, 2);
  ASSERT_EQ(img.height, 3);
  EXPECT_EQ(img.pixels.front(), 0);
  EXPECT_EQ(img.pixels.back(), 255);
  EXPECT_EQ(img.pixels[1], 51);  // (4 - 3) / 5 of the way
  // Without filters the section is absent, not an empty heading.
  EXPECT_THAT(bp::io::render_report({}, "", "t"), Not(HasSubstr("First-layer filters")));
}
