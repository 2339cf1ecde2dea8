// backprop/io/report.hpp — the HTML training report of a run folder.
//
// write_report() reads RUN_DIR/metrics.jsonl (one JSON object per line, the format docs/report.md specifies)
// and RUN_DIR/config.toml, and writes RUN_DIR/report.html: one self-contained page (inline SVG charts, inline
// CSS, images as data: PNGs; no script, no network) with the train and validation loss and accuracy curves,
// the per-layer gradient norms over time on a log scale, the test confusion matrix, a grid of misclassified
// test images and the run's config. A missing piece (no validation split, no gradient-flow records, no test
// record, no config) becomes a short note in its place.
//
// Example:
//   bp::io::write_report("runs/2024-05-01-fashion");        // -> runs/2024-05-01-fashion/report.html
//   bp::io::ReportData data = bp::io::read_report_data("runs/x/metrics.jsonl");   // or build it in memory
//   std::string html = bp::io::render_report(data, "lr = 0.1\n", "my run");
#pragma once

#include <backprop/io/metrics.hpp>
#include <backprop/tensor.hpp>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace backprop::io {

/// One epoch's record. A figure the record lacks (or gives as null) is NaN and is left out of the charts.
struct ReportEpoch {
  std::int64_t epoch = 0;
  double train_loss = std::numeric_limits<double>::quiet_NaN();
  double train_accuracy = std::numeric_limits<double>::quiet_NaN();
  double val_loss = std::numeric_limits<double>::quiet_NaN();
  double val_accuracy = std::numeric_limits<double>::quiet_NaN();
  double lr = std::numeric_limits<double>::quiet_NaN();
  double seconds = std::numeric_limits<double>::quiet_NaN();
};

/// One layer in a gradient-flow record.
struct ReportLayer {
  std::string name;                                               // e.g. "0.weight"
  double grad_norm = std::numeric_limits<double>::quiet_NaN();    // ||dC/dW||_2
  double weight_norm = std::numeric_limits<double>::quiet_NaN();  // ||W||_2
  std::string activation;                                         // "sigmoid", "relu", ... or ""
  double saturated_fraction = std::numeric_limits<double>::quiet_NaN();
  double dead_fraction = std::numeric_limits<double>::quiet_NaN();
};

/// Per-layer figures measured at one update.
struct ReportGradFlow {
  std::int64_t epoch = 0;
  std::int64_t step = 0;  // global update count
  std::vector<ReportLayer> layers;
};

/// A test example the model got wrong. pixels (row-major, 0 = black .. 1 = white) may be empty.
struct ReportMisclassified {
  std::int64_t index = 0;  // position in the test set
  std::int64_t true_class = 0;
  std::int64_t predicted = 0;
  std::vector<double> pixels;
  std::int64_t height = 0;  // image size (28 x 28 for 784 pixels), 0 without pixels
  std::int64_t width = 0;
};

/// The test-set evaluation.
struct ReportTest {
  double loss = std::numeric_limits<double>::quiet_NaN();
  double accuracy = std::numeric_limits<double>::quiet_NaN();
  std::vector<std::vector<std::int64_t>> confusion;  // [true class][predicted class], square
  std::vector<std::string> class_names;              // one per class ("0", "1", ... when the record has none)
  std::vector<ReportMisclassified> misclassified;
  std::vector<double> per_class_accuracy;  // one per class (NaN: no example), or empty
  std::vector<Confusion> top_confusions;   // a record of more than kFullConfusionClasses classes
};

/// The filters of a network's first convolution, drawn as small images: weight [out, in, kh, kw].
struct ReportFilters {
  std::string name;                 // the tensor's name, e.g. "1.weight"
  std::vector<std::int64_t> shape;  // [out, in, kh, kw]
  std::vector<double> values;       // row-major, numel(shape) values
};

/// Everything a report shows, as read from metrics.jsonl (and, for the filters, the run's model file).
struct ReportData {
  std::vector<ReportEpoch> epochs;
  std::vector<ReportGradFlow> grad_flow;
  std::optional<ReportTest> test;        // the last test record, if any
  std::optional<ReportFilters> filters;  // a convolutional network's first-layer filters, if any
};

/// The first 4-D weight of a model's state (a convolution's [out, in, kh, kw]) in the order of the module's
/// parameters ("0.weight" before "3.weight", numerically), or nothing for a network without convolutions.
std::optional<ReportFilters> first_filters(const std::map<std::string, Tensor>& state);

/// Parses a metrics.jsonl file for the report (the record format of backprop/io/metrics.hpp, plus the test
/// record's "misclassified" examples). Blank lines, records of an unknown "type", and a last line that lacks
/// its newline and is not valid JSON (a record still being written, or cut off by a crash) are skipped.
/// Throws FileError naming the file and the 1-based line number when a line is not a JSON object, a field has
/// the wrong type (e.g. "train_loss" a string), an epoch record lacks "epoch", a confusion matrix is not
/// square or does not match class_names, a misclassified or top-confusion class is outside the classes, a
/// per_class_accuracy list does not have one entry per class, or pixels are
/// outside [0, 1] or not a square image (give "shape": [height, width] for non-square images). Throws
/// FileError when the file cannot be read.
ReportData read_report_data(const std::string& path);

/// Parses metrics.jsonl content already in memory; `source` names it in error messages.
ReportData parse_report_data(const std::string& text, const std::string& source = "metrics.jsonl");

/// The report page for `data`, with `config` (TOML text, shown verbatim and HTML-escaped; empty: a note) and
/// `title` (escaped). Always a complete page, whatever is missing from `data`. Its size grows linearly with the
/// class count: beyond kFullConfusionClasses classes the test section shows the kTopConfusions largest
/// confusions and a per-class accuracy table instead of the whole matrix.
std::string render_report(const ReportData& data, const std::string& config, const std::string& title);

/// Reads RUN_DIR/metrics.jsonl, RUN_DIR/config.toml (optional) and the first-layer filters of
/// RUN_DIR/model.safetensors (when the run has finished and its network has convolutions) and writes RUN_DIR/report.html crash-safely
/// (temporary file, fsync, rename). Throws FileError when RUN_DIR or metrics.jsonl is missing or malformed
/// (see read_report_data) or the page cannot be written.
void write_report(const std::string& run_dir);

/// An 8-bit PNG (grayscale when channels is 1, RGB when 3, RGBA when 4) of width x height pixels given row by
/// row, compressed with zlib. Throws ValueError when pixels.size() != width * height * channels or a size is
/// 0.
std::string encode_png(const std::vector<std::uint8_t>& pixels, std::int64_t width, std::int64_t height,
                       int channels = 1);

}  // namespace backprop::io
