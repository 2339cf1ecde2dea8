// libFuzzer target: the CSV reader, as classification and as regression data, and selecting columns by name
// (as eval and predict read a model's features).
#include <backprop/data.hpp>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return fuzz::run(data, size, ".csv", [](const std::string& path) {
    try {
      backprop::data::read_csv(path);
    } catch (const backprop::Error&) {
    }
    try {
      backprop::data::read_csv(path, {.features = {"a", "b"}});
    } catch (const backprop::Error&) {
    }
    try {
      backprop::data::read_csv_features(path, {"b", "a"});
    } catch (const backprop::Error&) {
    }
    backprop::data::read_csv(path, {.task = backprop::data::Task::regression});
  });
}
