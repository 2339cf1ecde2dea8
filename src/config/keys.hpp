// The key table behind backprop/config.hpp: one entry per key, holding its type, range, choices and how to
// reach its field in Config. Private to src/config.
#pragma once

#include <backprop/config.hpp>
#include <cstdint>
#include <functional>
#include <string>
#include <variant>
#include <vector>

namespace backprop::config::detail {

/// batch: an integer >= 1 or the word "full" (stored as 0).
enum class Kind { integer, real, boolean, text, int_list, batch };

using Value = std::variant<bool, std::int64_t, double, std::string, std::vector<std::int64_t>>;

struct KeyDef {
  std::string key;
  std::string flag;
  Kind kind;
  std::string help;
  // Numbers: the allowed range.
  double lo = 0.0, hi = 0.0;
  bool lo_open = false, hi_open = false, has_lo = false, has_hi = false;
  // Text: the allowed values (empty = any text).
  std::vector<std::string> choices;
  std::function<Value(const Config&)> get;
  std::function<void(Config&, const Value&)> put;

  /// "a number > 0", "an integer >= 0 and at most 1000000", "one of: a, b", ...
  std::string expects() const;
  /// True when v is allowed (range, choices).
  bool allowed(const Value& v) const;
  /// True when the number x is finite and within the range.
  bool in_range(double x) const;
};

const std::vector<KeyDef>& table();
/// The entry for `key`, or nullptr.
const KeyDef* find(const std::string& key);
/// The value flags of the other commands, keyed "<command> <flag>" ("eval --limit"); no get/put.
const std::vector<KeyDef>& command_table();
/// The command_table() entry for `command`'s `flag`, or nullptr.
const KeyDef* find_command_flag(const std::string& command, const std::string& flag);
/// Names of every key / every section ("data", "model", ...).
std::vector<std::string> key_names();
std::vector<std::string> section_names();

/// A value as TOML text.
std::string to_toml_value(const KeyDef& def, const Value& v);
/// A value as shown in messages (strings unquoted).
std::string show(const Value& v);
/// Shortest text that reads back as the same double, always with a '.' or exponent.
std::string format_real(double v);

/// Checks v against def (range, choices) and stores it; throws ConfigError "<where>: <key> ..." when not
/// allowed.
void store(Config& config, const KeyDef& def, const Value& v, const std::string& where);

}  // namespace backprop::config::detail
