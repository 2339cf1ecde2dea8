// A layer list's network for the tool's data, and the keys a layer list does not take.
#include "setup.hpp"

#include <algorithm>
#include <backprop/error.hpp>
#include <backprop/nn.hpp>
#include <backprop/ops.hpp>

namespace cli {

namespace bp = backprop;

std::shared_ptr<bp::nn::Sequential> build_layers(const std::vector<bp::config::LayerSpec>& layers,
                                                 std::int64_t features, const bp::io::Preprocessing& pre,
                                                 std::int64_t outputs, bp::Generator& gen,
                                                 const std::string& init) {
  const std::string& first = layers.front().type;
  const bool on_images = first.starts_with("conv2d") || first.starts_with("conv_transpose") ||
                         first.find("pool2d") != std::string::npos || first == "dropout2d";
  if (!(on_images && pre.input == "image" && pre.image_shape.size() == 2))
    return bp::io::build_network(layers, {features}, outputs, gen, init);
  const bp::Shape image{1, pre.image_shape[0], pre.image_shape[1]};
  const auto body = bp::io::build_network(layers, image, outputs, gen, init);
  auto net = std::make_shared<bp::nn::Sequential>(bp::nn::Unflatten(1, image));
  for (std::size_t i = 0; i < body->size(); ++i) net->push_back((*body)[i]);
  return net;
}

void check_layer_list_flags(const std::vector<std::string>& given, const std::string& arch) {
  for (const bp::config::KeyInfo& k : bp::config::keys()) {
    const bool dense_only = k.key == "model.layers" || k.key == "model.activation" ||
                            k.key == "model.batchnorm" || k.key == "model.dropout" ||
                            k.key == "model.dropconnect";
    BP_CHECK(
        !dense_only || std::find(given.begin(), given.end(), k.key) == given.end(), ConfigError, k.key, " (",
        k.flag, ") describes the dense layers of --arch mlp, but --arch is ", arch,
        ", a list of layers; to change them, write the network as [[model.layer]] tables in a --config file "
        "(docs/cli.md, \"Networks as layer tables\")");
  }
}

}  // namespace cli
