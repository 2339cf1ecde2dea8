// libFuzzer target: the TOML run-configuration parser and its validation.
#include <backprop/config.hpp>
#include <string_view>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    const auto config =
        backprop::config::parse_toml(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
    backprop::config::validate(config);
    (void)backprop::config::to_toml(config);
  } catch (const backprop::Error&) {
  }
  return 0;
}
