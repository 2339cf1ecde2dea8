// libFuzzer target: a whole model file or checkpoint read as `backprop info` reads it (io::describe_file):
// the safetensors reader, then the metadata (architecture, preprocessing, training record, module tree,
// checkpoint state), the network built from it and one forward pass of its input shape.
#include <backprop/io/model_info.hpp>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return fuzz::run(data, size, ".safetensors", [](const std::string& path) {
    const backprop::io::ModelInfo info = backprop::io::describe_file(path);
    (void)info.text();
    (void)info.json();
  });
}
