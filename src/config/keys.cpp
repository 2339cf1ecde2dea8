// The key table: every configuration key, its flag, type, range and help, in one place.
#include "config/keys.hpp"

#include <algorithm>
#include <backprop/error.hpp>
#include <backprop/explain.hpp>
#include <charconv>
#include <cmath>
#include <limits>
#include <set>

namespace backprop::config::detail {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
// The largest learning rate, penalty or norm the keys take: well beyond any useful value, and small enough
// that the products training forms with it in float32 (lr * gradient, l2 * weight) stay finite.
constexpr double kMaxFactor = 1e6;
// The most examples a --limit flag takes; the largest seed (2^53: exact in a double, in JSON and in TOML).
constexpr double kMaxLimit = 1e12;
constexpr double kMaxSeed = 9007199254740992.0;
// The widest hidden layer (--layers): a million units after 784 inputs is already 784 million weights.
constexpr double kMaxWidth = 1e6;

// A field of Config as a typed reference, for the table's get/put.
template <class T>
using Field = std::function<T&(Config&)>;

template <class T>
KeyDef make(std::string key, std::string flag, Kind kind, std::string help, Field<T> field) {
  KeyDef d;
  d.key = std::move(key);
  d.flag = std::move(flag);
  d.kind = kind;
  d.help = std::move(help);
  d.get = [field](const Config& c) { return Value(T(field(const_cast<Config&>(c)))); };
  d.put = [field](Config& c, const Value& v) { field(c) = std::get<T>(v); };
  return d;
}

KeyDef range(KeyDef d, double lo, double hi, bool lo_open = false, bool hi_open = false) {
  d.lo = lo;
  d.hi = hi;
  d.has_lo = lo > -kInf;
  d.has_hi = hi < kInf;
  d.lo_open = lo_open;
  d.hi_open = hi_open;
  return d;
}

KeyDef choices(KeyDef d, std::vector<std::string> allowed) {
  d.choices = std::move(allowed);
  return d;
}

KeyDef real(std::string key, std::string flag, std::string help, Field<double> f, double lo, double hi,
            bool lo_open = false, bool hi_open = false) {
  return range(make<double>(std::move(key), std::move(flag), Kind::real, std::move(help), std::move(f)), lo,
               hi, lo_open, hi_open);
}

KeyDef integer(std::string key, std::string flag, std::string help, Field<std::int64_t> f, double lo,
               double hi) {
  return range(
      make<std::int64_t>(std::move(key), std::move(flag), Kind::integer, std::move(help), std::move(f)), lo,
      hi);
}

KeyDef text(std::string key, std::string flag, std::string help, Field<std::string> f,
            std::vector<std::string> allowed = {}) {
  return choices(
      make<std::string>(std::move(key), std::move(flag), Kind::text, std::move(help), std::move(f)),
      std::move(allowed));
}

KeyDef boolean(std::string key, std::string flag, std::string help, Field<bool> f) {
  return make<bool>(std::move(key), std::move(flag), Kind::boolean, std::move(help), std::move(f));
}

// The momentum an optimiser gets when optimizer.momentum is not given: PyTorch's and Keras's RMSprop use none.
double default_momentum(const std::string& optimizer) {
  return optimizer == "rmsprop" ? 0.0 : 0.9;
}

std::vector<KeyDef> build() {
  std::vector<KeyDef> t;
  // [data]
  t.push_back(text("data.source", "--data",
                   "training data: fashion-mnist, a directory of IDX files, or a .csv file",
                   [](Config& c) -> std::string& { return c.data.source; }));
  t.push_back(
      text("data.test", "--test-data",
           "test data (.csv, or an IDX directory); empty: the IDX directory's t10k files, none for CSV",
           [](Config& c) -> std::string& { return c.data.test; }));
  t.push_back(text("data.target", "--target", "CSV target column, by name or 0-based index (empty: the last)",
                   [](Config& c) -> std::string& { return c.data.target; }));
  t.push_back(text("data.task", "--task", "what the CSV target holds",
                   [](Config& c) -> std::string& { return c.data.task; }, {"classification", "regression"}));
  t.push_back(real(
      "data.val_split", "--val-split", "fraction of the training data held out for validation",
      [](Config& c) -> double& { return c.data.val_split; }, 0.0, 1.0, false, true));
  t.push_back(integer(
      "data.limit_train", "--limit-train", "use only the first N training examples (0: all)",
      [](Config& c) -> std::int64_t& { return c.data.limit_train; }, 0, kMaxLimit));
  t.push_back(integer(
      "data.limit_test", "--limit-test", "use only the first N test examples (0: all)",
      [](Config& c) -> std::int64_t& { return c.data.limit_test; }, 0, kMaxLimit));
  t.push_back(
      boolean("data.standardize", "--standardize",
              "CSV: standardise features with the training split's mean and std (--no-standardize: off)",
              [](Config& c) -> bool& { return c.data.standardize; }));
  t.push_back(text("data.augment", "--augment",
                   "image augmentation of the training batches: a comma-separated list of crop, flip, erase "
                   "(empty: none)",
                   [](Config& c) -> std::string& { return c.data.augment; }));
  // [model]
  t.push_back(
      text("model.arch", "--arch",
           "the network: mlp (dense layers, the keys below), the image presets lenet5 and cnn, or custom "
           "([[model.layer]] tables)",
           [](Config& c) -> std::string& { return c.model.arch; }, {"mlp", "lenet5", "cnn", "custom"}));
  t.push_back(range(
      make<std::vector<std::int64_t>>("model.layers", "--layers", Kind::int_list,
                                      "hidden layer widths, e.g. 256,128 (none: a linear model)",
                                      [](Config& c) -> std::vector<std::int64_t>& { return c.model.layers; }),
      1, kMaxWidth));
  t.push_back(text("model.activation", "--activation", "activation after each hidden layer",
                   [](Config& c) -> std::string& { return c.model.activation; },
                   {"sigmoid", "tanh", "relu", "leaky_relu"}));
  t.push_back(boolean("model.batchnorm", "--batchnorm", "batch normalisation before each hidden activation",
                      [](Config& c) -> bool& { return c.model.batchnorm; }));
  t.push_back(boolean(
      "model.sync_batchnorm", "--sync-batchnorm",
      "under mpirun: batch-norm statistics over the global batch, not each rank's shard (needs --batchnorm, "
      "or a batchnorm layer in a layer list)",
      [](Config& c) -> bool& { return c.model.sync_batchnorm; }));
  t.push_back(real(
      "model.dropout", "--dropout", "dropout probability after each hidden activation",
      [](Config& c) -> double& { return c.model.dropout; }, 0.0, 1.0, false, true));
  t.push_back(real(
      "model.dropconnect", "--dropconnect",
      "DropConnect probability on the weights of hidden layers (replaces Linear)",
      [](Config& c) -> double& { return c.model.dropconnect; }, 0.0, 1.0, false, true));
  t.push_back(text("model.init", "--init",
                   "weight initialisation (auto: Kaiming for ReLU-like, Xavier for sigmoid/tanh)",
                   [](Config& c) -> std::string& { return c.model.init; },
                   {"auto", "kaiming_uniform", "kaiming_normal", "xavier_uniform", "xavier_normal"}));
  // [train]
  t.push_back(text("train.loss", "--loss",
                   "cost (auto: cross-entropy for classification, mse for regression)",
                   [](Config& c) -> std::string& { return c.train.loss; }, {"auto", "cross-entropy", "mse"}));
  t.push_back(range(make<std::int64_t>("train.batch_size", "--batch-size", Kind::batch,
                                       "examples per update: 1 = stochastic, full = batch gradient descent",
                                       [](Config& c) -> std::int64_t& { return c.train.batch_size; }),
                    1, 1e9));
  t.push_back(text("train.grad_reduction", "--grad-reduction", "combine a batch's gradients by mean or sum",
                   [](Config& c) -> std::string& { return c.train.grad_reduction; }, {"mean", "sum"}));
  t.push_back(integer(
      "train.epochs", "--epochs", "passes over the training data",
      [](Config& c) -> std::int64_t& { return c.train.epochs; }, 1, 1e6));
  t.push_back(integer(
      "train.early_stopping", "--early-stopping",
      "stop after PATIENCE epochs without a better validation loss (0: off)",
      [](Config& c) -> std::int64_t& { return c.train.early_stopping; }, 0, 1e6));
  t.push_back(real(
      "train.l1", "--l1", "L1 penalty l1 * sum |w| on weights",
      [](Config& c) -> double& { return c.train.l1; }, 0.0, kMaxFactor));
  t.push_back(real(
      "train.l2", "--l2", "L2 penalty l2 * 1/2 sum w^2 on weights",
      [](Config& c) -> double& { return c.train.l2; }, 0.0, kMaxFactor));
  t.push_back(real(
      "train.clip_grad_norm", "--clip-grad-norm", "clip the global gradient norm (0: off)",
      [](Config& c) -> double& { return c.train.clip_grad_norm; }, 0.0, kMaxFactor));
  // [optimizer]
  KeyDef name = text("optimizer.name", "--optimizer", "the update rule",
                     [](Config& c) -> std::string& { return c.optimizer.name; },
                     {"sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop"});
  name.put = [](Config& c, const Value& v) {  // a momentum not given follows the optimiser
    c.optimizer.name = std::get<std::string>(v);
    if (!c.optimizer.momentum_given) c.optimizer.momentum = default_momentum(c.optimizer.name);
  };
  t.push_back(name);
  t.push_back(real(
      "optimizer.lr", "--lr", "learning rate eta", [](Config& c) -> double& { return c.optimizer.lr; }, 0.0,
      kMaxFactor, true));
  KeyDef momentum = real(
      "optimizer.momentum", "--momentum", "momentum mu (momentum, nesterov, rmsprop; rmsprop's default is 0)",
      [](Config& c) -> double& { return c.optimizer.momentum; }, 0.0, 1.0, false, true);
  momentum.put = [](Config& c, const Value& v) {
    c.optimizer.momentum = std::get<double>(v);
    c.optimizer.momentum_given = true;
  };
  t.push_back(momentum);
  t.push_back(real(
      "optimizer.weight_decay", "--weight-decay",
      "the optimiser's weight decay on every parameter (decoupled for adamw)",
      [](Config& c) -> double& { return c.optimizer.weight_decay; }, 0.0, kMaxFactor));
  t.push_back(text("optimizer.schedule", "--schedule",
                   "learning-rate schedule: none, cosine, step[:EPOCHS[:GAMMA]], exponential[:GAMMA], "
                   "warmup[:EPOCHS]",
                   [](Config& c) -> std::string& { return c.optimizer.schedule; }));
  // [run]
  KeyDef seed;  // stored unsigned, read and written as a non-negative integer
  seed.key = "run.seed";
  seed.flag = "--seed";
  seed.kind = Kind::integer;
  seed.help = "seed of weights, dropout masks, data order and the validation split";
  seed.get = [](const Config& c) { return Value(static_cast<std::int64_t>(c.run.seed)); };
  seed.put = [](Config& c, const Value& v) {
    c.run.seed = static_cast<std::uint64_t>(std::get<std::int64_t>(v));
  };
  t.push_back(range(seed, 0, kMaxSeed));
  t.push_back(integer(
      "run.threads", "--threads", "kernel and BLAS threads (0: the library default)",
      [](Config& c) -> std::int64_t& { return c.run.threads; }, 0, 1024));
  t.push_back(integer(
      "run.checkpoint_every", "--checkpoint-every", "write a checkpoint every N epochs (0: never)",
      [](Config& c) -> std::int64_t& { return c.run.checkpoint_every; }, 0, 1e6));
  t.push_back(integer(
      "run.grad_flow", "--grad-flow", "record per-layer gradient norms every N updates (0: off)",
      [](Config& c) -> std::int64_t& { return c.run.grad_flow; }, 0, 1e9));
  t.push_back(boolean("run.detect_anomaly", "--detect-anomaly",
                      "anomaly mode: a NaN/Inf names the op that produced it (slower)",
                      [](Config& c) -> bool& { return c.run.detect_anomaly; }));
  t.push_back(text("run.init_from", "--init-from",
                   "start from the weights of a saved model (warm start; its network must match this run's)",
                   [](Config& c) -> std::string& { return c.run.init_from; }));
  return t;
}

std::string number_text(double v) {
  if (v == std::floor(v) && std::abs(v) <= kMaxSeed) return std::to_string(static_cast<std::int64_t>(v));
  return format_real(v);
}

}  // namespace

std::string format_real(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  std::string s(buf, end);
  if (s.find_first_of(".eE") == std::string::npos) s += ".0";
  return s;
}

std::string KeyDef::expects() const {
  // "an integer >= 1 and at most 1000000", "a number > 0", "a number >= 0 and less than 1"
  auto bounds = [&](std::string s) {
    if (has_lo) s += (lo_open ? " > " : " >= ") + number_text(lo);
    if (has_lo && has_hi) s += " and";
    if (has_hi) s += (hi_open ? " less than " : " at most ") + number_text(hi);
    return s;
  };
  switch (kind) {
    case Kind::integer:
      return bounds("an integer");
    case Kind::real:
      return bounds("a number");
    case Kind::boolean:
      return "true or false";
    case Kind::int_list:
      return bounds("a comma-separated list of integers") + " (or none)";
    case Kind::batch:
      return bounds("an integer") + ", or \"full\"";
    case Kind::text:
      if (choices.empty()) return "a string";
      {
        std::string s = "one of: ";
        for (std::size_t i = 0; i < choices.size(); ++i) {
          if (i) s += ", ";
          s += choices[i];
        }
        return s;
      }
  }
  return "";
}

bool KeyDef::in_range(double x) const {
  if (!std::isfinite(x)) return false;
  if (has_lo && (lo_open ? x <= lo : x < lo)) return false;
  if (has_hi && (hi_open ? x >= hi : x > hi)) return false;
  return true;
}

bool KeyDef::allowed(const Value& v) const {
  // Exact for integers: 2^53 + 1 rounds to 2^53 as a double, but is above a bound of 2^53.
  auto in_range_int = [&](std::int64_t x) {
    if (!in_range(static_cast<double>(x))) return false;
    if (!has_hi) return true;
    const auto top = static_cast<std::int64_t>(hi);  // a whole number within int64 (at most 2^53)
    return hi_open ? x < top : x <= top;
  };
  switch (kind) {
    case Kind::integer:
      return in_range_int(std::get<std::int64_t>(v));
    case Kind::real:
      return in_range(std::get<double>(v));
    case Kind::boolean:
      return true;
    case Kind::batch: {
      const std::int64_t b = std::get<std::int64_t>(v);
      return b == 0 || in_range_int(b);
    }
    case Kind::int_list:
      return std::all_of(std::get<std::vector<std::int64_t>>(v).begin(),
                         std::get<std::vector<std::int64_t>>(v).end(),
                         [&](std::int64_t x) { return in_range_int(x); });
    case Kind::text:
      return choices.empty() ||
             std::find(choices.begin(), choices.end(), std::get<std::string>(v)) != choices.end();
  }
  return false;
}

const std::vector<KeyDef>& table() {
  static const std::vector<KeyDef> t = build();
  return t;
}

const KeyDef* find(const std::string& key) {
  for (const KeyDef& d : table())
    if (d.key == key) return &d;
  return nullptr;
}

const std::vector<KeyDef>& command_table() {
  // Each flag's range is the one of train's key for the same thing, so `eval --limit -1` and
  // `train --limit-test -1` are refused alike.
  static const std::vector<KeyDef> t = [] {
    auto entry = [](const std::string& key, std::string command, std::string flag, std::string help) {
      KeyDef d = *find(key);
      d.key = std::move(command) + " " + flag;
      d.flag = std::move(flag);
      d.help = std::move(help);
      d.get = nullptr;
      d.put = nullptr;
      return d;
    };
    std::vector<KeyDef> c;
    c.push_back(entry("data.limit_test", "eval", "--limit", "only the first N examples (0: all)"));
    KeyDef split;
    split.key = "eval --split";
    split.flag = "--split";
    split.kind = Kind::text;
    split.help = "IDX data: which split to evaluate";
    split.choices = {"train", "test"};
    c.push_back(split);
    c.push_back(entry("data.limit_test", "predict", "--limit", "only the first N rows (0: all)"));
    KeyDef repeated;  // no train key counts this: the limit of explain::dynamic_programming
    repeated.key = "explain --repeated";
    repeated.flag = "--repeated";
    repeated.kind = Kind::integer;
    repeated.help = "instead: the naive chain rule's work against the memoised engine's, up to N";
    c.push_back(range(repeated, 0, explain::kMaxRepeated));
    c.push_back(entry("optimizer.lr", "explain", "--lr", "learning rate eta of the update (default 0.5)"));
    c.push_back(entry("run.seed", "explain", "--seed", "seed of the example's weights (default 1)"));
    return c;
  }();
  return t;
}

const KeyDef* find_command_flag(const std::string& command, const std::string& flag) {
  for (const KeyDef& d : command_table())
    if (d.key == command + " " + flag) return &d;
  return nullptr;
}

std::vector<std::string> key_names() {
  std::vector<std::string> names;
  for (const KeyDef& d : table()) names.push_back(d.key);
  return names;
}

std::vector<std::string> section_names() {
  std::vector<std::string> names;
  for (const KeyDef& d : table()) {
    std::string s = d.key.substr(0, d.key.find('.'));
    if (std::find(names.begin(), names.end(), s) == names.end()) names.push_back(s);
  }
  return names;
}

std::string show(const Value& v) {
  return std::visit(
      [](const auto& x) -> std::string {
        using T = std::decay_t<decltype(x)>;
        if constexpr (std::is_same_v<T, bool>) return x ? "true" : "false";
        if constexpr (std::is_same_v<T, std::int64_t>) return std::to_string(x);
        if constexpr (std::is_same_v<T, double>) return format_real(x);
        if constexpr (std::is_same_v<T, std::string>) return x;
        if constexpr (std::is_same_v<T, std::vector<std::int64_t>>) {
          std::string s;
          for (std::size_t i = 0; i < x.size(); ++i) {
            if (i) s += ',';
            s += std::to_string(x[i]);
          }
          return s.empty() ? "none" : s;
        }
      },
      v);
}

std::string to_toml_value(const KeyDef& def, const Value& v) {
  if (def.kind == Kind::batch && std::get<std::int64_t>(v) == 0) return "\"full\"";
  if (def.kind == Kind::int_list) {
    const auto& list = std::get<std::vector<std::int64_t>>(v);
    std::string s = "[";
    for (std::size_t i = 0; i < list.size(); ++i) {
      if (i) s += ", ";
      s += std::to_string(list[i]);
    }
    return s + "]";
  }
  if (def.kind == Kind::text) {
    std::string s = "\"";
    for (char ch : std::get<std::string>(v)) {
      if (ch == '"' || ch == '\\') s += '\\';
      if (static_cast<unsigned char>(ch) < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(ch));
        s += buf;
        continue;
      }
      s += ch;
    }
    return s + "\"";
  }
  return show(v);
}

void store(Config& config, const KeyDef& def, const Value& v, const std::string& where) {
  if (!def.allowed(v)) {
    std::string msg = where + ": " + def.key + " must be " + def.expects() + ", got " + show(v);
    if (def.kind == Kind::text && !def.choices.empty()) {
      const std::string near = closest(std::get<std::string>(v), def.choices);
      if (!near.empty()) msg += "; did you mean '" + near + "'?";
    }
    throw ConfigError(msg);
  }
  def.put(config, v);
}

}  // namespace backprop::config::detail
