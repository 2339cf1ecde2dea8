// Config <-> TOML. Reading goes through the key table, so a file is checked exactly like the flags are.
#include <toml++/toml.h>

#include <backprop/config.hpp>
#include <backprop/error.hpp>
#include <backprop/io.hpp>
#include <sstream>

#include "config/keys.hpp"
#include "config/text_guard.hpp"

namespace backprop::config {

namespace {

using detail::Kind;
using detail::Value;

std::string at(const std::string& source, const toml::source_region& r) {
  return source + ":" + std::to_string(r.begin.line) + ":" + std::to_string(r.begin.column);
}

std::string describe(const toml::node& n) {
  std::ostringstream s;
  if (n.is_string())
    s << "string \"" << n.as_string()->get() << "\"";
  else if (n.is_table())
    s << "a table";
  else if (n.is_array())
    s << "an array";
  else if (n.is_integer())
    s << "integer " << n.as_integer()->get();
  else if (n.is_floating_point())
    s << "float " << detail::format_real(n.as_floating_point()->get());
  else if (n.is_boolean())
    s << "boolean " << (n.as_boolean()->get() ? "true" : "false");
  else
    s << "a " << n.type() << " value";
  return s.str();
}

Value from_node(const detail::KeyDef& def, const toml::node& n, const std::string& where) {
  auto wrong = [&]() -> Value {
    throw ConfigError(where + ": " + def.key + " must be " + def.expects() + ", got " + describe(n));
  };
  switch (def.kind) {
    case Kind::integer:
      if (!n.is_integer()) wrong();
      return n.as_integer()->get();
    case Kind::real:
      if (n.is_integer()) return static_cast<double>(n.as_integer()->get());
      if (!n.is_floating_point()) wrong();
      return n.as_floating_point()->get();
    case Kind::boolean:
      if (!n.is_boolean()) wrong();
      return n.as_boolean()->get();
    case Kind::text:
      if (!n.is_string()) wrong();
      return n.as_string()->get();
    case Kind::batch:
      if (n.is_string() && n.as_string()->get() == "full") return std::int64_t{0};
      if (!n.is_integer() || n.as_integer()->get() < 1) wrong();
      return n.as_integer()->get();
    case Kind::int_list: {
      if (!n.is_array()) wrong();
      std::vector<std::int64_t> list;
      for (const toml::node& item : *n.as_array()) {
        if (!item.is_integer()) wrong();
        list.push_back(item.as_integer()->get());
      }
      return list;
    }
  }
  return wrong();
}

// "unknown key 'x.lrr'; did you mean 'x.lr'?" — suggests by the full name, else by the last part alone (a key
// put in the wrong section).
std::string unknown_key(const std::string& where, const std::string& key) {
  std::string near = closest(key, detail::key_names());
  if (near.empty()) {
    const std::string last = key.substr(key.rfind('.') + 1);
    for (const std::string& k : detail::key_names())
      if (k.substr(k.find('.') + 1) == last) near = k;
  }
  return where + ": unknown key '" + key + "'" + (near.empty() ? "" : "; did you mean '" + near + "'?");
}

}  // namespace

Config parse_toml(std::string_view text, const std::string& source, std::vector<std::string>* keys_set) {
  detail::check_non_ascii_outside_strings(text, source);
  toml::table root;
  try {
    root = toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    throw ConfigError(at(source, e.source()) + ": TOML syntax error: " + std::string(e.description()));
  }
  Config config;
  const std::vector<std::string> sections = detail::section_names();
  for (auto&& [section_key, section] : root) {
    const std::string name(section_key.str());
    const std::string where = at(source, section_key.source());
    if (!section.is_table()) throw ConfigError(unknown_key(where, name));
    if (std::find(sections.begin(), sections.end(), name) == sections.end()) {
      const std::string near = closest(name, sections);
      throw ConfigError(where + ": unknown section [" + name + "]" +
                        (near.empty() ? "" : "; did you mean [" + near + "]?"));
    }
    for (auto&& [key, node] : *section.as_table()) {
      const std::string full = name + "." + std::string(key.str());
      const std::string key_where = at(source, key.source());
      const detail::KeyDef* def = detail::find(full);
      if (!def) throw ConfigError(unknown_key(key_where, full));
      detail::store(config, *def, from_node(*def, node, at(source, node.source())),
                    at(source, node.source()));
      if (keys_set) keys_set->push_back(full);
    }
  }
  return config;
}

Config load_toml(const std::string& path, std::vector<std::string>* keys_set) {
  return parse_toml(io::read_file(path, 1 << 20), path, keys_set);
}

std::string to_toml(const Config& config) {
  std::string out;
  std::string section;
  for (const detail::KeyDef& def : detail::table()) {
    const std::string s = def.key.substr(0, def.key.find('.'));
    if (s != section) {
      if (!section.empty()) out += '\n';
      out.append("[").append(s).append("]\n");
      section = s;
    }
    out.append(def.key.substr(s.size() + 1))
        .append(" = ")
        .append(detail::to_toml_value(def, def.get(config)));
    out.append("  # ").append(def.help).append(" (").append(def.flag).append(")\n");
  }
  return out;
}

}  // namespace backprop::config
