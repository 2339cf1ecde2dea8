// ONNX export: the network traced once with a small batch (for every intermediate shape), each module turned
// into standard operators by its row of the converter table, the result written with protobuf's generated
// classes of ONNX's schema (backprop_onnx.pb.h, generated at build time from onnx.proto).
#include <backprop/error.hpp>
#include <backprop/io.hpp>
#include <backprop/io/onnx.hpp>
#include <backprop/nn.hpp>
#include <backprop/nn/reduce.hpp>
#include <backprop/ops.hpp>
#include <backprop/version.hpp>
#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <typeindex>
#include <utility>

#include "backprop_onnx.pb.h"

namespace backprop::io {

namespace {

namespace pb = backprop::onnx_proto;

// The batch the network is traced with: two rows, so that a module that mixes rows into features (or
// flattens the batch away) shows it in its output's first dimension.
constexpr std::int64_t kTraceBatch = 2;

std::string module_text(const nn::Module& m) {
  const std::string r = m.repr();
  return r.substr(0, r.find('\n'));
}

// One graph under construction: fresh value names, weights as initializers, nodes in order.
class Graph {
 public:
  Graph(pb::GraphProto& graph, DType dtype) : graph_(graph), dtype_(dtype) {}

  DType dtype() const { return dtype_; }

  // The graph input's name when it holds int64 token ids (a network whose first layer is an Embedding).
  const std::string& ids_input() const { return ids_input_; }
  void set_ids_input(const std::string& name) { ids_input_ = name; }

  // A name not used yet, from a hint such as "0.weight" or "2/Relu".
  std::string fresh(const std::string& hint) {
    std::string name = hint;
    for (int i = 1; !used_.insert(name).second; ++i) name = hint + "_" + std::to_string(i);
    return name;
  }

  // Adds `t` (converted to the graph's dtype) as an initializer named after `hint`; returns its name.
  std::string weight(const std::string& hint, const Tensor& t) {
    const std::string name = fresh(hint);
    pb::TensorProto* init = graph_.add_initializer();
    init->set_name(name);
    for (std::int64_t d : t.shape()) init->add_dims(d);
    const std::vector<double> v = t.to_vector();
    if (dtype_ == f64) {
      init->set_data_type(pb::TensorProto::DOUBLE);
      std::string raw(v.size() * sizeof(double), '\0');
      std::memcpy(raw.data(), v.data(), raw.size());
      init->set_raw_data(std::move(raw));
    } else {
      init->set_data_type(pb::TensorProto::FLOAT);
      std::vector<float> f(v.begin(), v.end());
      std::string raw(f.size() * sizeof(float), '\0');
      std::memcpy(raw.data(), f.data(), raw.size());
      init->set_raw_data(std::move(raw));
    }
    return name;
  }

  // An int64 initializer (Reshape's shape).
  std::string integers(const std::string& hint, const std::vector<std::int64_t>& values) {
    const std::string name = fresh(hint);
    pb::TensorProto* init = graph_.add_initializer();
    init->set_name(name);
    init->add_dims(static_cast<std::int64_t>(values.size()));
    init->set_data_type(pb::TensorProto::INT64);
    for (std::int64_t v : values) init->add_int64_data(v);
    return name;
  }

  // Adds the node `op` (named after `hint`) reading `inputs`; returns its one output's name. `attributes`
  // fills in the node's attributes.
  std::string node(const std::string& op, const std::string& hint, const std::vector<std::string>& inputs,
                   const std::function<void(pb::NodeProto&)>& attributes = {}) {
    return nodes(op, hint, inputs, 1, attributes)[0];
  }

  // The same for a node with `outputs` outputs (Split); returns their names.
  std::vector<std::string> nodes(const std::string& op, const std::string& hint,
                                 const std::vector<std::string>& inputs, int outputs,
                                 const std::function<void(pb::NodeProto&)>& attributes = {}) {
    pb::NodeProto* n = graph_.add_node();
    const std::string name = fresh(hint + "/" + op);
    n->set_name(name);
    n->set_op_type(op);
    for (const std::string& in : inputs) n->add_input(in);
    std::vector<std::string> names{name};
    for (int i = 1; i < outputs; ++i) names.push_back(fresh(name + ":" + std::to_string(i)));
    for (const std::string& out : names) n->add_output(out);
    if (attributes) attributes(*n);
    return names;
  }

  pb::GraphProto& proto() { return graph_; }

 private:
  pb::GraphProto& graph_;
  DType dtype_;
  std::string ids_input_;
  std::set<std::string> used_;
};

void set_float(pb::NodeProto& n, const char* name, double value) {
  pb::AttributeProto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(pb::AttributeProto::FLOAT);
  a->set_f(static_cast<float>(value));
}

void set_int(pb::NodeProto& n, const char* name, std::int64_t value) {
  pb::AttributeProto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(pb::AttributeProto::INT);
  a->set_i(value);
}

void set_ints(pb::NodeProto& n, const char* name, const std::vector<std::int64_t>& values) {
  pb::AttributeProto* a = n.add_attribute();
  a->set_name(name);
  a->set_type(pb::AttributeProto::INTS);
  for (std::int64_t v : values) a->add_ints(v);
}

// What a converter is given: the module, its path in the tree ("" for the root), the name of its input in
// the graph and its traced input (a batch of kTraceBatch examples).
struct Step {
  nn::Module& module;
  std::string path;
  std::string input;
  Tensor sample;
};

// A converter adds the module's nodes and returns the name of its output; a container calls convert() for
// its children.
using Converter = std::function<std::string(Graph&, const Step&)>;

// The table: one row per module type that has an ONNX form.
const std::map<std::type_index, std::pair<std::string, Converter>>& converters();

// Converts `module` (at `path`) reading `input`, whose traced value is `sample`, by its row of the table;
// returns the output's name and sets `sample` to the module's traced output.
std::string convert(Graph& g, nn::Module& module, const std::string& path, const std::string& input,
                    Tensor& sample) {
  const auto& table = converters();
  auto it = table.find(std::type_index(typeid(module)));
  if (it == table.end()) {
    std::set<std::string> names;
    for (const auto& [_, row] : table) names.insert(row.first);
    std::string known;
    for (const std::string& n : names) known += (known.empty() ? "" : ", ") + n;
    throw ValueError("export_onnx: the module at '" + (path.empty() ? std::string("(root)") : path) + "' (" +
                     module_text(module) + ") has no ONNX form; exportable modules: " + known +
                     " (docs/export.md)");
  }
  const Step step{module, path, input, sample};
  Tensor out = module.forward(sample);
  BP_CHECK(out.dim() >= 1 && out.size(0) == kTraceBatch, ValueError, "export_onnx: the module at '",
           path.empty() ? std::string("(root)") : path, "' (", module_text(module), ") turns a batch of ",
           kTraceBatch, " examples ", to_string(sample.shape()), " into ", to_string(out.shape()),
           ": its first dimension is not the batch, so it cannot be exported with a dynamic batch");
  const std::string name = it->second.second(g, step);
  sample = out;
  return name;
}

std::string child_path(const std::string& path, const std::string& name) {
  return path.empty() ? name : path + "." + name;
}

// The hint for a module's nodes and weights: its path, or the type for the root.
std::string hint_of(const Step& s, const char* type) {
  return s.path.empty() ? std::string(type) : s.path;
}

template <class M>
const M& as(const Step& s) {
  return static_cast<const M&>(s.module);
}

std::string path_text(const std::string& path) {
  return path.empty() ? std::string("(root)") : path;
}

// y = x W^T + b: Gemm with transB on the weights given by their initializer names. `x` has the traced shape
// `shape`; an input of more than two dimensions is Reshaped to rows [-1, in] for the Gemm and back, as
// Linear computes it.
std::string gemm(Graph& g, const std::string& hint, const std::string& x, const Shape& shape,
                 const std::string& w, const std::string& b, std::int64_t out_features) {
  const bool rows = shape.size() == 2;
  const std::string x2 =
      rows ? x : g.node("Reshape", hint, {x, g.integers(hint + ".rows", {-1, shape.back()})});
  std::vector<std::string> inputs{x2, w};
  if (!b.empty()) inputs.push_back(b);
  const std::string y = g.node("Gemm", hint, inputs, [](pb::NodeProto& n) { set_int(n, "transB", 1); });
  if (rows) return y;
  std::vector<std::int64_t> back(shape.begin(), shape.end());
  back.front() = -1;  // the batch, free
  back.back() = out_features;
  return g.node("Reshape", hint, {y, g.integers(hint + ".shape", back)});
}

// The same with the weight and bias tensors, added as initializers named hint.weight and hint.bias.
std::string gemm(Graph& g, const std::string& hint, const std::string& x, const Shape& shape, const Tensor& w,
                 const Tensor& b) {
  return gemm(g, hint, x, shape, g.weight(hint + ".weight", w),
              b.defined() ? g.weight(hint + ".bias", b) : std::string(), w.size(0));
}

// The nodes of an activation given by its nonlinearity (DropConnect's own activation).
std::string activation(Graph& g, const std::string& hint, const std::string& x, nn::Nonlinearity f,
                       double slope) {
  switch (f) {
    case nn::Nonlinearity::linear:
      return x;
    case nn::Nonlinearity::sigmoid:
      return g.node("Sigmoid", hint, {x});
    case nn::Nonlinearity::tanh:
      return g.node("Tanh", hint, {x});
    case nn::Nonlinearity::relu:
      return g.node("Relu", hint, {x});
    case nn::Nonlinearity::leaky_relu:
      return g.node("LeakyRelu", hint, {x}, [slope](pb::NodeProto& n) { set_float(n, "alpha", slope); });
  }
  throw ValueError("export_onnx: unknown activation");
}

std::string convert_sequential(Graph& g, const Step& s) {
  std::string x = s.input;
  Tensor sample = s.sample;
  for (const auto& [name, child] : s.module.named_children())
    x = convert(g, *child, child_path(s.path, name), x, sample);
  return x;
}

std::string convert_residual(Graph& g, const Step& s) {
  const nn::Residual& r = as<nn::Residual>(s);
  Tensor sample = s.sample;
  const std::string y = convert(g, *r.block(), child_path(s.path, "block"), s.input, sample);
  return g.node("Add", hint_of(s, "Residual"), {s.input, y});
}

std::string convert_linear(Graph& g, const Step& s) {
  const nn::Linear& m = as<nn::Linear>(s);
  return gemm(g, hint_of(s, "Linear"), s.input, s.sample.shape(), m.weight(), m.bias());
}

std::string convert_dropconnect(Graph& g, const Step& s) {
  const nn::DropConnect& m = as<nn::DropConnect>(s);
  const nn::DropConnectOptions& o = m.options();
  // Gaussian inference averages the activation over random draws; only without an activation is that
  // average exactly the mean network's output.
  BP_CHECK(o.inference == nn::DropConnectInference::mean || o.activation == nn::Nonlinearity::linear,
           ValueError, "export_onnx: the module at '", s.path.empty() ? std::string("(root)") : s.path, "' (",
           module_text(m),
           ") uses gaussian inference with an activation, whose output is random; it has no ONNX form "
           "(use inference = mean to export it)");
  const std::string hint = hint_of(s, "DropConnect");
  // In eval mode the mask's expectation is 1 (the scaled convention), so the inference weights are W itself.
  return activation(g, hint, gemm(g, hint, s.input, s.sample.shape(), m.weight(), m.bias()), o.activation,
                    o.slope);
}

// BatchNorm1d and BatchNorm2d in eval form: one normalisation per feature or channel.
template <class BatchNorm>
std::string convert_batchnorm(Graph& g, const Step& s) {
  const BatchNorm& m = as<BatchNorm>(s);
  const std::string hint = hint_of(s, "BatchNorm");
  const std::int64_t c = m.num_features();
  const DType dt = m.running_mean().dtype();
  const Tensor scale = m.weight().defined() ? m.weight() : ones({c}, dt);
  const Tensor shift = m.bias().defined() ? m.bias() : zeros({c}, dt);
  const double eps = m.options().eps;
  return g.node(
      "BatchNormalization", hint,
      {s.input, g.weight(hint + ".weight", scale), g.weight(hint + ".bias", shift),
       g.weight(hint + ".running_mean", m.running_mean()), g.weight(hint + ".running_var", m.running_var())},
      [eps](pb::NodeProto& n) { set_float(n, "epsilon", eps); });
}

// ONNX pads [begin_h, begin_w, end_h, end_w]; "same" puts the odd extra row or column at the end, as PyTorch.
std::vector<std::int64_t> conv_pads(const ConvPadding& p, Size2 k, Size2 dilation, std::size_t dims) {
  std::int64_t h0 = p.size.h, w0 = p.size.w, h1 = p.size.h, w1 = p.size.w;
  if (p.same) {
    const std::int64_t th = dilation.h * (k.h - 1), tw = dilation.w * (k.w - 1);
    h0 = th / 2, h1 = th - th / 2, w0 = tw / 2, w1 = tw - tw / 2;
  }
  if (dims == 1) return {w0, w1};
  return {h0, w0, h1, w1};
}

template <class Conv>
std::string convert_conv(Graph& g, const Step& s) {
  const Conv& m = as<Conv>(s);
  constexpr bool transposed = std::is_same_v<Conv, nn::ConvTranspose2d>;
  constexpr bool one_d = std::is_same_v<Conv, nn::Conv1d>;
  const std::string hint = hint_of(s, transposed ? "ConvTranspose" : "Conv");
  const nn::ConvOptions& o = m.options();
  const Tensor& w = m.weight();
  const Size2 k(w.size(-2 + (one_d ? 1 : 0)), w.size(-1));
  std::vector<std::string> inputs{s.input, g.weight(hint + ".weight", w)};
  if (m.bias().defined()) inputs.push_back(g.weight(hint + ".bias", m.bias()));
  const auto two = [&](Size2 v) {
    return one_d ? std::vector<std::int64_t>{v.w} : std::vector<std::int64_t>{v.h, v.w};
  };
  return g.node(transposed ? "ConvTranspose" : "Conv", hint, inputs, [&](pb::NodeProto& n) {
    set_ints(n, "kernel_shape", two(k));
    set_ints(n, "strides", two(o.stride));
    set_ints(n, "dilations", two(o.dilation));
    set_ints(n, "pads", conv_pads(o.padding, k, o.dilation, one_d ? 1 : 2));
    set_int(n, "group", o.groups);
    if constexpr (transposed) set_ints(n, "output_padding", two(o.output_padding));
  });
}

template <class Pool>
std::string convert_pool(Graph& g, const Step& s) {
  const Pool& m = as<Pool>(s);
  constexpr bool max = std::is_same_v<Pool, nn::MaxPool2d>;
  const std::string hint = hint_of(s, max ? "MaxPool" : "AveragePool");
  const nn::PoolOptions& o = m.options();
  const Size2 k = m.kernel_size();
  const Size2 stride = o.stride.h == 0 ? k : o.stride;
  return g.node(max ? "MaxPool" : "AveragePool", hint, {s.input}, [&](pb::NodeProto& n) {
    set_ints(n, "kernel_shape", {k.h, k.w});
    set_ints(n, "strides", {stride.h, stride.w});
    set_ints(n, "pads", {o.padding.h, o.padding.w, o.padding.h, o.padding.w});
    set_int(n, "ceil_mode", o.ceil_mode ? 1 : 0);
    if constexpr (max)
      set_ints(n, "dilations", {o.dilation.h, o.dilation.w});
    else
      set_int(n, "count_include_pad", o.count_include_pad ? 1 : 0);
  });
}

// Adaptive average pooling: GlobalAveragePool for a 1 x 1 output; an AveragePool when the input divides
// evenly into the output (every window the same size); other sizes have no single ONNX operator.
std::string convert_adaptive_avg_pool(Graph& g, const Step& s) {
  const Size2 out = as<nn::AdaptiveAvgPool2d>(s).output_size();
  const std::int64_t h = s.sample.size(-2), w = s.sample.size(-1);
  const std::string hint = hint_of(s, "AdaptiveAvgPool2d");
  if (out.h == 1 && out.w == 1) return g.node("GlobalAveragePool", hint, {s.input});
  BP_CHECK(h % out.h == 0 && w % out.w == 0, ValueError, "export_onnx: the module at '", s.path,
           "' (AdaptiveAvgPool2d) pools ", h, "x", w, " to ", out.h, "x", out.w,
           ", windows of unequal sizes, which no ONNX operator computes; choose an output size that divides "
           "the input");
  const std::int64_t kh = h / out.h, kw = w / out.w;
  return g.node("AveragePool", hint, {s.input}, [&](pb::NodeProto& n) {
    set_ints(n, "kernel_shape", {kh, kw});
    set_ints(n, "strides", {kh, kw});
  });
}

std::string convert_layernorm(Graph& g, const Step& s) {
  const nn::LayerNorm& m = as<nn::LayerNorm>(s);
  const std::string hint = hint_of(s, "LayerNorm");
  const Shape& shape = m.normalized_shape();
  const Tensor scale = m.weight().defined() ? m.weight() : ones(shape, g.dtype());
  const Tensor shift = m.bias().defined() ? m.bias() : zeros(shape, g.dtype());
  const double eps = m.options().eps;
  const auto axis = -static_cast<std::int64_t>(shape.size());
  return g.node("LayerNormalization", hint,
                {s.input, g.weight(hint + ".weight", scale), g.weight(hint + ".bias", shift)},
                [eps, axis](pb::NodeProto& n) {
                  set_int(n, "axis", axis);
                  set_float(n, "epsilon", eps);
                });
}

// Flatten and Unflatten only change the shape: the traced output shape, with the batch left free.
std::string convert_reshape(Graph& g, const Step& s) {
  const std::string hint = hint_of(s, "Reshape");
  const Shape out = s.module.forward(s.sample).shape();
  if (out.size() == 2 && s.sample.dim() >= 2)  // everything after the batch into one: ONNX's own Flatten
    return g.node("Flatten", hint, {s.input}, [](pb::NodeProto& n) { set_int(n, "axis", 1); });
  std::vector<std::int64_t> target(out.begin(), out.end());
  target[0] = 0;  // Reshape copies a 0 from the input's shape: the batch
  return g.node("Reshape", hint, {s.input, g.integers(hint + ".shape", target)});
}

std::string pass_through(Graph&, const Step& s) {
  return s.input;
}

template <nn::Nonlinearity F>
std::string convert_activation(Graph& g, const Step& s) {
  return activation(g, hint_of(s, "Activation"), s.input, F, 0.0);
}

std::string convert_leaky_relu(Graph& g, const Step& s) {
  return activation(g, hint_of(s, "LeakyReLU"), s.input, nn::Nonlinearity::leaky_relu,
                    as<nn::LeakyReLU>(s).slope());
}

std::string convert_softmax(Graph& g, const Step& s) {
  const std::int64_t axis = as<nn::Softmax>(s).axis();
  return g.node("Softmax", hint_of(s, "Softmax"), {s.input},
                [axis](pb::NodeProto& n) { set_int(n, "axis", axis); });
}

std::string convert_log_softmax(Graph& g, const Step& s) {
  const std::int64_t axis = as<nn::LogSoftmax>(s).axis();
  return g.node("LogSoftmax", hint_of(s, "LogSoftmax"), {s.input},
                [axis](pb::NodeProto& n) { set_int(n, "axis", axis); });
}

// Embedding: Gather of the weight's rows at the token ids, which only the graph's int64 input holds.
std::string convert_embedding(Graph& g, const Step& s) {
  const nn::Embedding& m = as<nn::Embedding>(s);
  BP_CHECK(!g.ids_input().empty() && s.input == g.ids_input(), ValueError, "export_onnx: the module at '",
           path_text(s.path), "' (", module_text(m),
           ") reads token ids, which only the graph's input holds: an Embedding is exported as the network's "
           "first layer, not after another layer");
  const std::string hint = hint_of(s, "Embedding");
  return g.node("Gather", hint, {g.weight(hint + ".weight", m.weight()), s.input},
                [](pb::NodeProto& n) { set_int(n, "axis", 0); });
}

// Mean over one dimension: ReduceMean (opset 17: axes as an attribute).
std::string convert_mean(Graph& g, const Step& s) {
  const nn::Mean& m = as<nn::Mean>(s);
  const auto rank = static_cast<std::int64_t>(s.sample.dim());
  const std::int64_t dim = m.dim() < 0 ? m.dim() + rank : m.dim();
  BP_CHECK(dim != 0, ValueError, "export_onnx: the module at '", path_text(s.path), "' (", module_text(m),
           ") averages over the batch dimension, so the ONNX model's batch would not be free");
  const bool keep = m.keepdim();
  return g.node("ReduceMean", hint_of(s, "Mean"), {s.input}, [dim, keep](pb::NodeProto& n) {
    set_ints(n, "axes", {dim});
    set_int(n, "keepdims", keep ? 1 : 0);
  });
}

// Self-attention as MultiheadAttention::attend(x, x, x) computes it, batch first: in_proj_weight (and bias)
// Split into the query, key and value projections, one Gemm each on the rows [N * L, E], heads by Reshape
// and Transpose, the query scaled by 1 / sqrt(E / H), Softmax(Q K^T) V, heads joined, out_proj. The module
// holds no masks (they are forward arguments), so none is exported.
std::string convert_attention(Graph& g, const Step& s) {
  const nn::MultiheadAttention& m = as<nn::MultiheadAttention>(s);
  BP_CHECK(m.options().batch_first, ValueError, "export_onnx: the module at '", path_text(s.path), "' (",
           module_text(m),
           ") reads [L, N, E], sequence first, so the graph's first dimension would be the sequence and "
           "attention would mix the rows of the batch; use batch_first = true to export it");
  const std::string hint = hint_of(s, "MultiheadAttention");
  const std::int64_t E = m.embed_dim(), H = m.num_heads(), hd = E / H;
  const Shape& shape = s.sample.shape();  // [N, L, E]
  const std::vector<std::string> w =
      g.nodes("Split", hint + ".in_proj_weight", {g.weight(hint + ".in_proj_weight", m.in_proj_weight())}, 3,
              [](pb::NodeProto& n) { set_int(n, "axis", 0); });
  std::vector<std::string> b(3);
  if (m.in_proj_bias().defined())
    b = g.nodes("Split", hint + ".in_proj_bias", {g.weight(hint + ".in_proj_bias", m.in_proj_bias())}, 3,
                [](pb::NodeProto& n) { set_int(n, "axis", 0); });
  const std::string rows = g.node("Reshape", hint, {s.input, g.integers(hint + ".rows", {-1, E})});
  const std::string heads_shape = g.integers(hint + ".heads", {-1, shape[1], H, hd});
  // Projection `part` (0 query, 1 key, 2 value) as heads, permuted by `perm`.
  auto project = [&](int part, const std::vector<std::int64_t>& perm) {
    const std::string h = hint + "." + "qkv"[part];
    const std::string y = gemm(g, h, rows, {shape[0] * shape[1], E}, w[part], b[part], E);
    const std::string split = g.node("Reshape", h, {y, heads_shape});
    return g.node("Transpose", h, {split}, [perm](pb::NodeProto& n) { set_ints(n, "perm", perm); });
  };
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  const std::string q = g.node(
      "Mul", hint + ".q", {project(0, {0, 2, 1, 3}), g.weight(hint + ".scale", scalar(scale, g.dtype()))});
  const std::string kt = project(1, {0, 2, 3, 1});  // [N, H, hd, L]
  const std::string v = project(2, {0, 2, 1, 3});   // [N, H, L, hd]
  const std::string weights = g.node("Softmax", hint, {g.node("MatMul", hint + ".scores", {q, kt})},
                                     [](pb::NodeProto& n) { set_int(n, "axis", -1); });
  const std::string heads = g.node("MatMul", hint, {weights, v});  // [N, H, L, hd]
  const std::string joined = g.node("Transpose", hint, {heads}, [](pb::NodeProto& n) {
    set_ints(n, "perm", {0, 2, 1, 3});
  });
  const nn::Linear& out = *m.out_proj();
  return gemm(g, hint + ".out_proj", joined, {shape[0], shape[1], E}, out.weight(), out.bias());
}

const std::map<std::type_index, std::pair<std::string, Converter>>& converters() {
  using nn::Nonlinearity;
  static const std::map<std::type_index, std::pair<std::string, Converter>> table{
      {typeid(nn::Sequential), {"Sequential", convert_sequential}},
      {typeid(nn::Residual), {"Residual", convert_residual}},
      {typeid(nn::Linear), {"Linear", convert_linear}},
      {typeid(nn::DropConnect), {"DropConnect", convert_dropconnect}},
      {typeid(nn::BatchNorm1d), {"BatchNorm1d", convert_batchnorm<nn::BatchNorm1d>}},
      {typeid(nn::LayerNorm), {"LayerNorm", convert_layernorm}},
      {typeid(nn::Flatten), {"Flatten", convert_reshape}},
      {typeid(nn::Unflatten), {"Unflatten", convert_reshape}},
      {typeid(nn::Dropout), {"Dropout", pass_through}},
      {typeid(nn::Identity), {"Identity", pass_through}},
      {typeid(nn::ReLU), {"ReLU", convert_activation<Nonlinearity::relu>}},
      {typeid(nn::Sigmoid), {"Sigmoid", convert_activation<Nonlinearity::sigmoid>}},
      {typeid(nn::Tanh), {"Tanh", convert_activation<Nonlinearity::tanh>}},
      {typeid(nn::LeakyReLU), {"LeakyReLU", convert_leaky_relu}},
      {typeid(nn::Softmax), {"Softmax", convert_softmax}},
      {typeid(nn::LogSoftmax), {"LogSoftmax", convert_log_softmax}},
      {typeid(nn::Conv1d), {"Conv1d", convert_conv<nn::Conv1d>}},
      {typeid(nn::Conv2d), {"Conv2d", convert_conv<nn::Conv2d>}},
      {typeid(nn::ConvTranspose2d), {"ConvTranspose2d", convert_conv<nn::ConvTranspose2d>}},
      {typeid(nn::MaxPool2d), {"MaxPool2d", convert_pool<nn::MaxPool2d>}},
      {typeid(nn::AvgPool2d), {"AvgPool2d", convert_pool<nn::AvgPool2d>}},
      {typeid(nn::AdaptiveAvgPool2d), {"AdaptiveAvgPool2d", convert_adaptive_avg_pool}},
      {typeid(nn::BatchNorm2d), {"BatchNorm2d", convert_batchnorm<nn::BatchNorm2d>}},
      {typeid(nn::Dropout2d), {"Dropout2d", pass_through}},
      {typeid(nn::Embedding), {"Embedding", convert_embedding}},
      {typeid(nn::Mean), {"Mean", convert_mean}},
      {typeid(nn::MultiheadAttention), {"MultiheadAttention", convert_attention}},
  };
  return table;
}

void set_value_info(pb::ValueInfoProto& v, const std::string& name, DType dtype, const Shape& shape) {
  v.set_name(name);
  pb::TypeProto::Tensor* t = v.mutable_type()->mutable_tensor_type();
  t->set_elem_type(dtype == i64   ? pb::TensorProto::INT64
                   : dtype == f64 ? pb::TensorProto::DOUBLE
                                  : pb::TensorProto::FLOAT);
  pb::TensorShapeProto* s = t->mutable_shape();
  s->add_dim()->set_dim_param("batch");
  for (std::size_t i = 1; i < shape.size(); ++i) s->add_dim()->set_dim_value(shape[i]);
}

void add_metadata(pb::ModelProto& model, const std::string& key, const std::string& value) {
  pb::StringStringEntryProto* e = model.add_metadata_props();
  e->set_key(key);
  e->set_value(value);
}

// The module that reads the network's input: the first child of Sequentials, down to a leaf.
const nn::Module& first_layer(const nn::Module& m) {
  if (typeid(m) != typeid(nn::Sequential)) return m;
  const auto children = m.named_children();
  return children.empty() ? m : first_layer(*children.front().second);
}

// Puts the module in eval mode for the trace and gives its mode back afterwards, also on an exception.
class EvalMode {
 public:
  explicit EvalMode(nn::Module& m) : module_(m), training_(m.is_training()) { module_.eval(); }
  ~EvalMode() { module_.train(training_); }
  EvalMode(const EvalMode&) = delete;
  EvalMode& operator=(const EvalMode&) = delete;

 private:
  nn::Module& module_;
  bool training_;
};

}  // namespace

std::string to_onnx(nn::Module& module, const std::vector<std::int64_t>& input_shape,
                    const OnnxOptions& options) {
  BP_CHECK(!input_shape.empty() && input_shape.size() <= 8, ValueError, "export_onnx: input_shape ",
           to_string(input_shape), " must give one example's shape, 1 to 8 sizes (e.g. [784])");
  for (std::int64_t d : input_shape)
    BP_CHECK(d > 0, ValueError, "export_onnx: input_shape ", to_string(input_shape), " must have sizes > 0");
  BP_CHECK(!options.input_name.empty() && !options.output_name.empty() &&
               options.input_name != options.output_name,
           ValueError, "export_onnx: input_name and output_name must be two different non-empty names, got '",
           options.input_name, "' and '", options.output_name, "'");
  const Tensors params = module.parameters();
  const DType dtype = params.empty() ? f32 : params.front().dtype();

  EvalMode eval(module);
  NoGradGuard no_grad;
  pb::ModelProto model;
  model.set_ir_version(pb::IR_VERSION);
  model.set_producer_name("backprop");
  model.set_producer_version(version);
  pb::OperatorSetIdProto* opset = model.add_opset_import();
  opset->set_domain("");
  opset->set_version(kOnnxOpset);
  pb::GraphProto& graph_proto = *model.mutable_graph();
  graph_proto.set_name("backprop");
  Graph g(graph_proto, dtype);

  Shape traced{kTraceBatch};
  traced.insert(traced.end(), input_shape.begin(), input_shape.end());
  // A network that starts with an Embedding reads token ids: an int64 input, traced with id 0.
  const bool ids = typeid(first_layer(module)) == typeid(nn::Embedding);
  set_value_info(*graph_proto.add_input(), g.fresh(options.input_name), ids ? i64 : dtype, traced);
  if (ids) g.set_ids_input(options.input_name);
  g.fresh(options.output_name);  // reserved: the last node's output is renamed to it
  std::string x = options.input_name;

  // The preprocessing `backprop predict` applies, as nodes: pixel scale, then standardisation. Token ids
  // are not values to scale, so a network reading ids gets the metadata only.
  if (options.preprocessing) {
    const Preprocessing& p = *options.preprocessing;
    if (!ids && p.input == "image" && p.pixel_scale != 1.0)
      x = g.node("Mul", "preprocess", {x, g.weight("preprocess.pixel_scale", scalar(p.pixel_scale, dtype))});
    if (!ids && p.mean.defined()) {
      BP_CHECK(input_shape.size() == 1 && p.mean.numel() == input_shape[0] && p.std.defined() &&
                   p.std.numel() == p.mean.numel(),
               ValueError, "export_onnx: the preprocessing standardises ", p.mean.numel(),
               " features, but the input shape is ", to_string(input_shape));
      x = g.node("Sub", "preprocess", {x, g.weight("preprocess.mean", p.mean.reshape({p.mean.numel()}))});
      x = g.node("Div", "preprocess", {x, g.weight("preprocess.std", p.std.reshape({p.std.numel()}))});
    }
    add_metadata(model, "task", p.task);
    add_metadata(model, "input", p.input);
    if (!p.class_names.empty()) add_metadata(model, "class_names", nlohmann::json(p.class_names).dump());
    if (!p.feature_names.empty())
      add_metadata(model, "feature_names", nlohmann::json(p.feature_names).dump());
  }
  for (const auto& [key, value] : options.metadata) add_metadata(model, key, value);

  Tensor sample = zeros(traced, ids ? i64 : dtype);
  std::string y = convert(g, module, "", x, sample);

  // The graph's output is the last node's output, renamed; a network that computes nothing gets an Identity.
  if (y == options.input_name) y = g.node("Identity", "output", {y});
  for (pb::NodeProto& n : *graph_proto.mutable_node())
    for (std::string& out : *n.mutable_output())
      if (out == y) out = options.output_name;
  for (pb::NodeProto& n : *graph_proto.mutable_node())
    for (std::string& in : *n.mutable_input())
      if (in == y) in = options.output_name;
  set_value_info(*graph_proto.add_output(), options.output_name, dtype, sample.shape());

  std::string bytes;
  BP_CHECK(model.SerializeToString(&bytes), ValueError,
           "export_onnx: the model could not be serialised (protobuf refused it; over 2 GiB?)");
  return bytes;
}

void export_onnx(nn::Module& module, const std::string& path, const std::vector<std::int64_t>& input_shape,
                 const OnnxOptions& options) {
  const std::string bytes = to_onnx(module, input_shape, options);
  write_file_atomic(path, bytes, {.force = options.force});
}

ModelFile export_model_file(const std::string& model_path, const std::string& path, OnnxOptions options) {
  BP_CHECK(input_exists(model_path, "MODEL"), FileError, model_path,
           ": no such file (expected a model file)");
  const NamedTensors file = load_safetensors(model_path);
  const auto format = file.metadata.find("format");
  BP_CHECK(
      format == file.metadata.end() || format->second != kCheckpointFormat, ConfigError, model_path,
      ": is a checkpoint (training state), not a model; export the run's model.safetensors (written when "
      "training ends), or finish the run with `backprop train --resume` first");
  ModelFile model = from_named(file, model_path, "optimizer.");
  const nn::ModulePtr net = build_module(model, model_path);
  BP_CHECK(!model.input_shape.empty(), FileError, model_path,
           ": the model does not record its input shape; an ONNX model needs it (save it with "
           "io::save_model(path, module, {.input_shape = ...}))");
  options.preprocessing.reset();
  if (model.has_preprocessing) options.preprocessing = model.preprocessing;
  export_onnx(*net, path, model.input_shape, options);
  return model;
}

}  // namespace backprop::io
