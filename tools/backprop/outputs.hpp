// The rule for every output a user names on the command line (predict --output, explain --graph, export
// --onnx): checked before the command does its work, so a refused output costs nothing. The writing itself is
// backprop::io::write_file_atomic, which applies the same rule again.
#pragma once

#include <backprop/io.hpp>
#include <string>

namespace cli {

/// Checks that `kind` content (`what` in words, such as "predictions (text)") may be written to `path`, given
/// as `flag`. Throws ConfigError (exit 2) naming the flag, the path, what it holds and what would be written,
/// and --force, when `path` is a regular file of another kind and `force` is false; ConfigError naming the
/// flag when `path` is a directory, a socket or another file that cannot be written.
void check_output(const std::string& flag, const std::string& path, backprop::io::FileKind kind,
                  const std::string& what, bool force);

}  // namespace cli
