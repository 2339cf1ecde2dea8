// Setting keys from command-line text, cross-key validation, schedules and "did you mean".
#include <algorithm>
#include <backprop/config.hpp>
#include <backprop/data/augment.hpp>
#include <backprop/error.hpp>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "config/keys.hpp"

namespace backprop::config {

namespace {

using detail::Kind;
using detail::Value;

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t") - b + 1);
}

bool parse_int(const std::string& s, std::int64_t& out) {
  const std::string t = trim(s);
  if (t.empty()) return false;
  const char* begin = t.data() + (t[0] == '+' ? 1 : 0);
  auto [end, ec] = std::from_chars(begin, t.data() + t.size(), out);
  return ec == std::errc() && end == t.data() + t.size();
}

bool parse_real(const std::string& s, double& out) {
  const std::string t = trim(s);
  if (t.empty()) return false;
  const char* begin = t.data() + (t[0] == '+' ? 1 : 0);
  auto [end, ec] = std::from_chars(begin, t.data() + t.size(), out);
  return ec == std::errc() && end == t.data() + t.size();
}

[[noreturn]] void bad_text(const detail::KeyDef& def, const std::string& text, const std::string& origin) {
  throw ConfigError(origin + ": expected " + def.expects() + ", got '" + text + "'");
}

Value from_text(const detail::KeyDef& def, const std::string& text, const std::string& origin) {
  switch (def.kind) {
    case Kind::integer: {
      std::int64_t v = 0;
      if (!parse_int(text, v)) bad_text(def, text, origin);
      return v;
    }
    case Kind::real: {
      double v = 0;
      if (!parse_real(text, v)) bad_text(def, text, origin);
      return v;
    }
    case Kind::boolean: {
      std::string t = trim(text);
      std::transform(t.begin(), t.end(), t.begin(), [](unsigned char c) { return std::tolower(c); });
      if (t == "true" || t == "1" || t == "yes" || t == "on") return true;
      if (t == "false" || t == "0" || t == "no" || t == "off") return false;
      bad_text(def, text, origin);
    }
    case Kind::batch: {
      if (trim(text) == "full") return std::int64_t{0};
      std::int64_t v = 0;
      if (!parse_int(text, v) || v < 1) bad_text(def, text, origin);
      return v;
    }
    case Kind::int_list: {
      std::vector<std::int64_t> list;
      const std::string t = trim(text);
      if (t.empty() || t == "none") return list;
      std::size_t start = 0;
      while (start <= t.size()) {
        const std::size_t comma = std::min(t.find(',', start), t.size());
        std::int64_t v = 0;
        if (!parse_int(t.substr(start, comma - start), v)) bad_text(def, text, origin);
        list.push_back(v);
        start = comma + 1;
      }
      return list;
    }
    case Kind::text:
      return text;
  }
  bad_text(def, text, origin);
}

// Levenshtein distance, two rows.
std::size_t distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

}  // namespace

std::string closest(const std::string& word, const std::vector<std::string>& candidates) {
  std::string best;
  std::size_t best_d = std::max<std::size_t>(2, word.size() / 3) + 1;
  for (const std::string& c : candidates) {
    const std::size_t d = distance(word, c);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  return best;
}

const std::vector<KeyInfo>& keys() {
  static const std::vector<KeyInfo> info = [] {
    std::vector<KeyInfo> out;
    static const char* const type_names[] = {"integer", "number",           "boolean",
                                             "string",  "list of integers", "integer or \"full\""};
    for (const detail::KeyDef& d : detail::table())
      out.push_back({d.key, d.flag, type_names[static_cast<int>(d.kind)], d.expects(), d.help, d.choices});
    return out;
  }();
  return info;
}

namespace {

// Reads `text` for `def` and checks its range or choices: ConfigError "<origin>: expected ..., got '<text>'".
Value checked(const detail::KeyDef& def, const std::string& text, const std::string& origin) {
  const Value v = from_text(def, text, origin);
  if (!def.allowed(v)) {
    std::string msg = origin + ": expected " + def.expects() + ", got '" + text + "'";
    if (def.kind == Kind::text && !def.choices.empty()) {
      const std::string near = closest(text, def.choices);
      if (!near.empty()) msg += "; did you mean '" + near + "'?";
    }
    throw ConfigError(msg);
  }
  return v;
}

const detail::KeyDef& command_flag(const std::string& command, const std::string& flag, Kind kind) {
  const detail::KeyDef* def = detail::find_command_flag(command, flag);
  BP_CHECK(def != nullptr && def->kind == kind, ConfigError, command, " ", flag,
           ": not a flag of that type in the command flag table");
  return *def;
}

}  // namespace

void set(Config& config, const std::string& key, const std::string& text, const std::string& origin) {
  const detail::KeyDef* def = detail::find(key);
  if (!def) {
    const std::string near = closest(key, detail::key_names());
    throw ConfigError(origin + ": unknown key '" + key + "'" +
                      (near.empty() ? "" : "; did you mean '" + near + "'?"));
  }
  def->put(config, checked(*def, text, origin));
}

const std::vector<CommandFlag>& command_flags() {
  static const std::vector<CommandFlag> info = [] {
    std::vector<CommandFlag> out;
    for (const detail::KeyDef& d : detail::command_table()) {
      const std::string type = d.kind == Kind::integer ? "integer"
                               : d.kind == Kind::real  ? "number"
                                                       : "string";
      out.push_back({d.key.substr(0, d.key.find(' ')), d.flag, type, d.expects(), d.help, d.choices});
    }
    return out;
  }();
  return info;
}

std::int64_t flag_integer(const std::string& command, const std::string& flag, const std::string& text) {
  return std::get<std::int64_t>(checked(command_flag(command, flag, Kind::integer), text, flag));
}

double flag_number(const std::string& command, const std::string& flag, const std::string& text) {
  return std::get<double>(checked(command_flag(command, flag, Kind::real), text, flag));
}

std::string flag_text(const std::string& command, const std::string& flag, const std::string& text) {
  return std::get<std::string>(checked(command_flag(command, flag, Kind::text), text, flag));
}

void check_flag(const std::string& command, const std::string& flag, double value) {
  const detail::KeyDef* def = detail::find_command_flag(command, flag);
  BP_CHECK(def != nullptr && (def->kind == Kind::integer || def->kind == Kind::real), ConfigError, command,
           " ", flag, ": not a number flag in the command flag table");
  const bool integer = def->kind == Kind::integer;
  if ((!integer || value == std::floor(value)) && def->in_range(value)) return;
  char text[64];
  std::snprintf(text, sizeof text, "%.17g", value);
  throw ConfigError(flag + ": expected " + def->expects() + ", got " +
                    (integer && std::isfinite(value) ? std::string(text) : detail::format_real(value)));
}

std::string get(const Config& config, const std::string& key) {
  const detail::KeyDef* def = detail::find(key);
  BP_CHECK(def != nullptr, ConfigError, "config: unknown key '", key, "'");
  return detail::to_toml_value(*def, def->get(config));
}

Schedule parse_schedule(const std::string& text, const std::string& origin) {
  const std::string forms = "none, cosine, step[:EPOCHS[:GAMMA]], exponential[:GAMMA] or warmup[:EPOCHS]";
  std::vector<std::string> parts;
  std::size_t start = 0;
  while (true) {
    const std::size_t colon = text.find(':', start);
    parts.push_back(text.substr(start, colon == std::string::npos ? std::string::npos : colon - start));
    if (colon == std::string::npos) break;
    start = colon + 1;
  }
  Schedule s;
  s.kind = parts[0];
  auto fail = [&](const std::string& why) -> Schedule {
    std::string msg = origin + ": " + why + " in schedule '" + text + "'; expected " + forms;
    const std::string near = closest(parts[0], {"none", "cosine", "step", "exponential", "warmup"});
    if (near != parts[0] && !near.empty()) msg += "; did you mean '" + near + "'?";
    throw ConfigError(msg);
  };
  auto epochs_at = [&](std::size_t i, std::int64_t fallback) {
    if (parts.size() <= i) return fallback;
    std::int64_t v = 0;
    if (!parse_int(parts[i], v) || v < 1) fail("EPOCHS must be an integer >= 1, got '" + parts[i] + "'");
    return v;
  };
  auto gamma_at = [&](std::size_t i, double fallback) {
    if (parts.size() <= i) return fallback;
    double v = 0;
    // A factor above 1 would grow the learning rate every epoch until training overflows.
    if (!parse_real(parts[i], v) || !(v > 0) || !(v <= 1))
      fail("GAMMA must be a number > 0 and at most 1 (the learning rate's factor), got '" + parts[i] + "'");
    return v;
  };
  if (s.kind == "none" || s.kind == "cosine") {
    if (parts.size() > 1) fail("'" + s.kind + "' takes no arguments");
  } else if (s.kind == "step") {
    if (parts.size() > 3) fail("too many arguments");
    s.epochs = epochs_at(1, 10);
    s.gamma = gamma_at(2, 0.1);
  } else if (s.kind == "exponential") {
    if (parts.size() > 2) fail("too many arguments");
    s.gamma = gamma_at(1, 0.95);
  } else if (s.kind == "warmup") {
    if (parts.size() > 2) fail("too many arguments");
    s.epochs = epochs_at(1, 5);
  } else {
    fail("unknown kind '" + s.kind + "'");
  }
  return s;
}

void validate(const Config& c) {
  const bool regression = c.data.task == "regression";
  BP_CHECK(!(regression && c.train.loss == "cross-entropy"), ConfigError,
           "train.loss (--loss) = cross-entropy needs data.task (--task) = classification; use mse for "
           "regression");
  BP_CHECK(!(c.optimizer.name == "nesterov" && c.optimizer.momentum <= 0), ConfigError,
           "optimizer.name (--optimizer) = nesterov needs optimizer.momentum (--momentum) > 0");
  BP_CHECK(c.train.early_stopping == 0 || c.data.val_split > 0, ConfigError,
           "train.early_stopping (--early-stopping) needs a validation set: set data.val_split (--val-split) "
           "> 0");
  BP_CHECK(!(c.model.batchnorm && c.train.batch_size == 1), ConfigError,
           "model.batchnorm (--batchnorm) needs train.batch_size (--batch-size) >= 2: a batch of one has no "
           "variance");
  BP_CHECK(
      !c.model.sync_batchnorm || c.model.arch != "mlp" || c.model.batchnorm, ConfigError,
      "model.sync_batchnorm (--sync-batchnorm) needs model.batchnorm (--batchnorm): there are no batch-norm "
      "layers to synchronise");
  parse_schedule(c.optimizer.schedule, "optimizer.schedule (--schedule)");
  BP_CHECK(!c.data.source.empty(), ConfigError, "data.source (--data) must not be empty");
  BP_CHECK(c.model.arch != "custom" || !c.model.layer.empty(), ConfigError,
           "model.arch (--arch) = custom needs the network as [[model.layer]] tables in the --config file");
  BP_CHECK(c.model.arch == "custom" || c.model.layer.empty(), ConfigError,
           "model.arch (--arch) = ", c.model.arch,
           " and [[model.layer]] tables both say what the network is; give one of them");
  for (std::size_t i = 0; i < c.model.layer.size(); ++i)
    check_layer(c.model.layer[i], "model.layer #" + std::to_string(i + 1));
  if (c.model.sync_batchnorm && c.model.arch != "mlp") {  // a layer list: it must hold a batchnorm layer
    const std::vector<LayerSpec> layers = network_layers(c.model);
    BP_CHECK(
        std::any_of(layers.begin(), layers.end(), [](const LayerSpec& l) { return l.type == "batchnorm"; }),
        ConfigError, "model.sync_batchnorm (--sync-batchnorm) needs a batch-norm layer to synchronise, but ",
        c.model.arch == "custom" ? std::string("no [[model.layer]] table has type = \"batchnorm\"")
                                 : "model.arch (--arch) = " + c.model.arch + " has none",
        " (--arch cnn has two)");
  }
  try {
    data::Augmentation::parse(c.data.augment);
  } catch (const ValueError& e) {
    throw ConfigError(std::string("data.augment (--augment): ") + e.what());
  }
}

}  // namespace backprop::config
