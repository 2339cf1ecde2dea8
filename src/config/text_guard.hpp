// Internal: a pre-check of TOML text before it reaches the TOML parser.
#pragma once

#include <string>
#include <string_view>

namespace backprop::config::detail {

/// TOML allows characters outside ASCII only inside strings and comments. Reject them elsewhere with a
/// ConfigError naming source:line:column, before the TOML parser sees them: the packaged toml++ (3.x) reaches
/// an "unreachable" branch on some non-ASCII whitespace candidates (undefined behaviour, found by
/// fuzz_config).
void check_non_ascii_outside_strings(std::string_view text, const std::string& source);

}  // namespace backprop::config::detail
