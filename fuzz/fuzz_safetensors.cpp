// libFuzzer target: the safetensors reader (header, offsets, shapes, checksum, values).
#include <backprop/io.hpp>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return fuzz::run(data, size, ".safetensors",
                   [](const std::string& path) { backprop::io::load_safetensors(path); });
}
