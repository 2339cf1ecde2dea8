// libFuzzer target: the IDX reader (raw and gzip), whole file and with a row limit.
#include <backprop/data.hpp>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return fuzz::run(data, size, ".idx", [](const std::string& path) {
    try {
      backprop::data::read_idx(path, 3);
    } catch (const backprop::Error&) {
    }
    backprop::data::read_idx(path);
  });
}
