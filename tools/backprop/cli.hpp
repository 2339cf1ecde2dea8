// The subcommands of the `backprop` tool, each a function from parsed arguments to an exit code. main.cpp
// parses the command line (CLI11) into these structs; each command calls the library and prints.
//
// Exit codes: 0 success; 1 an internal error (a bug); 2 a usage or configuration error (a bad flag, key or
// value, or a network estimated not to fit in memory); 3 a data or model file that cannot be read or does not
// fit; 4 training diverged (the loss or a gradient became NaN or infinite); 5 out of memory (an allocation the
// system refused, with its size); 130 / 143 training interrupted by SIGINT / SIGTERM
// (backprop/train/signals.hpp).
// Commands signal errors by throwing: ConfigError / ValueError -> 2, FileError -> 3, DivergedError -> 4,
// OutOfMemoryError / std::bad_alloc -> 5.
#pragma once

#include <backprop/config.hpp>
#include <backprop/train/run.hpp>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

namespace cli {

enum Exit : int { kOk = 0, kInternal = 1, kUsage = 2, kData = 3, kDiverged = 4, kOutOfMemory = 5 };

/// A configuration key set on the command line: flags override the --config file (or the checkpoint's
/// configuration when resuming).
using Override = backprop::train::Override;

struct TrainArgs {
  std::string config_file;          // --config
  std::vector<Override> overrides;  // flags, in key-table order
  std::string out;                  // --out
  std::string resume;               // --resume
  bool overwrite = false;           // --overwrite: replace the run in --out once the new one has finished
  bool print_config = false;
  bool quiet = false;
  bool json = false;
};

struct EvalArgs {
  std::string model;
  std::string data;    // fashion-mnist, IDX directory or CSV file
  std::string target;  // CSV target column (default: the model's)
  std::string split = "test";
  std::int64_t limit = 0;
  bool json = false;
};

struct PredictArgs {
  std::string model;
  std::string input;   // CSV or IDX images file
  std::string output;  // write predictions here instead of stdout
  std::int64_t limit = 0;
  bool json = false;
  bool force = false;  // --force: --output may replace a file of another kind
};

struct ExportArgs {
  std::string model;
  std::string onnx;    // --onnx OUT.onnx
  bool force = false;  // --force: --onnx may replace a file of another kind
  bool quiet = false;
};

struct InfoArgs {
  std::string file;
  bool json = false;
};

struct ExplainArgs {
  std::string graph;  // DOT output path, or empty for none
  int repeated = 0;   // > 0: show the dynamic-programming counts up to this N instead of the worked example
  double lr = 0.5;    // eta of the update
  std::uint64_t seed = 1;
  bool conv = false;   // --conv: one convolution layer's step instead of the dense network's
  bool json = false;   // one JSON object on `out` instead of text
  bool force = false;  // --force: --graph (and its .svg) may replace a file of another kind
};

/// `backprop train`: train::run (backprop/train/run.hpp); returns an exit code or throws (see the file
/// comment).
int run_train(const TrainArgs& args);
int run_eval(const EvalArgs& args);
int run_predict(const PredictArgs& args);
int run_info(const InfoArgs& args);
/// `backprop export MODEL --onnx OUT.onnx` (backprop/io/onnx.hpp).
int run_export(const ExportArgs& args);
/// `backprop report RUN_DIR`: rebuilds RUN_DIR/report.html.
int run_report(const std::string& run_dir, bool quiet);
/// `backprop explain` (backprop/explain.hpp): prints to `out` and returns 0 when every number agreed with the
/// engine, 1 when not (a bug). Prints its own errors ("backprop: error: ...") and returns 2 for a bad flag or
/// a --graph that would replace a file of another kind without --force, 3 when the graph cannot be written.
int run_explain(const ExplainArgs& args, std::ostream& out);

}  // namespace cli
