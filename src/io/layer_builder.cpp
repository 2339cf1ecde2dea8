// A network from a list of layer tables (config::LayerSpec): each layer's input shape follows from the one
// before, so a table says only what a user would say ("conv2d, out 32, kernel 3").
#include <backprop/config.hpp>
#include <backprop/error.hpp>
#include <backprop/io/model_file.hpp>
#include <backprop/nn.hpp>

namespace backprop::io {

namespace {

// Reads the options of one (already checked) table, with its defaults.
class Options {
 public:
  Options(const config::LayerSpec& spec, std::string where) : spec_(spec), where_(std::move(where)) {}

  bool has(const char* name) const { return spec_.options.contains(name); }
  std::int64_t integer(const char* name, std::int64_t fallback) const {
    const auto it = spec_.options.find(name);
    return it == spec_.options.end() ? fallback : std::get<std::int64_t>(it->second);
  }
  double number(const char* name, double fallback) const {
    const auto it = spec_.options.find(name);
    if (it == spec_.options.end()) return fallback;
    if (const auto* i = std::get_if<std::int64_t>(&it->second)) return static_cast<double>(*i);
    return std::get<double>(it->second);
  }
  bool boolean(const char* name, bool fallback) const {
    const auto it = spec_.options.find(name);
    return it == spec_.options.end() ? fallback : std::get<bool>(it->second);
  }
  /// An integer or a list of two, as [h, w].
  std::vector<std::int64_t> pair(const char* name, std::vector<std::int64_t> fallback) const {
    const auto it = spec_.options.find(name);
    if (it == spec_.options.end()) return fallback;
    if (const auto* i = std::get_if<std::int64_t>(&it->second)) return {*i, *i};
    return std::get<std::vector<std::int64_t>>(it->second);
  }
  bool same_padding() const {
    const auto it = spec_.options.find("padding");
    return it != spec_.options.end() && std::holds_alternative<std::string>(it->second);
  }
  const std::string& where() const { return where_; }

 private:
  const config::LayerSpec& spec_;
  std::string where_;
};

nn::Nonlinearity follower(const std::vector<config::LayerSpec>& layers, std::size_t i) {
  for (std::size_t j = i + 1; j < layers.size(); ++j) {
    const std::string& t = layers[j].type;
    if (t == "relu") return nn::Nonlinearity::relu;
    if (t == "leaky_relu") return nn::Nonlinearity::leaky_relu;
    if (t == "sigmoid") return nn::Nonlinearity::sigmoid;
    if (t == "tanh") return nn::Nonlinearity::tanh;
    if (t == "dense" || t.starts_with("conv")) break;
  }
  return nn::Nonlinearity::linear;
}

nn::Init init_for(const std::string& init, nn::Nonlinearity next) {
  if (init == "kaiming_uniform") return nn::Init::kaiming_uniform;
  if (init == "kaiming_normal") return nn::Init::kaiming_normal;
  if (init == "xavier_uniform") return nn::Init::xavier_uniform;
  if (init == "xavier_normal") return nn::Init::xavier_normal;
  BP_CHECK(init == "auto", ConfigError, "model.init: expected auto, kaiming_uniform, kaiming_normal, ",
           "xavier_uniform or xavier_normal, got '", init, "'");
  return next == nn::Nonlinearity::sigmoid || next == nn::Nonlinearity::tanh ? nn::Init::xavier_uniform
                                                                             : nn::Init::kaiming_uniform;
}

void need_rank(const Shape& shape, std::size_t rank, const Options& o, const char* what) {
  BP_CHECK(
      shape.size() == rank, ConfigError, o.where(), ": needs ", what, ", got an input of shape ",
      to_string(shape), rank == 1 && shape.size() > 1 ? "; add a flatten layer before it" : "",
      rank > 1 && shape.size() == 1 ? " (image layers need image data: an IDX folder or Fashion-MNIST)" : "");
}

}  // namespace

std::shared_ptr<nn::Sequential> build_network(const std::vector<config::LayerSpec>& layers,
                                              const Shape& input, std::int64_t outputs, Generator& gen,
                                              const std::string& init) {
  BP_CHECK(!layers.empty(), ConfigError, "model.layer: the network has no layers");
  BP_CHECK(outputs > 0, ConfigError, "model.layer: the data gives ", outputs, " outputs");
  std::size_t last_dense = layers.size();
  for (std::size_t i = 0; i < layers.size(); ++i)
    if (layers[i].type == "dense") last_dense = i;
  auto net = std::make_shared<nn::Sequential>();
  Shape shape = input;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const config::LayerSpec& spec = layers[i];
    const Options o(spec, "model.layer #" + std::to_string(i + 1) + " (" + spec.type + ")");
    config::check_layer(spec, o.where());
    const std::string& t = spec.type;
    // Appends a layer whose output shape is found by running it once on zeros of the current shape.
    const auto add = [&](auto&& layer) {
      auto module = std::make_shared<std::remove_cvref_t<decltype(layer)>>(std::move(layer));
      Tensor y;
      try {
        NoGradGuard no_grad;
        module->eval();
        Shape batch{1};
        batch.insert(batch.end(), shape.begin(), shape.end());
        y = module->forward(zeros(batch));
        module->train();
      } catch (const OutOfMemoryError&) {
        throw;
      } catch (const Error& e) {
        throw ConfigError(o.where() + ": does not fit its input " + to_string(shape) + ": " + e.what());
      }
      BP_CHECK(y.numel() > 0, ConfigError, o.where(), ": turns its input ", to_string(shape),
               " into an empty output ", to_string(Shape(y.shape().begin() + 1, y.shape().end())),
               "; use a smaller kernel or stride, or padding");
      shape.assign(y.shape().begin() + 1, y.shape().end());
      net->push_back(nn::ModulePtr(module));
    };
    try {
      if (t == "dense") {
        need_rank(shape, 1, o, "a 1-D input [features]");
        BP_CHECK(o.has("out") || i == last_dense, ConfigError, o.where(),
                 ": needs out (only the last dense layer may leave it out: it gets the number of outputs)");
        const std::int64_t out = o.integer("out", outputs);
        const nn::Nonlinearity next = follower(layers, i);
        const double p = o.number("dropconnect", 0.0);
        if (p > 0)
          net->push_back(nn::DropConnect(shape[0], out, p, gen,
                                         {.bias = o.boolean("bias", true), .init = init_for(init, next)}));
        else
          net->push_back(nn::Linear(
              shape[0], out, gen,
              {.bias = o.boolean("bias", true), .init = init_for(init, next), .nonlinearity = next}));
        shape = {out};
      } else if (t == "conv2d" || t == "conv_transpose2d" || t == "conv1d") {
        const bool one_d = t == "conv1d";
        need_rank(shape, one_d ? 2 : 3, o,
                  one_d ? "an input [channels, length]" : "an image [channels, height, width]");
        const std::vector<std::int64_t> k = o.pair("kernel", {}), st = o.pair("stride", {1, 1}),
                                        dil = o.pair("dilation", {1, 1});
        nn::ConvOptions c{.stride = Size2(st[0], st[1]),
                          .padding = 0,
                          .dilation = Size2(dil[0], dil[1]),
                          .groups = o.integer("groups", 1),
                          .bias = o.boolean("bias", true)};
        if (o.same_padding()) {
          c.padding = ConvPadding("same");
        } else {
          const std::vector<std::int64_t> pad = o.pair("padding", {0, 0});
          c.padding = ConvPadding(pad[0], pad[1]);
        }
        if (t == "conv_transpose2d") {
          const std::vector<std::int64_t> op = o.pair("output_padding", {0, 0});
          c.output_padding = Size2(op[0], op[1]);
        }
        const std::int64_t out = o.integer("out", 0);
        if (one_d)
          add(nn::Conv1d(shape[0], out, k[0], gen, c));
        else if (t == "conv2d")
          add(nn::Conv2d(shape[0], out, Size2(k[0], k[1]), gen, c));
        else
          add(nn::ConvTranspose2d(shape[0], out, Size2(k[0], k[1]), gen, c));
      } else if (t == "maxpool2d" || t == "avgpool2d") {
        need_rank(shape, 3, o, "an image [channels, height, width]");
        const std::vector<std::int64_t> k = o.pair("kernel", {}), st = o.pair("stride", k),
                                        pad = o.pair("padding", {0, 0});
        const nn::PoolOptions p{.stride = Size2(st[0], st[1]), .padding = Size2(pad[0], pad[1])};
        if (t == "maxpool2d")
          add(nn::MaxPool2d(Size2(k[0], k[1]), p));
        else
          add(nn::AvgPool2d(Size2(k[0], k[1]), p));
      } else if (t == "adaptive_avgpool2d") {
        need_rank(shape, 3, o, "an image [channels, height, width]");
        const std::vector<std::int64_t> size = o.pair("out", {});
        add(nn::AdaptiveAvgPool2d(Size2(size[0], size[1])));
      } else if (t == "dropout2d") {
        need_rank(shape, 3, o, "an image [channels, height, width]");
        add(nn::Dropout2d(o.number("p", 0.5), gen));
      } else if (t == "batchnorm") {
        const nn::BatchNormOptions bn{.eps = o.number("eps", 1e-5), .momentum = o.number("momentum", 0.1)};
        BP_CHECK(shape.size() == 1 || shape.size() == 3, ConfigError, o.where(),
                 ": needs [features] or an image [channels, height, width], got an input of shape ",
                 to_string(shape));
        if (shape.size() == 3)
          add(nn::BatchNorm2d(shape[0], bn));
        else
          net->push_back(nn::BatchNorm1d(shape[0], bn));
      } else if (t == "layernorm") {
        BP_CHECK(!shape.empty(), ConfigError, o.where(), ": needs an input with at least one dimension");
        net->push_back(nn::LayerNorm(shape.back(), {.eps = o.number("eps", 1e-5)}));
      } else if (t == "dropout") {
        net->push_back(nn::Dropout(o.number("p", 0.5), gen));
      } else if (t == "flatten") {
        net->push_back(nn::Flatten());
        shape = {numel(shape)};
      } else if (t == "relu") {
        net->push_back(nn::ReLU());
      } else if (t == "leaky_relu") {
        net->push_back(nn::LeakyReLU(o.number("slope", 0.01)));
      } else if (t == "sigmoid") {
        net->push_back(nn::Sigmoid());
      } else if (t == "tanh") {
        net->push_back(nn::Tanh());
      } else {
        throw ConfigError(o.where() + ": no builder for this layer type");
      }
    } catch (const ConfigError&) {
      throw;
    } catch (const OutOfMemoryError&) {
      throw;
    } catch (const Error& e) {  // a layer's own check (groups that do not divide the channels, ...)
      throw ConfigError(o.where() + ": " + e.what());
    }
  }
  BP_CHECK(shape == Shape{outputs}, ConfigError, "model.layer: the last layer gives ", to_string(shape),
           " per example, but the data needs ", outputs,
           " outputs; leave out `out` on the last dense layer to get them");
  return net;
}

}  // namespace backprop::io
