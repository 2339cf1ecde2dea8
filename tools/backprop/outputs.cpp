// Checks of the outputs a user names on the command line (outputs.hpp).
#include "outputs.hpp"

#include <backprop/error.hpp>
#include <optional>

namespace cli {

namespace bp = backprop;

void check_output(const std::string& flag, const std::string& path, bp::io::FileKind kind,
                  const std::string& what, bool force) {
  std::optional<bp::io::FileKind> held;
  try {
    held = bp::io::replaced_kind(path, kind);
  } catch (const bp::FileError& e) {
    throw bp::ConfigError(flag + " " + e.what());
  }
  if (!held || force) return;
  throw bp::ConfigError(flag + " " + path + ": the file holds " + bp::io::describe(*held) +
                        "; refusing to replace it with " + what + ". Choose another " + flag +
                        ", or pass --force to replace it");
}

}  // namespace cli
