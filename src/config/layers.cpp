// Networks as data: the layer types of `[[model.layer]]` tables, their options, and the presets.
#include <algorithm>
#include <backprop/config.hpp>
#include <backprop/error.hpp>

#include "config/keys.hpp"

namespace backprop::config {

namespace {

// How an option's value is read and checked.
enum class OptionKind {
  count,     // an integer >= 1
  count0,    // an integer >= 0
  pair,      // an integer >= 1, or a list of two
  pair0,     // an integer >= 0, or a list of two
  padding,   // an integer >= 0, a list of two, or "same"
  unit,      // a number in [0, 1)
  positive,  // a number > 0
  boolean,
};

struct OptionDef {
  const char* name;
  OptionKind kind;
  const char* fallback;  // TOML text of the default; "" required; "-" set from another option or the data
};

struct TypeDef {
  const char* type;
  const char* help;
  std::vector<OptionDef> options;
};

const std::vector<TypeDef>& type_table() {
  using K = OptionKind;
  static const std::vector<TypeDef> table = {
      {"dense",
       "fully connected layer on a 1-D input (PyTorch Linear); `out` may be left out on the last layer: the "
       "number of outputs",
       {{"out", K::count, "-"}, {"bias", K::boolean, "true"}, {"dropconnect", K::unit, "0.0"}}},
      {"conv1d",
       "1-D convolution on [channels, length]",
       {{"out", K::count, ""},
        {"kernel", K::count, ""},
        {"stride", K::count, "1"},
        {"padding", K::padding, "0"},
        {"dilation", K::count, "1"},
        {"groups", K::count, "1"},
        {"bias", K::boolean, "true"}}},
      {"conv2d",
       "2-D convolution on [channels, height, width]; groups = channels is depthwise",
       {{"out", K::count, ""},
        {"kernel", K::pair, ""},
        {"stride", K::pair, "1"},
        {"padding", K::padding, "0"},
        {"dilation", K::pair, "1"},
        {"groups", K::count, "1"},
        {"bias", K::boolean, "true"}}},
      {"conv_transpose2d",
       "transposed 2-D convolution (upsampling)",
       {{"out", K::count, ""},
        {"kernel", K::pair, ""},
        {"stride", K::pair, "1"},
        {"padding", K::pair0, "0"},
        {"output_padding", K::pair0, "0"},
        {"dilation", K::pair, "1"},
        {"groups", K::count, "1"},
        {"bias", K::boolean, "true"}}},
      {"maxpool2d",
       "2-D max pooling",
       {{"kernel", K::pair, ""}, {"stride", K::pair, "-"}, {"padding", K::pair0, "0"}}},
      {"avgpool2d",
       "2-D average pooling",
       {{"kernel", K::pair, ""}, {"stride", K::pair, "-"}, {"padding", K::pair0, "0"}}},
      {"adaptive_avgpool2d", "2-D average pooling to a fixed output size", {{"out", K::pair, ""}}},
      {"batchnorm",
       "batch normalisation: per feature on [features], per channel on [channels, ...]",
       {{"momentum", K::positive, "0.1"}, {"eps", K::positive, "1e-05"}}},
      {"layernorm", "layer normalisation over the last dimension", {{"eps", K::positive, "1e-05"}}},
      {"dropout", "zeroes each value with probability p in training", {{"p", K::unit, "0.5"}}},
      {"dropout2d", "zeroes whole channels with probability p in training", {{"p", K::unit, "0.5"}}},
      {"flatten", "[channels, height, width] -> [channels * height * width]", {}},
      {"relu", "max(0, x)", {}},
      {"leaky_relu", "x, or slope * x below 0", {{"slope", K::positive, "0.01"}}},
      {"sigmoid", "1 / (1 + exp(-x))", {}},
      {"tanh", "tanh(x)", {}},
  };
  return table;
}

const char* expects(OptionKind k) {
  switch (k) {
    case OptionKind::count:
      return "an integer >= 1";
    case OptionKind::count0:
      return "an integer >= 0";
    case OptionKind::pair:
      return "an integer >= 1 or a list of two";
    case OptionKind::pair0:
      return "an integer >= 0 or a list of two";
    case OptionKind::padding:
      return "an integer >= 0, a list of two, or \"same\"";
    case OptionKind::unit:
      return "a number >= 0 and < 1";
    case OptionKind::positive:
      return "a number > 0";
    case OptionKind::boolean:
      return "true or false";
  }
  return "";
}

bool fits(OptionKind k, const LayerOption& v) {
  const auto* i = std::get_if<std::int64_t>(&v);
  const auto* list = std::get_if<std::vector<std::int64_t>>(&v);
  const auto* real = std::get_if<double>(&v);
  const double x = i ? static_cast<double>(*i) : real ? *real : 0.0;
  const bool number = i || real;
  const auto all = [&](std::int64_t lo) {
    return list && list->size() == 2 &&
           std::all_of(list->begin(), list->end(), [&](auto e) { return e >= lo; });
  };
  switch (k) {
    case OptionKind::count:
      return i && *i >= 1;
    case OptionKind::count0:
      return i && *i >= 0;
    case OptionKind::pair:
      return (i && *i >= 1) || all(1);
    case OptionKind::pair0:
      return (i && *i >= 0) || all(0);
    case OptionKind::padding:
      return (i && *i >= 0) || all(0) ||
             (std::holds_alternative<std::string>(v) && std::get<std::string>(v) == "same");
    case OptionKind::unit:
      return number && x >= 0 && x < 1;
    case OptionKind::positive:
      return number && x > 0;
    case OptionKind::boolean:
      return std::holds_alternative<bool>(v);
  }
  return false;
}

const TypeDef* find_type(const std::string& type) {
  for (const TypeDef& t : type_table())
    if (type == t.type) return &t;
  return nullptr;
}

LayerSpec layer(const char* type, std::map<std::string, LayerOption> options = {}) {
  return LayerSpec{.type = type, .options = std::move(options)};
}

}  // namespace

const std::vector<LayerTypeInfo>& layer_types() {
  static const std::vector<LayerTypeInfo> infos = [] {
    std::vector<LayerTypeInfo> out;
    for (const TypeDef& t : type_table()) {
      LayerTypeInfo info{.type = t.type, .help = t.help, .options = {}};
      for (const OptionDef& o : t.options) info.options.push_back({o.name, expects(o.kind), o.fallback});
      out.push_back(std::move(info));
    }
    return out;
  }();
  return infos;
}

void check_layer(const LayerSpec& spec, const std::string& where) {
  const TypeDef* def = find_type(spec.type);
  if (!def) {
    std::vector<std::string> names;
    for (const TypeDef& t : type_table()) names.emplace_back(t.type);
    const std::string near = closest(spec.type, names);
    std::string all;
    for (const std::string& n : names) all += (all.empty() ? "" : ", ") + n;
    throw ConfigError(where + ": unknown layer type '" + spec.type + "'" +
                      (near.empty() ? "" : "; did you mean '" + near + "'?") + " (types: " + all + ")");
  }
  const std::string at = where + " (" + spec.type + ")";
  for (const auto& option : spec.options) {
    const std::string& name = option.first;
    const LayerOption& value = option.second;
    const auto o = std::find_if(def->options.begin(), def->options.end(),
                                [&name](const OptionDef& d) { return name == d.name; });
    if (o == def->options.end()) {
      std::vector<std::string> names;
      for (const OptionDef& d : def->options) names.emplace_back(d.name);
      const std::string near = closest(name, names);
      std::string all;
      for (const std::string& n : names) all += (all.empty() ? "" : ", ") + n;
      throw ConfigError(
          at + ": unknown option '" + name + "'" + (near.empty() ? "" : "; did you mean '" + near + "'?") +
          (all.empty() ? std::string(" (this type has no options)") : " (options: " + all + ")"));
    }
    BP_CHECK(fits(o->kind, value), ConfigError, at, ": ", name, " must be ", expects(o->kind), ", got ",
             detail::show(value));
  }
  for (const OptionDef& o : def->options)
    BP_CHECK(*o.fallback != '\0' || spec.options.contains(o.name), ConfigError, at, ": needs ", o.name, " (",
             expects(o.kind), ")");
}

std::vector<LayerSpec> preset_layers(const std::string& arch) {
  if (arch == "lenet5")  // LeCun et al. 1998 with ReLU and max pooling, as it is trained today
    return {layer("conv2d",
                  {{"out", std::int64_t{6}}, {"kernel", std::int64_t{5}}, {"padding", std::int64_t{2}}}),
            layer("relu"),
            layer("maxpool2d", {{"kernel", std::int64_t{2}}}),
            layer("conv2d", {{"out", std::int64_t{16}}, {"kernel", std::int64_t{5}}}),
            layer("relu"),
            layer("maxpool2d", {{"kernel", std::int64_t{2}}}),
            layer("flatten"),
            layer("dense", {{"out", std::int64_t{120}}}),
            layer("relu"),
            layer("dense", {{"out", std::int64_t{84}}}),
            layer("relu"),
            layer("dense")};
  if (arch == "cnn") {  // three convolution blocks with batch normalisation, then a dense head with dropout
    std::vector<LayerSpec> out;
    for (const std::int64_t channels : {32, 64, 128}) {
      out.push_back(layer(
          "conv2d",
          {{"out", channels}, {"kernel", std::int64_t{3}}, {"padding", std::int64_t{1}}, {"bias", false}}));
      out.push_back(layer("batchnorm"));
      out.push_back(layer("relu"));
      out.push_back(layer("maxpool2d", {{"kernel", std::int64_t{2}}}));
    }
    for (LayerSpec l : {layer("flatten"), layer("dense", {{"out", std::int64_t{256}}}), layer("relu"),
                        layer("dropout", {{"p", 0.5}}), layer("dense")})
      out.push_back(std::move(l));
    return out;
  }
  throw ConfigError("model.arch (--arch): expected mlp, lenet5, cnn or custom, got '" + arch + "'");
}

std::vector<LayerSpec> network_layers(const ModelConfig& c) {
  if (c.arch == "mlp") return {};
  if (c.arch == "custom") return c.layer;
  return preset_layers(c.arch);
}

}  // namespace backprop::config
