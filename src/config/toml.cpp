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

// "unknown key 'x.lrr'; did you mean 'x.lr'?" — suggests the key of the same name in another section (a key
// put in the wrong section), else the closest full name.
std::string unknown_key(const std::string& where, const std::string& key) {
  std::string near;
  const std::string last = key.substr(key.rfind('.') + 1);
  for (const std::string& k : detail::key_names())
    if (k.substr(k.find('.') + 1) == last) near = k;
  if (near.empty()) near = closest(key, detail::key_names());
  return where + ": unknown key '" + key + "'" + (near.empty() ? "" : "; did you mean '" + near + "'?");
}

// One [[model.layer]] table: `type` and the layer's options, checked against the type's table.
LayerSpec layer_from_table(const toml::table& t, const std::string& where) {
  LayerSpec spec;
  const toml::node* type = t.get("type");
  if (!type || !type->is_string())
    throw ConfigError(where + ": needs type = \"...\" (a layer type such as \"conv2d\" or \"dense\")" +
                      (type ? ", got " + describe(*type) : std::string()));
  spec.type = type->as_string()->get();
  for (auto&& [key, node] : t) {
    const std::string name(key.str());
    if (name == "type") continue;
    const std::string at_value = where + " (" + spec.type + "): " + name;
    if (node.is_integer()) {
      spec.options[name] = node.as_integer()->get();
    } else if (node.is_floating_point()) {
      spec.options[name] = node.as_floating_point()->get();
    } else if (node.is_boolean()) {
      spec.options[name] = node.as_boolean()->get();
    } else if (node.is_string()) {
      spec.options[name] = node.as_string()->get();
    } else if (node.is_array()) {
      std::vector<std::int64_t> list;
      for (const toml::node& item : *node.as_array()) {
        if (!item.is_integer())
          throw ConfigError(at_value + ": a list must hold integers, got " + describe(item));
        list.push_back(item.as_integer()->get());
      }
      spec.options[name] = std::move(list);
    } else {
      throw ConfigError(at_value + ": expected a number, boolean, string or list of integers, got " +
                        describe(node));
    }
  }
  check_layer(spec, where);
  return spec;
}

std::string option_toml(const LayerOption& v) {
  if (const auto* s = std::get_if<std::string>(&v)) {
    std::string out = "\"";
    for (char c : *s) out += (c == '"' || c == '\\') ? std::string("\\") + c : std::string(1, c);
    return out + "\"";
  }
  if (const auto* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  if (const auto* d = std::get_if<double>(&v)) return detail::format_real(*d);
  std::string out = "[";
  for (std::int64_t e : std::get<std::vector<std::int64_t>>(v))
    out += (out.size() > 1 ? ", " : "") + std::to_string(e);
  return out + "]";
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
  bool arch_given = false, layers_given = false;
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
      if (full == "model.layer") {  // [[model.layer]] tables: the network as a list of layers
        if (!node.is_array_of_tables())
          throw ConfigError(key_where + ": model.layer must be [[model.layer]] tables, got " +
                            describe(node));
        std::size_t i = 0;
        for (const toml::node& t : *node.as_array())
          config.model.layer.push_back(layer_from_table(
              *t.as_table(), at(source, t.source()) + ": model.layer #" + std::to_string(++i)));
        layers_given = true;
        continue;
      }
      arch_given = arch_given || full == "model.arch";
      const detail::KeyDef* def = detail::find(full);
      if (!def) throw ConfigError(unknown_key(key_where, full));
      detail::store(config, *def, from_node(*def, node, at(source, node.source())),
                    at(source, node.source()));
      if (keys_set) keys_set->push_back(full);
    }
  }
  if (layers_given && !arch_given) config.model.arch = "custom";
  return config;
}

Config load_toml(const std::string& path, std::vector<std::string>* keys_set) {
  return parse_toml(io::read_file(path, 1 << 20), path, keys_set);
}

namespace {

std::string layers_toml(const std::vector<LayerSpec>& layers) {
  std::string out;
  for (const LayerSpec& l : layers) {
    out += "\n[[model.layer]]\ntype = " + option_toml(l.type) + "\n";
    for (const auto& [name, value] : l.options) out += name + " = " + option_toml(value) + "\n";
  }
  return out;
}

}  // namespace

std::string to_toml(const Config& config) {
  std::string out;
  std::string section;
  for (const detail::KeyDef& def : detail::table()) {
    const std::string s = def.key.substr(0, def.key.find('.'));
    if (s != section) {
      if (section == "model") out += layers_toml(config.model.layer);
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
