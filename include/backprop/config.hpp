// backprop/config.hpp — the configuration of a training run, as a struct and as TOML.
//
// Every choice `backprop train` offers is one key of Config, with one name in a TOML file ("optimizer.lr")
// and one command-line flag ("--lr"). The key table (keys()) is the single place that knows a key's type,
// range, allowed values and help text: the TOML reader, the flag parser and `--print-config` all go through
// it, so a value is checked the same way wherever it comes from, and every error names the key (or flag) and
// what was expected.
//
// Example:
//   bp::config::Config cfg = bp::config::load_toml("run.toml");          // defaults, then the file
//   bp::config::set(cfg, "optimizer.lr", "0.01", "--lr");                 // a flag overrides the file
//   bp::config::validate(cfg);                                            // cross-key checks
//   bp::config::fit_to_data(cfg, {.rows = 150, .features = 4, .classes = 3}, {"optimizer.lr"});
//   std::cout << bp::config::to_toml(cfg);                                // parses back to the same Config
//
// Example file:
//   [model]
//   layers = [256, 128]
//   activation = "relu"
//   [optimizer]
//   name = "adam"
//   lr = 1e-3
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace backprop::config {

/// Where the examples come from and how they are prepared.
struct DataConfig {
  std::string source = "fashion-mnist";  // "fashion-mnist", a directory of IDX files, or a .csv file
  std::string test;                      // test data; "" = the IDX directory's t10k split (none for CSV)
  std::string target;                    // CSV target column, a name or 0-based index; "" = last column
  std::string task = "classification";   // "classification" or "regression" (CSV only)
  double val_split = 0.1;                // fraction of the training examples held out for validation
  std::int64_t limit_train = 0;          // use only the first N training examples (0 = all)
  std::int64_t limit_test = 0;           // use only the first N test examples (0 = all)
  bool standardize = true;               // CSV: standardise features with the training split's mean/std
  std::string augment;  // image data: training-batch augmentation, e.g. "crop,flip"; "" = none
};

/// One option of a layer table, as written: `out = 32`, `kernel = [3, 5]`, `padding = "same"`, `p = 0.3`.
using LayerOption = std::variant<bool, std::int64_t, double, std::string, std::vector<std::int64_t>>;

/// One layer of a network given as data: a `[[model.layer]]` table of a run config. layer_types() lists the
/// types and their options; the network is built from the list by io::build_network (model_file.hpp).
struct LayerSpec {
  std::string type;                            // "conv2d", "dense", "relu", ...
  std::map<std::string, LayerOption> options;  // checked against the type's table; absent options default
  bool operator==(const LayerSpec&) const = default;
};

/// The network. `arch` = "mlp" (the default) is a stack of dense layers described by the keys below;
/// "lenet5" and "cnn" are preset layer lists (preset_layers) for images; "custom" is the list of
/// `[[model.layer]]` tables in `layer` (a file that has such tables gets "custom" when it does not say).
struct ModelConfig {
  std::string arch = "mlp";
  std::vector<LayerSpec> layer;
  std::vector<std::int64_t> layers{256, 128};  // hidden layer widths; empty = a linear model
  std::string activation = "relu";             // sigmoid | tanh | relu | leaky_relu
  bool batchnorm = false;                      // BatchNorm1d after each hidden Linear, before the activation
  double dropout = 0.2;                        // Dropout after each hidden activation (0 = none)
  double dropconnect = 0.0;                    // DropConnect instead of Linear in hidden layers (0 = none)
  std::string init = "auto";  // auto | kaiming_uniform | kaiming_normal | xavier_uniform | xavier_normal
  /// Under `mpirun -np K` (K > 1): batch-norm statistics over the global batch (dist::SyncBatchNorm1d and
  /// SyncBatchNorm2d) instead of each rank's shard. One process: the same as batchnorm (its batch is the
  /// global batch). Needs batchnorm (mlp) or a "batchnorm" layer in the layer list (lenet5 has none).
  bool sync_batchnorm = false;
};

/// The cost and how gradient descent visits the data.
struct TrainConfig {
  std::string loss = "auto";            // auto | cross-entropy | mse (auto: cross-entropy or mse by task)
  std::int64_t batch_size = 128;        // examples per update; 1 = stochastic; 0 = full batch ("full")
  std::string grad_reduction = "mean";  // mean | sum of the per-example gradients of a batch
  std::int64_t epochs = 30;             // passes over the training data
  std::int64_t early_stopping = 0;      // patience in epochs on the validation loss (0 = off)
  double l1 = 0.0;                      // l1 * sum |w| added to the cost (weights, not biases)
  double l2 = 0.0;                      // l2 * 1/2 sum w^2 added to the cost (weights, not biases)
  double clip_grad_norm = 0.0;          // rescale gradients to this global L2 norm (0 = off)
};

struct OptimizerConfig {
  std::string name = "adam";  // sgd | momentum | nesterov | adam | adamw | rmsprop
  double lr = 0.001;          // learning rate eta (about 0.05 suits sgd / momentum / nesterov)
  /// mu, for momentum, nesterov and rmsprop. Until it is set (set() or a TOML file, in any order), it follows
  /// the optimiser: 0.9 for momentum and nesterov, 0 for rmsprop (as PyTorch and Keras do).
  double momentum = 0.9;
  bool momentum_given = false;  // set by set() / the TOML reader when optimizer.momentum is given
  double weight_decay = 0.0;    // the optimiser's weight decay (decoupled for adamw)
  /// none | cosine | step[:EPOCHS[:GAMMA]] | exponential[:GAMMA] | warmup[:EPOCHS]
  std::string schedule = "cosine";
};

struct RunSection {
  std::uint64_t seed = 1;             // weights, dropout masks, data order, validation split
  std::int64_t threads = 0;           // kernel and BLAS threads (0 = the library's default)
  std::int64_t checkpoint_every = 0;  // write a checkpoint every N epochs (0 = never)
  std::int64_t grad_flow = 100;       // record per-layer gradient norms every N updates (0 = off)
  /// Anomaly mode (backprop/anomaly.hpp): every op checks its output and every backward its gradients, so a
  /// divergence names the op that produced the first NaN/Inf. Costs one pass over every tensor.
  bool detect_anomaly = false;
  /// Warm start: a model file whose weights the new run starts from (its network must be the one this run
  /// builds). Unlike a resume, the run itself is new: epochs, optimiser state and schedule start at zero.
  std::string init_from;
};

struct Config {
  DataConfig data;
  ModelConfig model;
  TrainConfig train;
  OptimizerConfig optimizer;
  RunSection run;
};

/// What the key table knows about one key, for help texts and documentation.
struct KeyInfo {
  std::string key;                   // "optimizer.lr"
  std::string flag;                  // "--lr"
  std::string type;                  // "number", "integer", "boolean", "string", "list of integers", ...
  std::string expects;               // "a number > 0", "one of: sgd, momentum, ...", ...
  std::string help;                  // one line
  std::vector<std::string> choices;  // the allowed values of a string key (empty: any text)
};

/// Every key, in the order of to_toml().
const std::vector<KeyInfo>& keys();

/// A value flag of a command other than `train` ("eval --limit", "explain --seed"). Its range sits in the same
/// table as the keys' (the same range as train's key for the same thing: `eval --limit` as data.limit_test),
/// so it is checked by the same rule and a mistake gets a message of the same form.
struct CommandFlag {
  std::string command;               // "eval"
  std::string flag;                  // "--limit"
  std::string type;                  // "integer", "number" or "string"
  std::string expects;               // "an integer >= 0 and at most 1000000000000"
  std::string help;                  // one line
  std::vector<std::string> choices;  // the allowed values of a string flag
};

/// Every value flag of the commands other than `train`.
const std::vector<CommandFlag>& command_flags();

/// Reads the text given to `command`'s `flag` (an integer, number or string flag of command_flags()) and
/// checks it as set() checks a key. Throws ConfigError "--limit: expected an integer >= 0 and at most
/// 1000000000000, got '-1'"; ConfigError naming the flag when it is not in the table or not of that type.
std::int64_t flag_integer(const std::string& command, const std::string& flag, const std::string& text);
double flag_number(const std::string& command, const std::string& flag, const std::string& text);
std::string flag_text(const std::string& command, const std::string& flag, const std::string& text);

/// Checks a number already held (an argument struct filled by a program, not parsed from text) against
/// `command`'s `flag`. Throws ConfigError "--lr: expected a number > 0 and at most 1000000, got inf".
void check_flag(const std::string& command, const std::string& flag, double value);

/// Sets `key` from text as typed on a command line ("0.01", "256,128", "full", "true"). Checks the type and
/// range. Throws ConfigError "<origin>: expected <what>, got '<text>'" (origin is typically the flag), or
/// naming the closest known key when `key` is unknown.
void set(Config& config, const std::string& key, const std::string& text, const std::string& origin);

/// The value of `key` as TOML text ("0.05", "[256, 128]", "\"relu\""). Throws ConfigError on an unknown key.
std::string get(const Config& config, const std::string& key);

/// Parses TOML text over the defaults. `source` names the text in messages (a file name). When `keys_set` is
/// given, the keys the text sets ("train.epochs", ...) are appended to it (see fit_to_data). Throws
/// ConfigError: "<source>:<line>:<column>: TOML syntax error: ..."; an unknown section or key, with a
/// did-you-mean suggestion; a value of the wrong type or out of range, naming the key, the expected type or
/// range and the value found.
Config parse_toml(std::string_view text, const std::string& source = "config",
                  std::vector<std::string>* keys_set = nullptr);

/// Reads and parses a TOML file (FileError if it cannot be read, ConfigError as parse_toml).
Config load_toml(const std::string& path, std::vector<std::string>* keys_set = nullptr);

/// The whole configuration as TOML, one commented line per key, sections in the order of Config. Parsing the
/// result gives back an equal Config.
std::string to_toml(const Config& config);

/// What one option of a layer type accepts.
struct LayerOptionInfo {
  std::string name;      // "kernel"
  std::string expects;   // "an integer >= 1 or a list of two"
  std::string fallback;  // the default as TOML text, "" when the option is required, "-" when it follows
                         // another option or the data (dense's `out` on the last layer: the outputs)
};
/// A layer type of `[[model.layer]]` tables and its options.
struct LayerTypeInfo {
  std::string type;  // "conv2d"
  std::string help;  // one line
  std::vector<LayerOptionInfo> options;
};
/// Every layer type, in the order docs/cli.md lists them.
const std::vector<LayerTypeInfo>& layer_types();

/// The layer list of a preset: "lenet5" or "cnn". Throws ConfigError for another name.
std::vector<LayerSpec> preset_layers(const std::string& arch);

/// The layer list `config` describes when its arch is not "mlp": the preset's or the `[[model.layer]]` tables.
/// Empty for "mlp".
std::vector<LayerSpec> network_layers(const ModelConfig& config);

/// Checks one layer table: a known type, known options of the right kind and range. `where` starts the
/// message ("run.toml:12:1: model.layer #3"). Throws ConfigError naming the type, the option, what it expects
/// and what was found, with a did-you-mean for a misspelt type or option.
void check_layer(const LayerSpec& layer, const std::string& where);

/// Cross-key checks that single keys cannot make: the loss fits the task, nesterov needs momentum,
/// the schedule's arguments, early stopping needs a validation split. Throws ConfigError naming the keys.
void validate(const Config& config);

/// What fit_to_data knows of the training data (its present rules read only `rows`).
struct DataShape {
  std::int64_t rows = 0;      // training examples before the validation split
  std::int64_t features = 0;  // inputs per example
  std::int64_t classes = 0;   // classification: the number of classes; regression: 0
};

/// The choices fit_to_data made.
struct FittedDefaults {
  /// One phrase per key it set: "batch 16", "200 epochs (2000 updates)", ...
  std::vector<std::string> choices;
  /// "defaults for 150 rows: batch 16, up to 200 epochs, ..." (for a log line); "" when nothing changed.
  std::string summary;
};

/// Adapts the defaults that were written for Fashion-MNIST's 60,000 images to the size of the data, for the
/// keys the user did not give (`given`: the keys a configuration file or a flag set; those are left alone).
/// With n = shape.rows:
///   train.batch_size      128, or the largest power of two <= n / 32 when smaller, but at least 16
///   data.val_split        0 up to 1,000 rows (a tenth of a small table is too few rows to judge by, and
///                         too many to lose from training); else unchanged
///   train.epochs          enough for about 5,000 updates, between 30 and 200
/// From 4,096 rows the batch stays 128, and from 23,610 rows (with the 0.1 validation split) nothing changes:
/// Fashion-MNIST trains exactly as configured. Writes the choices into `config`, so that to_toml() records
/// them: a run started from that file, where every key is given, repeats the run. Throws ConfigError when
/// rows < 1 or `given` holds an unknown key.
FittedDefaults fit_to_data(Config& config, const DataShape& shape, const std::vector<std::string>& given);

/// The defaults of an image preset (model.arch "lenet5" or "cnn") for the keys the user did not give:
///   train.epochs          15 (the presets are measured at 15 epochs; see docs/cli.md)
///   train.batch_size      cnn: 64
///   data.augment          cnn: "flip" (when `images`: the training data are images, not table rows)
/// Writes them into `config`, as fit_to_data does, and says what it chose ("defaults for the cnn preset: 15
/// epochs, batch 64, augment flip"); nothing for "mlp" and "custom". Throws ConfigError when `given` holds an unknown key.
FittedDefaults preset_defaults(Config& config, const std::vector<std::string>& given, bool images);

/// The parsed form of OptimizerConfig::schedule.
struct Schedule {
  std::string kind = "none";  // none | cosine | step | exponential | warmup
  std::int64_t epochs = 0;    // step: epochs between decays; warmup: warm-up epochs
  double gamma = 0.0;         // step / exponential: the factor
};
/// Parses a schedule text ("step:10:0.5"), filling defaults (step: 10 epochs, gamma 0.1; exponential: 0.95;
/// warmup: 5 epochs). Throws ConfigError naming `origin` and the accepted forms.
Schedule parse_schedule(const std::string& text, const std::string& origin = "optimizer.schedule");

/// The candidate closest to `word` by edit distance, if close enough to be a likely typo (distance at most
/// max(2, |word| / 3)); otherwise "". Used for "did you mean" hints on keys, flags and choices.
std::string closest(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace backprop::config
