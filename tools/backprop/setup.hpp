// A layer list's network for the tool's data, and the keys a layer list does not take. The architecture, loss,
// optimiser and schedule of a configuration are the library's (backprop/config/make.hpp).
#pragma once

#include <backprop/config.hpp>
#include <backprop/io/model_file.hpp>
#include <memory>

namespace cli {

/// The network of a layer list (--arch lenet5 | cnn | custom) for rows of `features` values. On image data
/// whose first layer works on images (a convolution or pooling), an Unflatten to [1, H, W] comes first, so the
/// network takes the same rows the MLP does (and `predict` / `eval` feed it unchanged).
std::shared_ptr<backprop::nn::Sequential> build_layers(const std::vector<backprop::config::LayerSpec>& layers,
                                                       std::int64_t features,
                                                       const backprop::io::Preprocessing& preprocessing,
                                                       std::int64_t outputs, backprop::Generator& gen,
                                                       const std::string& init);

/// With a layer list (--arch other than mlp) the keys of the dense MLP do not apply: giving one is a
/// ConfigError naming it and saying how to change the layers. `given`: the keys a --config file or flag set.
void check_layer_list_flags(const std::vector<std::string>& given, const std::string& arch);

}  // namespace cli
