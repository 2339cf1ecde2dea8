// The module tree: a registry of module types by name, the writer of a network's tree as JSON, and the
// checked reader that builds the network again.
#include <backprop/error.hpp>
#include <backprop/io/module_tree.hpp>
#include <backprop/nn.hpp>
#include <backprop/nn/reduce.hpp>
#include <climits>
#include <cmath>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>

namespace backprop::io {

namespace {

using json = nlohmann::json;

// A module tree deeper than this is refused (real networks nest a handful of levels).
constexpr int kMaxModuleDepth = 64;
// JSON nesting: two levels per module (the node and its children array), plus options and their lists.
constexpr int kMaxJsonDepth = 2 * kMaxModuleDepth + 8;

struct Entry {
  std::string name;
  ModuleOptionsWriter options;
  ModuleFactory factory;
};

DType dtype_option(const ModuleOptions& o) {
  const std::string& name = o.text("dtype");
  if (name == dtype_name(f32)) return f32;
  if (name == dtype_name(f64)) return f64;
  throw ValueError("option \"dtype\" must be f32 or f64, got '" + name + "'");
}

nn::Nonlinearity nonlinearity_option(const ModuleOptions& o, const std::string& key) {
  const std::string& name = o.text(key);
  for (nn::Nonlinearity n : {nn::Nonlinearity::linear, nn::Nonlinearity::sigmoid, nn::Nonlinearity::tanh,
                             nn::Nonlinearity::relu, nn::Nonlinearity::leaky_relu})
    if (name == nn::to_string(n)) return n;
  throw ValueError("option \"" + key + "\" must be linear, sigmoid, tanh, relu or leaky_relu, got '" + name +
                   "'");
}

// Convolution and pooling options: sizes as [h, w] lists (the 1-D Conv1d keeps plain numbers).
Size2 pair_option(const ModuleOptions& o, const std::string& name) {
  const std::vector<std::int64_t> v = o.integers(name);
  BP_CHECK(v.size() == 2, ValueError, "option \"", name, "\" must be a list of 2 integers [h, w], got ",
           v.size(), " values");
  return Size2(v[0], v[1]);
}

std::vector<std::int64_t> pair_value(Size2 s) {
  return {s.h, s.w};
}

template <class M>
ModuleOptions conv2d_options(const M& m, const nn::ConvOptions& c, bool transposed) {
  ModuleOptions o;
  o.set("in_channels", m.in_channels())
      .set("out_channels", m.out_channels())
      .set("kernel_size", pair_value(m.kernel_size()))
      .set("stride", pair_value(c.stride))
      .set("padding", pair_value(c.padding.size))
      .set("dilation", pair_value(c.dilation))
      .set("groups", c.groups)
      .set("bias", m.bias().defined())
      .set("dtype", dtype_name(m.weight().dtype()));
  if (transposed)
    o.set("output_padding", pair_value(c.output_padding));
  else
    o.set("padding_same", c.padding.same);
  return o;
}

nn::ConvOptions conv2d_config(const ModuleOptions& o, bool transposed) {
  nn::ConvOptions c{.stride = pair_option(o, "stride"),
                    .padding = pair_option(o, "padding"),
                    .dilation = pair_option(o, "dilation"),
                    .groups = o.integer("groups"),
                    .bias = o.boolean("bias"),
                    .dtype = dtype_option(o)};
  if (transposed)
    c.output_padding = pair_option(o, "output_padding");
  else if (o.boolean("padding_same"))
    c.padding = ConvPadding("same");
  BP_CHECK(c.groups > 0, ValueError, "option \"groups\" must be positive, got ", c.groups);
  return c;
}

ModuleOptions pool_options(Size2 kernel, const nn::PoolOptions& p) {
  return ModuleOptions()
      .set("kernel_size", pair_value(kernel))
      .set("stride", pair_value(p.stride))
      .set("padding", pair_value(p.padding))
      .set("dilation", pair_value(p.dilation))
      .set("ceil_mode", p.ceil_mode)
      .set("count_include_pad", p.count_include_pad);
}

nn::PoolOptions pool_config(const ModuleOptions& o) {
  return nn::PoolOptions{.stride = pair_option(o, "stride"),
                         .padding = pair_option(o, "padding"),
                         .dilation = pair_option(o, "dilation"),
                         .ceil_mode = o.boolean("ceil_mode"),
                         .count_include_pad = o.boolean("count_include_pad")};
}

// No options and no children: the factory just makes one.
template <class M>
ModuleFactory plain() {
  return [](const ModuleOptions&, const ModuleChildren&) { return std::make_shared<M>(); };
}

class Registry {
 public:
  Registry() { register_builtins(); }

  void add(std::type_index type, const std::string& name, ModuleOptionsWriter options,
           ModuleFactory factory) {
    BP_CHECK(!name.empty() && name.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                     "0123456789_") == std::string::npos,
             ValueError, "register_module: type name '", name, "' must be letters, digits and '_'");
    BP_CHECK(options && factory, ValueError, "register_module: '", name,
             "' needs an options writer and a factory");
    std::lock_guard lock(mutex_);
    BP_CHECK(!by_name_.contains(name), ValueError, "register_module: the type name '", name,
             "' is registered already");
    BP_CHECK(!by_type_.contains(type), ValueError,
             "register_module: this C++ type is registered already, as '", by_type_.at(type).name, "'");
    by_type_.emplace(type, Entry{name, std::move(options), factory});
    by_name_.emplace(name, std::move(factory));
  }

  // Copies, so that a factory runs without the lock (it may itself register or look up types).
  std::optional<Entry> find(std::type_index type) const {
    std::lock_guard lock(mutex_);
    auto it = by_type_.find(type);
    if (it == by_type_.end()) return std::nullopt;
    return it->second;
  }
  ModuleFactory find(const std::string& name) const {
    std::lock_guard lock(mutex_);
    auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : it->second;
  }
  std::vector<std::string> names() const {
    std::lock_guard lock(mutex_);
    std::vector<std::string> out;
    for (const auto& [name, _] : by_name_) out.push_back(name);
    return out;
  }

 private:
  template <class M>
  void reg(const std::string& name, std::function<ModuleOptions(const M&)> options, ModuleFactory factory) {
    add(
        typeid(M), name, [options](const nn::Module& m) { return options(static_cast<const M&>(m)); },
        std::move(factory));
  }
  template <class M>
  void reg(const std::string& name, ModuleFactory factory) {
    reg<M>(
        name, [](const M&) { return ModuleOptions(); }, std::move(factory));
  }

  // The built-in layers and containers, one registration each. The weights a factory initialises are
  // overwritten by the file's tensors, so the generator's seed does not matter.
  void register_builtins() {
    using nn::ModulePtr;
    reg<nn::Sequential>("Sequential", [](const ModuleOptions&, const ModuleChildren& children) {
      auto net = std::make_shared<nn::Sequential>();
      for (const auto& [_, child] : children) net->push_back(child);
      return net;
    });
    reg<nn::Linear>(
        "Linear",
        [](const nn::Linear& m) {
          return ModuleOptions()
              .set("in_features", m.in_features())
              .set("out_features", m.out_features())
              .set("bias", m.bias().defined())
              .set("dtype", dtype_name(m.weight().dtype()));
        },
        [](const ModuleOptions& o, const ModuleChildren&) -> ModulePtr {
          const std::int64_t in = o.integer("in_features"), out = o.integer("out_features");
          const bool bias = o.boolean("bias");
          o.claim({out, in});
          if (bias) o.claim({out});
          Generator gen(0);
          return std::make_shared<nn::Linear>(in, out, gen,
                                              nn::LinearOptions{.bias = bias, .dtype = dtype_option(o)});
        });
    reg<nn::DropConnect>(
        "DropConnect",
        [](const nn::DropConnect& m) {
          const nn::DropConnectOptions& d = m.options();
          return ModuleOptions()
              .set("in_features", m.weight().size(1))
              .set("out_features", m.weight().size(0))
              .set("p", m.p())
              .set("bias", m.bias().defined())
              .set("inference", d.inference == nn::DropConnectInference::mean ? "mean" : "gaussian")
              .set("samples", d.samples)
              .set("activation", nn::to_string(d.activation))
              .set("slope", d.slope)
              .set("dtype", dtype_name(m.weight().dtype()));
        },
        [](const ModuleOptions& o, const ModuleChildren&) -> ModulePtr {
          const std::int64_t in = o.integer("in_features"), out = o.integer("out_features");
          const std::string& inference = o.text("inference");
          BP_CHECK(inference == "mean" || inference == "gaussian", ValueError,
                   "option \"inference\" must be mean or gaussian, got '", inference, "'");
          const std::int64_t samples = o.integer("samples");
          BP_CHECK(samples >= 1 && samples <= 1'000'000, ValueError,
                   "option \"samples\" must be in [1, 1000000], got ", samples);
          const nn::DropConnectOptions d{.bias = o.boolean("bias"),
                                         .inference = inference == "mean"
                                                          ? nn::DropConnectInference::mean
                                                          : nn::DropConnectInference::gaussian,
                                         .samples = static_cast<int>(samples),
                                         .activation = nonlinearity_option(o, "activation"),
                                         .slope = o.number("slope"),
                                         .dtype = dtype_option(o)};
          o.claim({out, in});
          if (d.bias) o.claim({out});
          Generator gen(0);
          return std::make_shared<nn::DropConnect>(in, out, o.number("p"), gen, d);
        });
    reg<nn::BatchNorm1d>(
        "BatchNorm1d",
        [](const nn::BatchNorm1d& m) {
          const nn::BatchNormOptions& b = m.options();
          return ModuleOptions()
              .set("num_features", m.num_features())
              .set("eps", b.eps)
              .set("momentum", b.momentum)
              .set("affine", b.affine)
              .set("dtype", dtype_name(b.dtype));
        },
        [](const ModuleOptions& o, const ModuleChildren&) -> ModulePtr {
          const std::int64_t features = o.integer("num_features");
          o.claim({o.boolean("affine") ? 4 : 2, features});
          return std::make_shared<nn::BatchNorm1d>(features,
                                                   nn::BatchNormOptions{.eps = o.number("eps"),
                                                                        .momentum = o.number("momentum"),
                                                                        .affine = o.boolean("affine"),
                                                                        .dtype = dtype_option(o)});
        });
    reg<nn::Dropout>(
        "Dropout", [](const nn::Dropout& m) { return ModuleOptions().set("p", m.p()); },
        [](const ModuleOptions& o, const ModuleChildren&) -> ModulePtr {
          Generator gen(0);
          return std::make_shared<nn::Dropout>(o.number("p"), gen);
        });
    reg<nn::LeakyReLU>(
        "LeakyReLU", [](const nn::LeakyReLU& m) { return ModuleOptions().set("negative_slope", m.slope()); },
        [](const ModuleOptions& o, const ModuleChildren&) -> ModulePtr {
          return std::make_shared<nn::LeakyReLU>(o.number("negative_slope"));
        });
    reg<nn::Softmax>(
        "Softmax", [](const nn::Softmax& m) { return ModuleOptions().set("dim", m.axis()); },
        [](const ModuleOptions& o, const ModuleChildren&) -> ModulePtr {
          return std::make_shared<nn::Softmax>(o.integer("dim"));
        });
    reg<nn::LogSoftmax>(
        "LogSoftmax", [](const nn::LogSoftmax& m) { return ModuleOptions().set("dim", m.axis()); },
        [](const ModuleOptions& o, const ModuleChildren&) -> ModulePtr {
          return std::make_shared<nn::LogSoftmax>(o.integer("dim"));
        });
    reg<nn::Sigmoid>("Sigmoid", plain<nn::Sigmoid>());
    reg<nn::Tanh>("Tanh", plain<nn::Tanh>());
    reg<nn::ReLU>("ReLU", plain<nn::ReLU>());
    reg<nn::Identity>("Identity", plain<nn::Identity>());
    reg<nn::Conv1d>(
        "Conv1d",
        [](const nn::Conv1d& m) {
          const nn::ConvOptions& c = m.options();
          return ModuleOptions()
              .set("in_channels", m.in_channels())
              .set("out_channels", m.out_channels())
              .set("kernel_size", m.kernel_size())
              .set("stride", c.stride.w)
              .set("padding", c.padding.size.w)
              .set("padding_same", c.padding.same)
              .set("dilation", c.dilation.w)
              .set("groups", c.groups)
              .set("bias", m.bias().defined())
              .set("dtype", dtype_name(m.weight().dtype()));
        },
        [](const ModuleOptions& o, const ModuleChildren&) -> ModulePtr {
          const std::int64_t in = o.integer("in_channels"), out = o.integer("out_channels");
          const std::int64_t k = o.integer("kernel_size"), groups = o.integer("groups");
          nn::ConvOptions c{.stride = o.integer("stride"),
                            .padding = o.integer("padding"),
                            .dilation = o.integer("dilation"),
                            .groups = groups,
                            .bias = o.boolean("bias"),
                            .dtype = dtype_option(o)};
          if (o.boolean("padding_same")) c.padding = ConvPadding("same");
          BP_CHECK(groups > 0, ValueError, "option \"groups\" must be positive, got ", groups);
          o.claim({out, in / groups, k});
          if (c.bias) o.claim({out});
          Generator gen(0);
          return std::make_shared<nn::Conv1d>(in, out, k, gen, c);
        });
    reg<nn::Conv2d>(
        "Conv2d", [](const nn::Conv2d& m) { return conv2d_options(m, m.options(), false); },
        [](const ModuleOptions& o, const ModuleChildren&) -> ModulePtr {
          const std::int64_t in = o.integer("in_channels"), out = o.integer("out_channels");
          const nn::ConvOptions c = conv2d_config(o, false);
          const Size2 k = pair_option(o, "kernel_size");
          o.claim({out, in / c.groups, k.h, k.w});
          if (c.bias) o.claim({out});
          Generator gen(0);
          return std::make_shared<nn::Conv2d>(in, out, k, gen, c);
        });
    reg<nn::ConvTranspose2d>(
        "ConvTranspose2d", [](const nn::ConvTranspose2d& m) { return conv2d_options(m, m.options(), true); },
        [](const ModuleOptions& o, const ModuleChildren&) -> ModulePtr {
          const std::int64_t in = o.integer("in_channels"), out = o.integer("out_channels");
          const nn::ConvOptions c = conv2d_config(o, true);
          const Size2 k = pair_option(o, "kernel_size");
          o.claim({in, out / c.groups, k.h, k.w});
          if (c.bias) o.claim({out});
          Generator gen(0);
          return std::make_shared<nn::ConvTranspose2d>(in, out, k, gen, c);
        });
    reg<nn::MaxPool2d>(
        "MaxPool2d", [](const nn::MaxPool2d& m) { return pool_options(m.kernel_size(), m.options()); },
        [](const ModuleOptions& o, const ModuleChildren&) -> ModulePtr {
          return std::make_shared<nn::MaxPool2d>(pair_option(o, "kernel_size"), pool_config(o));
        });
    reg<nn::AvgPool2d>(
        "AvgPool2d", [](const nn::AvgPool2d& m) { return pool_options(m.kernel_size(), m.options()); },
        [](const ModuleOptions& o, const ModuleChildren&) -> ModulePtr {
          return std::make_shared<nn::AvgPool2d>(pair_option(o, "kernel_size"), pool_config(o));
        });
    reg<nn::AdaptiveAvgPool2d>(
        "AdaptiveAvgPool2d",
        [](const nn::AdaptiveAvgPool2d& m) {
          return ModuleOptions().set("output_size",
                                     std::vector<std::int64_t>{m.output_size().h, m.output_size().w});
        },
        [](const ModuleOptions& o, const ModuleChildren&) -> ModulePtr {
          return std::make_shared<nn::AdaptiveAvgPool2d>(pair_option(o, "output_size"));
        });
    reg<nn::BatchNorm2d>(
        "BatchNorm2d",
        [](const nn::BatchNorm2d& m) {
          const nn::BatchNormOptions& b = m.options();
          return ModuleOptions()
              .set("num_features", m.num_features())
              .set("eps", b.eps)
              .set("momentum", b.momentum)
              .set("affine", b.affine)
              .set("dtype", dtype_name(b.dtype));
        },
        [](const ModuleOptions& o, const ModuleChildren&) -> ModulePtr {
          const std::int64_t features = o.integer("num_features");
          o.claim({o.boolean("affine") ? 4 : 2, features});
          return std::make_shared<nn::BatchNorm2d>(features,
                                                   nn::BatchNormOptions{.eps = o.number("eps"),
                                                                        .momentum = o.number("momentum"),
                                                                        .affine = o.boolean("affine"),
                                                                        .dtype = dtype_option(o)});
        });
    reg<nn::Dropout2d>(
        "Dropout2d", [](const nn::Dropout2d& m) { return ModuleOptions().set("p", m.p()); },
        [](const ModuleOptions& o, const ModuleChildren&) -> ModulePtr {
          Generator gen(0);
          return std::make_shared<nn::Dropout2d>(o.number("p"), gen);
        });
    reg<nn::LayerNorm>(
        "LayerNorm",
        [](const nn::LayerNorm& m) {
          return ModuleOptions()
              .set("normalized_shape", m.normalized_shape())
              .set("eps", m.options().eps)
              .set("elementwise_affine", m.options().elementwise_affine)
              .set("dtype", dtype_name(m.options().dtype));
        },
        [](const ModuleOptions& o, const ModuleChildren&) -> ModulePtr {
          const std::vector<std::int64_t> shape = o.integers("normalized_shape");
          const bool affine = o.boolean("elementwise_affine");
          std::int64_t n = 1;
          for (std::int64_t d : shape) {
            BP_CHECK(d > 0 && n <= INT64_MAX / d, ValueError,
                     "option \"normalized_shape\" needs positive sizes whose product fits, got ",
                     to_string(shape));
            n *= d;
          }
          if (affine) o.claim({2, n});
          return std::make_shared<nn::LayerNorm>(
              shape, nn::LayerNormOptions{
                         .eps = o.number("eps"), .elementwise_affine = affine, .dtype = dtype_option(o)});
        });
    reg<nn::Flatten>(
        "Flatten",
        [](const nn::Flatten& m) {
          return ModuleOptions().set("start_dim", m.start_dim()).set("end_dim", m.end_dim());
        },
        [](const ModuleOptions& o, const ModuleChildren&) -> ModulePtr {
          return std::make_shared<nn::Flatten>(o.integer("start_dim"), o.integer("end_dim"));
        });
    reg<nn::Unflatten>(
        "Unflatten",
        [](const nn::Unflatten& m) { return ModuleOptions().set("dim", m.dim()).set("sizes", m.sizes()); },
        [](const ModuleOptions& o, const ModuleChildren&) -> ModulePtr {
          return std::make_shared<nn::Unflatten>(o.integer("dim"), o.integers("sizes"));
        });
    reg<nn::ModuleList>("ModuleList", [](const ModuleOptions&, const ModuleChildren& children) -> ModulePtr {
      auto list = std::make_shared<nn::ModuleList>();
      for (const auto& [_, child] : children) list->push_back(child);
      return list;
    });
    reg<nn::ModuleDict>("ModuleDict", [](const ModuleOptions&, const ModuleChildren& children) -> ModulePtr {
      auto dict = std::make_shared<nn::ModuleDict>();
      for (const auto& [key, child] : children) dict->insert(key, child);
      return dict;
    });
    reg<nn::Residual>("Residual", [](const ModuleOptions&, const ModuleChildren& children) -> ModulePtr {
      BP_CHECK(children.size() == 1, ValueError, "a Residual has one child (\"block\"), the tree lists ",
               children.size());
      return std::make_shared<nn::Residual>(children[0].second);
    });
    reg<nn::Embedding>(
        "Embedding",
        [](const nn::Embedding& m) {
          ModuleOptions o;
          o.set("num_embeddings", m.num_embeddings())
              .set("embedding_dim", m.embedding_dim())
              .set("dtype", dtype_name(m.weight().dtype()));
          if (m.padding_idx()) o.set("padding_idx", *m.padding_idx());
          return o;
        },
        [](const ModuleOptions& o, const ModuleChildren&) -> ModulePtr {
          const std::int64_t rows = o.integer("num_embeddings"), dim = o.integer("embedding_dim");
          o.claim({rows, dim});
          Generator gen(0);
          return std::make_shared<nn::Embedding>(
              rows, dim, gen,
              nn::EmbeddingOptions{.padding_idx = o.contains("padding_idx")
                                                      ? std::optional<std::int64_t>(o.integer("padding_idx"))
                                                      : std::nullopt,
                                   .dtype = dtype_option(o)});
        });
    reg<nn::MultiheadAttention>(
        "MultiheadAttention",
        [](const nn::MultiheadAttention& m) {
          return ModuleOptions()
              .set("embed_dim", m.embed_dim())
              .set("num_heads", m.num_heads())
              .set("bias", m.options().bias)
              .set("batch_first", m.options().batch_first)
              .set("dtype", dtype_name(m.options().dtype));
        },
        [](const ModuleOptions& o, const ModuleChildren& children) -> ModulePtr {
          const std::int64_t embed = o.integer("embed_dim");
          const bool bias = o.boolean("bias");
          o.claim({3 * std::min<std::int64_t>(embed, INT64_MAX / 4), embed});
          if (bias) o.claim({3 * std::min<std::int64_t>(embed, INT64_MAX / 4)});
          BP_CHECK(children.size() == 1, ValueError,
                   "a MultiheadAttention has one child (\"out_proj\"), the tree lists ", children.size());
          auto out_proj = std::dynamic_pointer_cast<nn::Linear>(children[0].second);
          BP_CHECK(out_proj != nullptr, ValueError, "child \"out_proj\" must be a Linear, got ",
                   children[0].second->repr());
          Generator gen(0);
          return std::make_shared<nn::MultiheadAttention>(
              embed, o.integer("num_heads"), gen,
              nn::MultiheadAttentionOptions{
                  .bias = bias, .batch_first = o.boolean("batch_first"), .dtype = dtype_option(o)},
              out_proj);
        });
    reg<nn::Mean>(
        "Mean",
        [](const nn::Mean& m) { return ModuleOptions().set("dim", m.dim()).set("keepdim", m.keepdim()); },
        [](const ModuleOptions& o, const ModuleChildren&) -> ModulePtr {
          return std::make_shared<nn::Mean>(o.integer("dim"), o.boolean("keepdim"));
        });
  }

  mutable std::mutex mutex_;
  std::map<std::type_index, Entry> by_type_;
  std::map<std::string, ModuleFactory> by_name_;
};

Registry& registry() {
  static Registry r;
  return r;
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

// ---- writing ----

// Written with insertion order kept, so each node reads name, type, options, children.
using ordered_json = nlohmann::ordered_json;

ordered_json options_json(const ModuleOptions& o) {
  ordered_json out = ordered_json::object();
  for (const auto& entry : o.values()) {  // not a structured binding: clang 14 cannot capture one
    const std::string& name = entry.first;
    std::visit([&](const auto& v) { out[name] = v; }, entry.second);
  }
  return out;
}

// `name` is empty for the root. `seen` maps each module written so far to its path, for shared layers.
ordered_json node_json(const nn::Module& m, const std::string& name, const std::string& path,
                       std::map<const nn::Module*, std::string>& seen) {
  const auto entry = registry().find(std::type_index(typeid(m)));
  BP_CHECK(
      entry.has_value(), ValueError, "module_tree: the module at '", path.empty() ? "(root)" : path, "' (",
      m.repr().substr(0, m.repr().find('\n')),
      ") is of a type that is not registered; call io::register_module<T>(name, options, factory) first");
  ordered_json node = ordered_json::object();
  if (!path.empty()) node["name"] = name;
  node["type"] = entry->name;
  node["options"] = options_json(entry->options(m));
  ordered_json children = ordered_json::array();
  for (const auto& [child_name, child] : m.named_children()) {
    const std::string child_path = path.empty() ? child_name : path + "." + child_name;
    auto it = seen.find(child.get());
    if (it != seen.end()) {
      children.push_back({{"name", child_name}, {"same_as", it->second}});
      continue;
    }
    seen.emplace(child.get(), child_path);
    children.push_back(node_json(*child, child_name, child_path, seen));
  }
  node["children"] = std::move(children);
  return node;
}

// ---- reading ----

class TreeReader {
 public:
  TreeReader(const std::string& origin, std::int64_t budget)
      : origin_(origin), budget_(std::make_shared<std::int64_t>(budget)) {}

  nn::ModulePtr build(const json& node, const std::string& path, int depth) {
    const std::string at = where(path);
    BP_CHECK(depth <= kMaxModuleDepth, FileError, at, ": the tree nests deeper than ", kMaxModuleDepth,
             " modules");
    BP_CHECK(node.is_object(), FileError, at,
             ": expected a JSON object {\"type\", \"options\", \"children\"}, got ", kind(node));
    const std::string& type = string_field(node, "type", at);
    const json& options = field(node, "options", at, json::value_t::object, "an object");
    const json& children = field(node, "children", at, json::value_t::array, "an array");
    for (const auto& [key, _] : node.items())
      BP_CHECK(key == "type" || key == "options" || key == "children" || (key == "name" && !path.empty()) ||
                   (key == "tied" && path.empty()),
               FileError, at, ": unexpected field \"", key, "\"");
    const ModuleFactory factory = registry().find(type);
    BP_CHECK(factory != nullptr, FileError, at, ": unknown module type '", type,
             "' (known: ", join(registered_module_types()),
             "); a module type of your own must be registered with "
             "io::register_module before loading");

    ModuleChildren built;
    std::set<std::string> names;
    for (std::size_t i = 0; i < children.size(); ++i) {
      const json& c = children[i];
      const std::string child_at = at + ", child " + std::to_string(i);
      BP_CHECK(c.is_object(), FileError, child_at, ": expected a JSON object, got ", kind(c));
      const std::string& name = string_field(c, "name", child_at);
      BP_CHECK(!name.empty() && name.find('.') == std::string::npos && names.insert(name).second, FileError,
               child_at, ": the name '", name, "' is empty, contains '.' or repeats a sibling's");
      const std::string child_path = path.empty() ? name : path + "." + name;
      if (c.contains("same_as")) {
        const std::string& target = string_field(c, "same_as", where(child_path));
        BP_CHECK(c.size() == 2, FileError, where(child_path),
                 ": a \"same_as\" entry has only \"name\" and \"same_as\"");
        auto it = built_.find(target);
        BP_CHECK(it != built_.end(), FileError, where(child_path), ": \"same_as\" names '", target,
                 "', which is not a module built earlier in the tree");
        built.emplace_back(name, it->second);
      } else {
        built.emplace_back(name, build(c, child_path, depth + 1));
      }
    }

    ModuleOptions o;
    for (const auto& [key, value] : options.items()) set_option(o, key, value, at);
    o.set_context(at + " (" + type + ")", budget_);
    nn::ModulePtr m;
    try {
      m = factory(o, built);
    } catch (const FileError&) {
      throw;
    } catch (const OutOfMemoryError&) {
      throw;
    } catch (const Error& e) {
      throw FileError(at + " (" + type + "): " + e.what());
    }
    BP_CHECK(m != nullptr, FileError, at, " (", type, "): the factory returned no module");
    const auto made = m->named_children();
    bool same = made.size() == built.size();
    for (std::size_t i = 0; same && i < made.size(); ++i)
      same = made[i].first == built[i].first && made[i].second == built[i].second;
    if (!same) {
      std::vector<std::string> want, got;
      for (const auto& [n, _] : built) want.push_back(n);
      for (const auto& [n, _] : made) got.push_back(n);
      throw FileError(at + " (" + type + "): the tree lists the children [" + join(want) + "] but " + type +
                      " built [" + join(got) + "]");
    }
    built_.emplace(path, m);
    return m;
  }

  // Shares each tied parameter with the tensor it names (the root's "tied" list, written by module_tree).
  void tie(const json& root, nn::Module& net) {
    if (!root.contains("tied")) return;
    const std::string at = where("") + ", field \"tied\"";
    const json& tied = root.at("tied");
    BP_CHECK(tied.is_array(), FileError, at, ": expected an array, got ", kind(tied));
    std::map<std::string, Tensor> params;
    for (auto& [name, t] : net.named_parameters()) params.emplace(name, t);
    std::set<std::string> done;
    for (std::size_t i = 0; i < tied.size(); ++i) {
      const json& e = tied[i];
      const std::string entry_at = at + ", entry " + std::to_string(i);
      BP_CHECK(e.is_object() && e.size() == 2, FileError, entry_at,
               ": expected an object {\"tensor\", \"same_as\"}, got ", e.dump().substr(0, 80));
      const std::string& name = string_field(e, "tensor", entry_at);
      const std::string& target = string_field(e, "same_as", entry_at);
      auto t = params.find(target);
      BP_CHECK(t != params.end() && !done.contains(target), FileError, entry_at, ": \"same_as\" names '",
               target, "', which is not an untied parameter of the tree");
      BP_CHECK(params.contains(name) && done.insert(name).second && name != target, FileError, entry_at,
               ": \"tensor\" names '", name, "', which is not a parameter of the tree (or is tied twice)");
      const std::size_t dot = name.rfind('.');
      auto owner = built_.find(dot == std::string::npos ? std::string() : name.substr(0, dot));
      BP_CHECK(owner != built_.end(), FileError, entry_at, ": no module owns the parameter '", name, "'");
      try {
        owner->second->share_parameter(dot == std::string::npos ? name : name.substr(dot + 1), t->second);
      } catch (const Error& e2) {
        throw FileError(entry_at + ": " + e2.what());
      }
    }
  }

  std::string where(const std::string& path) const {
    return origin_ + ": __metadata__ 'module' at '" + (path.empty() ? std::string("(root)") : path) + "'";
  }

 private:
  static std::string kind(const json& j) { return std::string("a JSON ") + j.type_name(); }

  static const json& field(const json& node, const char* name, const std::string& at, json::value_t type,
                           const char* expected) {
    BP_CHECK(node.contains(name), FileError, at, ": missing field \"", name, "\"");
    const json& v = node.at(name);
    BP_CHECK(v.type() == type, FileError, at, ": field \"", name, "\" is ", kind(v), ", expected ", expected);
    return v;
  }
  static const std::string& string_field(const json& node, const char* name, const std::string& at) {
    return field(node, name, at, json::value_t::string, "a string").get_ref<const std::string&>();
  }

  static void set_option(ModuleOptions& o, const std::string& key, const json& v, const std::string& at) {
    const std::string bad = at + ": option \"" + key + "\" is ";
    switch (v.type()) {
      case json::value_t::boolean:
        o.set(key, v.get<bool>());
        return;
      case json::value_t::number_integer:
        o.set(key, v.get<std::int64_t>());
        return;
      case json::value_t::number_unsigned:
        BP_CHECK(v.get<std::uint64_t>() <= static_cast<std::uint64_t>(INT64_MAX), FileError, bad, v.dump(),
                 ", more than a 64-bit signed integer holds");
        o.set(key, v.get<std::int64_t>());
        return;
      case json::value_t::number_float:
        o.set(key, v.get<double>());
        return;
      case json::value_t::string:
        o.set(key, v.get<std::string>());
        return;
      case json::value_t::array: {
        std::vector<std::int64_t> list;
        for (const json& e : v) {
          BP_CHECK(
              e.is_number_integer() &&
                  (e.is_number_unsigned() ? e.get<std::uint64_t>() <= static_cast<std::uint64_t>(INT64_MAX)
                                          : true),
              FileError, bad, "a list with ", e.dump(), ", expected a list of 64-bit integers");
          list.push_back(e.get<std::int64_t>());
        }
        o.set(key, std::move(list));
        return;
      }
      default:
        throw FileError(bad + kind(v) + ", expected a boolean, number, string or list of integers");
    }
  }

  std::string origin_;
  std::shared_ptr<std::int64_t> budget_;
  std::map<std::string, nn::ModulePtr> built_;
};

json parse_tree(const std::string& text, const std::string& origin) {
  const json::parser_callback_t depth_limit = [&](int depth, json::parse_event_t event, json&) {
    if ((event == json::parse_event_t::object_start || event == json::parse_event_t::array_start) &&
        depth >= kMaxJsonDepth)
      throw FileError(origin + ": __metadata__ 'module' nests deeper than " + std::to_string(kMaxJsonDepth) +
                      " JSON levels");
    return true;
  };
  try {
    return json::parse(text, depth_limit);
  } catch (const json::exception& e) {
    throw FileError(origin + ": __metadata__ 'module' is not valid JSON (" + e.what() +
                    "); expected the module tree");
  }
}

}  // namespace

// ---- ModuleOptions ----

ModuleOptions& ModuleOptions::set(const std::string& name, bool value) {
  values_[name] = value;
  return *this;
}
ModuleOptions& ModuleOptions::set(const std::string& name, std::int64_t value) {
  values_[name] = value;
  return *this;
}
ModuleOptions& ModuleOptions::set(const std::string& name, double value) {
  BP_CHECK(std::isfinite(value), ValueError, "ModuleOptions: option \"", name, "\" must be finite, got ",
           value);
  values_[name] = value;
  return *this;
}
ModuleOptions& ModuleOptions::set(const std::string& name, std::string value) {
  values_[name] = std::move(value);
  return *this;
}
ModuleOptions& ModuleOptions::set(const std::string& name, std::vector<std::int64_t> value) {
  values_[name] = std::move(value);
  return *this;
}

const ModuleOptions::Value& ModuleOptions::find_(const std::string& name, const char* kind) const {
  auto it = values_.find(name);
  BP_CHECK(it != values_.end(), FileError, where_, ": missing option \"", name, "\" (", kind, ")");
  return it->second;
}

bool ModuleOptions::boolean(const std::string& name) const {
  const Value& v = find_(name, "a boolean");
  BP_CHECK(std::holds_alternative<bool>(v), FileError, where_, ": option \"", name, "\" must be a boolean");
  return std::get<bool>(v);
}
std::int64_t ModuleOptions::integer(const std::string& name) const {
  const Value& v = find_(name, "an integer");
  BP_CHECK(std::holds_alternative<std::int64_t>(v), FileError, where_, ": option \"", name,
           "\" must be an integer");
  return std::get<std::int64_t>(v);
}
double ModuleOptions::number(const std::string& name) const {
  const Value& v = find_(name, "a number");
  if (std::holds_alternative<std::int64_t>(v)) return static_cast<double>(std::get<std::int64_t>(v));
  BP_CHECK(std::holds_alternative<double>(v), FileError, where_, ": option \"", name, "\" must be a number");
  return std::get<double>(v);
}
const std::string& ModuleOptions::text(const std::string& name) const {
  const Value& v = find_(name, "a string");
  BP_CHECK(std::holds_alternative<std::string>(v), FileError, where_, ": option \"", name,
           "\" must be a string");
  return std::get<std::string>(v);
}
std::vector<std::int64_t> ModuleOptions::integers(const std::string& name) const {
  const Value& v = find_(name, "a list of integers");
  BP_CHECK(std::holds_alternative<std::vector<std::int64_t>>(v), FileError, where_, ": option \"", name,
           "\" must be a list of integers");
  return std::get<std::vector<std::int64_t>>(v);
}

void ModuleOptions::claim(std::initializer_list<std::int64_t> shape) const {
  std::int64_t count = 1;
  for (std::int64_t d : shape) {
    BP_CHECK(d >= 0, FileError, where_, ": a tensor size is negative (", d, ")");
    if (d != 0 && count > INT64_MAX / d)
      count = INT64_MAX;
    else
      count *= d;
  }
  if (!budget_) return;
  BP_CHECK(count <= *budget_, FileError, where_, ": the module needs a tensor of ", count,
           " elements, more than the ", *budget_,
           " elements left for a file of this size (the tree does not match the tensors)");
  *budget_ -= count;
}

void ModuleOptions::set_context(std::string where, std::shared_ptr<std::int64_t> budget) {
  where_ = std::move(where);
  budget_ = std::move(budget);
}

// ---- registry, writer, reader ----

void register_module_type(std::type_index type, const std::string& name, ModuleOptionsWriter options,
                          ModuleFactory factory) {
  registry().add(type, name, std::move(options), std::move(factory));
}

std::vector<std::string> registered_module_types() {
  return registry().names();
}

std::string module_tree(const nn::Module& module) {
  std::map<const nn::Module*, std::string> seen{{&module, ""}};
  ordered_json root = node_json(module, "", "", seen);
  // Tied weights: a parameter tensor that a second module (not a second place of the same module) registers
  // is listed under its first name only; "tied" names the others, so loading shares the tensor again.
  std::vector<std::pair<std::string, const nn::Module*>> modules{{"", &module}};
  std::set<const nn::Module*> visited{&module};
  for (const auto& [path, child] : module.named_modules())
    if (visited.insert(child.get()).second) modules.emplace_back(path, child.get());
  std::map<const TensorImpl*, std::string> first;
  ordered_json tied = ordered_json::array();
  for (const auto& [path, m] : modules)
    for (const auto& [name, t] : m->own_parameters()) {
      const std::string full = path.empty() ? name : path + "." + name;
      auto [it, fresh] = first.emplace(t.impl(), full);
      if (!fresh) tied.push_back({{"tensor", full}, {"same_as", it->second}});
    }
  if (!tied.empty()) root["tied"] = std::move(tied);
  return root.dump();
}

nn::ModulePtr build_module_tree(const std::string& tree_json, const std::map<std::string, Tensor>& state,
                                const std::string& origin) {
  // What the factories may allocate: twice the file's elements, plus some, so that a tree that differs a
  // little from the tensors still gets the precise message about the tensor below.
  std::int64_t elements = 0;
  for (const auto& [_, t] : state) elements = std::min(elements + t.numel(), INT64_MAX / 4);
  const std::int64_t budget = 2 * elements + 4096;
  TreeReader reader(origin, budget);
  const json tree = parse_tree(tree_json, origin);
  nn::ModulePtr net = reader.build(tree, "", 0);
  reader.tie(tree, *net);

  // Every tensor the network has must be in the file, with its shape and dtype, and nothing else.
  const std::map<std::string, Tensor> mine = net->state_dict();
  for (const auto& [name, t] : mine) {
    auto it = state.find(name);
    BP_CHECK(it != state.end(), FileError, origin, ": tensor '", name, "' of the module tree (",
             to_string(t.shape()), ") is missing from the file");
    BP_CHECK(it->second.shape() == t.shape(), FileError, origin, ": tensor '", name, "' is ",
             to_string(it->second.shape()), " in the file but the module tree makes it ",
             to_string(t.shape()));
    BP_CHECK(it->second.dtype() == t.dtype(), FileError, origin, ": tensor '", name, "' is ",
             dtype_name(it->second.dtype()), " in the file but the module tree makes it ",
             dtype_name(t.dtype()));
  }
  for (const auto& [name, t] : state)
    BP_CHECK(mine.contains(name), FileError, origin, ": tensor '", name,
             "' in the file belongs to no module of the tree (unexpected tensor)");
  net->load_state_dict(state);
  net->eval();
  return net;
}

}  // namespace backprop::io
