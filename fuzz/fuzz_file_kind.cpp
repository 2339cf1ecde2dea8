// libFuzzer target: the writer's look at an existing file (replaced_kind, which reads the file's first bytes
// and judges them with file_kind) and file_kind on the raw bytes.
#include <backprop/io.hpp>
#include <string_view>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  if (backprop::io::describe(backprop::io::file_kind(bytes)) == nullptr) __builtin_trap();
  return fuzz::run(data, size, ".out", [](const std::string& path) {
    for (backprop::io::FileKind kind : {backprop::io::FileKind::text, backprop::io::FileKind::safetensors})
      (void)backprop::io::replaced_kind(path, kind);
  });
}
