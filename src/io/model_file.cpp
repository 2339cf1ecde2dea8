// Model files: a network's tensors plus, in the safetensors metadata, everything needed to rebuild and use
// it.
#include <backprop/error.hpp>
#include <backprop/io/model_file.hpp>
#include <backprop/io/module_tree.hpp>
#include <backprop/ops.hpp>
#include <nlohmann/json.hpp>

#include "io/state_compat.hpp"

namespace backprop::io {

namespace {

using json = nlohmann::json;

nn::Nonlinearity nonlinearity_of(const std::string& activation) {
  if (activation == "sigmoid") return nn::Nonlinearity::sigmoid;
  if (activation == "tanh") return nn::Nonlinearity::tanh;
  if (activation == "relu") return nn::Nonlinearity::relu;
  if (activation == "leaky_relu") return nn::Nonlinearity::leaky_relu;
  throw ConfigError("architecture: activation must be one of sigmoid, tanh, relu, leaky_relu, got '" +
                    activation + "'");
}

nn::Init init_of(const std::string& init) {
  if (init == "kaiming_uniform") return nn::Init::kaiming_uniform;
  if (init == "kaiming_normal") return nn::Init::kaiming_normal;
  if (init == "xavier_uniform") return nn::Init::xavier_uniform;
  if (init == "xavier_normal") return nn::Init::xavier_normal;
  throw ConfigError(
      "architecture: init must be one of kaiming_uniform, kaiming_normal, xavier_uniform, xavier_normal, got "
      "'" +
      init + "'");
}

void add_activation(nn::Sequential& net, const std::string& activation) {
  if (activation == "sigmoid") net.push_back(nn::Sigmoid());
  if (activation == "tanh") net.push_back(nn::Tanh());
  if (activation == "relu") net.push_back(nn::ReLU());
  if (activation == "leaky_relu") net.push_back(nn::LeakyReLU());
}

// Reads metadata[key] as a JSON object; FileError naming the file and key otherwise.
json metadata_json(const NamedTensors& file, const std::string& path, const std::string& key) {
  auto it = file.metadata.find(key);
  BP_CHECK(it != file.metadata.end(), FileError, path, ": not a backprop model: __metadata__ has no '", key,
           "' entry (expected a file written by backprop train)");
  json j = json::parse(it->second, nullptr, false);
  BP_CHECK(!j.is_discarded() && j.is_object(), FileError, path, ": __metadata__ '", key,
           "' is not a JSON object");
  return j;
}

template <class T>
T field(const json& j, const char* name, const std::string& path, const char* key) {
  BP_CHECK(j.contains(name), FileError, path, ": __metadata__ '", key, "' has no field \"", name, "\"");
  try {
    return j.at(name).get<T>();
  } catch (const json::exception&) {
    throw FileError(path + ": __metadata__ '" + key + "' field \"" + name + "\" has the wrong type (" +
                    j.at(name).dump() + ")");
  }
}

}  // namespace

std::shared_ptr<nn::Sequential> build_network(const Architecture& a, Generator& gen) {
  BP_CHECK(a.inputs > 0 && a.outputs > 0, ConfigError, "architecture: inputs and outputs must be > 0, got ",
           a.inputs, " and ", a.outputs);
  for (std::int64_t w : a.hidden)
    BP_CHECK(w > 0, ConfigError, "architecture: hidden layer widths must be > 0, got ", w);
  BP_CHECK(a.dropout >= 0 && a.dropout < 1, ConfigError, "architecture: dropout must be in [0, 1), got ",
           a.dropout);
  BP_CHECK(a.dropconnect >= 0 && a.dropconnect < 1, ConfigError,
           "architecture: dropconnect must be in [0, 1), got ", a.dropconnect);
  const nn::Nonlinearity act = nonlinearity_of(a.activation);
  const nn::Init init = init_of(a.init);
  auto net = std::make_shared<nn::Sequential>();
  std::int64_t in = a.inputs;
  for (std::int64_t width : a.hidden) {
    if (a.dropconnect > 0)
      net->push_back(nn::DropConnect(in, width, a.dropconnect, gen, {.init = init}));
    else
      net->push_back(nn::Linear(in, width, gen, {.init = init, .nonlinearity = act}));
    if (a.batchnorm) net->push_back(nn::BatchNorm1d(width));
    add_activation(*net, a.activation);
    if (a.dropout > 0) net->push_back(nn::Dropout(a.dropout, gen));
    in = width;
  }
  // The output layer feeds softmax (or nothing, for regression): a linear gain.
  net->push_back(nn::Linear(in, a.outputs, gen, {.init = init, .nonlinearity = nn::Nonlinearity::linear}));
  return net;
}

Tensor Preprocessing::apply(const Tensor& features) const {
  if (!mean.defined()) return features;
  BP_CHECK(features.dim() == 2 && features.size(1) == mean.numel(), ShapeError,
           "preprocessing: the model was trained on ", mean.numel(), " features, the input has ",
           features.dim() == 2 ? features.size(1) : features.numel(), " (shape ", to_string(features.shape()),
           ")");
  NoGradGuard guard;
  const Tensor m = mean.to(features.dtype()).reshape({1, mean.numel()});
  const Tensor s = std.to(features.dtype()).reshape({1, std.numel()});
  return div(sub(features, m), s);
}

NamedTensors to_named(const ModelFile& model, const std::string& format) {
  NamedTensors out;
  for (const auto& [name, t] : model.state) {
    BP_CHECK(name.rfind("preprocess.", 0) != 0, ValueError, "save_model: tensor name '", name,
             "' is reserved for preprocessing");
    out.tensors.emplace_back(name, t.detach());
  }
  const Preprocessing& p = model.preprocessing;
  if (p.mean.defined()) {
    out.tensors.emplace_back("preprocess.mean", p.mean.detach());
    out.tensors.emplace_back("preprocess.std", p.std.detach());
  }
  // A network saved from code has a module tree and no architecture; the command line's MLP has both.
  const Architecture& a = model.architecture;
  const bool has_architecture = model.module_tree.empty() || a.inputs > 0;
  std::string tree = model.module_tree;
  if (has_architecture) {
    std::int64_t parameters = 0;
    json modules = json::array();
    Generator gen(0);
    auto net = build_network(a, gen);
    parameters = net->num_parameters();
    for (const auto& [name, m] : net->named_children()) modules.push_back(name + ": " + m->repr());
    if (tree.empty()) tree = module_tree(*net);
    json arch = {{"inputs", a.inputs},           {"hidden", a.hidden},
                 {"outputs", a.outputs},         {"activation", a.activation},
                 {"batchnorm", a.batchnorm},     {"dropout", a.dropout},
                 {"dropconnect", a.dropconnect}, {"init", a.init},
                 {"parameters", parameters},     {"modules", modules}};
    out.metadata["architecture"] = arch.dump();
  }
  out.metadata["module"] = tree;
  std::vector<std::int64_t> input_shape = model.input_shape;
  if (input_shape.empty() && has_architecture) input_shape = {a.inputs};
  if (!input_shape.empty()) {
    for (std::int64_t d : input_shape)
      BP_CHECK(d > 0, ValueError, "save_model: input_shape ", to_string(input_shape), " must have sizes > 0");
    out.metadata["input_shape"] = json(input_shape).dump();
  }
  json pre = {{"task", p.task},
              {"input", p.input},
              {"pixel_scale", p.pixel_scale},
              {"image_shape", p.image_shape},
              {"standardize", p.mean.defined()},
              {"class_names", p.class_names},
              {"feature_names", p.feature_names},
              {"target", p.target}};
  json training = json::parse(model.training_json, nullptr, false);
  BP_CHECK(!training.is_discarded() && training.is_object(), ValueError,
           "save_model: training_json must be a JSON object");
  out.metadata["format"] = format;
  if (model.has_preprocessing) out.metadata["preprocessing"] = pre.dump();
  out.metadata["training"] = training.dump();
  if (!model.config_toml.empty()) out.metadata["config"] = model.config_toml;
  return out;
}

ModelFile from_named(const NamedTensors& file, const std::string& path, const std::string& ignore_prefix) {
  auto format = file.metadata.find("format");
  BP_CHECK(format != file.metadata.end() &&
               (format->second == kModelFormat || format->second == kCheckpointFormat),
           FileError, path, ": not a backprop model: __metadata__ 'format' is ",
           format == file.metadata.end() ? std::string("missing") : "'" + format->second + "'",
           ", expected '", kModelFormat, "' or '", kCheckpointFormat, "'");
  ModelFile m;
  // Files written before module trees were stored have an architecture; networks saved from code only a tree.
  auto tree = file.metadata.find("module");
  if (tree != file.metadata.end()) m.module_tree = tree->second;
  if (tree == file.metadata.end() || file.metadata.contains("architecture")) {
    const json arch = metadata_json(file, path, "architecture");
    m.architecture.inputs = field<std::int64_t>(arch, "inputs", path, "architecture");
    m.architecture.hidden = field<std::vector<std::int64_t>>(arch, "hidden", path, "architecture");
    m.architecture.outputs = field<std::int64_t>(arch, "outputs", path, "architecture");
    m.architecture.activation = field<std::string>(arch, "activation", path, "architecture");
    m.architecture.batchnorm = field<bool>(arch, "batchnorm", path, "architecture");
    m.architecture.dropout = field<double>(arch, "dropout", path, "architecture");
    m.architecture.dropconnect = field<double>(arch, "dropconnect", path, "architecture");
    m.architecture.init = field<std::string>(arch, "init", path, "architecture");
  }
  auto shape = file.metadata.find("input_shape");
  if (shape != file.metadata.end()) {
    const json j = json::parse(shape->second, nullptr, false);
    bool ok = !j.is_discarded() && j.is_array() && !j.empty() && j.size() <= 8;
    for (std::size_t i = 0; ok && i < j.size(); ++i)
      ok = j[i].is_number_integer() && j[i].get<std::int64_t>() > 0;
    BP_CHECK(ok, FileError, path, ": __metadata__ 'input_shape' is '", shape->second.substr(0, 80),
             "', expected a JSON list of 1 to 8 positive integers");
    m.input_shape = j.get<std::vector<std::int64_t>>();
  } else if (m.architecture.inputs > 0) {
    m.input_shape = {m.architecture.inputs};
  }
  // The number of features standardisation expects: the architecture's inputs, or a 1-D input shape.
  const std::int64_t features =
      m.architecture.inputs > 0 ? m.architecture.inputs : (m.input_shape.size() == 1 ? m.input_shape[0] : -1);

  m.has_preprocessing = tree == file.metadata.end() || file.metadata.contains("preprocessing");
  if (m.has_preprocessing) {
    const json pre = metadata_json(file, path, "preprocessing");
    Preprocessing& p = m.preprocessing;
    p.task = field<std::string>(pre, "task", path, "preprocessing");
    BP_CHECK(p.task == "classification" || p.task == "regression", FileError, path,
             ": __metadata__ 'preprocessing' task must be classification or regression, got '", p.task, "'");
    p.input = field<std::string>(pre, "input", path, "preprocessing");
    p.pixel_scale = field<double>(pre, "pixel_scale", path, "preprocessing");
    p.image_shape = field<std::vector<std::int64_t>>(pre, "image_shape", path, "preprocessing");
    p.class_names = field<std::vector<std::string>>(pre, "class_names", path, "preprocessing");
    p.feature_names = field<std::vector<std::string>>(pre, "feature_names", path, "preprocessing");
    p.target = field<std::string>(pre, "target", path, "preprocessing");
    if (field<bool>(pre, "standardize", path, "preprocessing")) {
      BP_CHECK(
          file.contains("preprocess.mean") && file.contains("preprocess.std"), FileError, path,
          ": preprocessing says standardize but the tensors preprocess.mean / preprocess.std are missing");
      p.mean = file.at("preprocess.mean");
      p.std = file.at("preprocess.std");
      BP_CHECK(p.mean.dim() == 1 && (features < 0 || p.mean.numel() == features) &&
                   p.std.shape() == p.mean.shape(),
               FileError, path, ": preprocess.mean and preprocess.std must both be [", features, "], got ",
               to_string(p.mean.shape()), " and ", to_string(p.std.shape()));
    }
    if (p.task == "classification" && m.architecture.outputs > 0)
      BP_CHECK(
          p.class_names.empty() || static_cast<std::int64_t>(p.class_names.size()) == m.architecture.outputs,
          FileError, path, ": ", p.class_names.size(), " class names for ", m.architecture.outputs,
          " outputs");
  }

  auto training = file.metadata.find("training");
  if (training != file.metadata.end()) m.training_json = metadata_json(file, path, "training").dump();
  auto config = file.metadata.find("config");
  if (config != file.metadata.end()) m.config_toml = config->second;

  for (const auto& [name, t] : file.tensors) {
    if (name.rfind("preprocess.", 0) == 0) continue;
    if (!ignore_prefix.empty() && name.rfind(ignore_prefix, 0) == 0) continue;
    if (format->second == kCheckpointFormat && name.rfind(kBestStatePrefix, 0) == 0) continue;
    m.state.emplace(name, detail::upgrade_state_tensor(name, t));
  }
  return m;
}

void save_model(const std::string& path, const ModelFile& model) {
  save_safetensors(path, to_named(model));
}

void save_model(const std::string& path, const nn::Module& module, const SaveOptions& options) {
  ModelFile m;
  m.module_tree = module_tree(module);
  m.state = module.state_dict();
  m.input_shape = options.input_shape;
  m.has_preprocessing = options.preprocessing.has_value();
  if (options.preprocessing) m.preprocessing = *options.preprocessing;
  m.training_json = options.training_json;
  save_safetensors(path, to_named(m));
}

std::shared_ptr<nn::Module> load_module(const std::string& path) {
  return build_module(load_model(path), path);
}

std::shared_ptr<nn::Module> build_module(const ModelFile& model, const std::string& origin) {
  if (model.module_tree.empty()) return load_network(model, origin);
  return build_module_tree(model.module_tree, model.state, origin);
}

std::string describe(const Architecture& a) {
  std::string s = std::to_string(a.inputs);
  for (std::int64_t h : a.hidden) s.append("-").append(std::to_string(h));
  return s.append("-").append(std::to_string(a.outputs));
}

ModelFile load_model(const std::string& path) {
  return from_named(load_safetensors(path), path, "optimizer.");
}

LoadedModel load_for_prediction(const std::string& path, const std::string& who) {
  LoadedModel out{.model = load_model(path), .network = nullptr};
  ModelFile& model = out.model;
  out.network = build_module(model, path);
  if (model.architecture.inputs > 0) return out;
  BP_CHECK(model.has_preprocessing, FileError, path,
           ": the network was saved from code without preprocessing; ", who,
           " needs it (the task, the input kind, the class names): save it with io::save_model(path, module, "
           "{.input_shape = {D}, .preprocessing = ...})");
  BP_CHECK(model.input_shape.size() == 1, FileError, path, ": the input shape is ",
           model.input_shape.empty() ? std::string("not saved") : to_string(model.input_shape), "; ", who,
           " reads rows of D features and needs the input shape [D] (SaveOptions::input_shape)");
  model.architecture.inputs = model.input_shape.front();
  NoGradGuard guard;
  const Tensors params = out.network->parameters();
  Tensor y;
  try {
    y = out.network->forward(
        zeros({1, model.architecture.inputs}, params.empty() ? f32 : params.front().dtype()));
  } catch (const OutOfMemoryError&) {
    throw;
  } catch (const Error& e) {
    throw FileError(path + ": one forward pass of a zero example of the input shape " +
                    to_string(model.input_shape) + " failed: " + e.what());
  }
  BP_CHECK(y.dim() == 2, FileError, path, ": the network gives outputs of shape ", to_string(y.shape()),
           " for one example; ", who, " needs [1, outputs]");
  model.architecture.outputs = y.size(1);
  return out;
}

std::shared_ptr<nn::Sequential> load_network(const ModelFile& model, const std::string& origin) {
  Generator gen(0);
  std::shared_ptr<nn::Sequential> net;
  try {
    net = build_network(model.architecture, gen);
  } catch (const ConfigError& e) {
    throw FileError(origin + ": " + e.what());
  }
  try {
    net->load_state_dict(model.state);
  } catch (const OutOfMemoryError&) {
    throw;
  } catch (const Error& e) {
    throw FileError(origin + ": the tensors do not match the architecture in __metadata__: " + e.what());
  }
  net->eval();
  return net;
}

}  // namespace backprop::io
