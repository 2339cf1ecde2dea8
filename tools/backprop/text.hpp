// Numbers and networks in the tool's words.
#pragma once

#include <backprop/io/model_file.hpp>
#include <chrono>
#include <string>

namespace cli {

double seconds_since(std::chrono::steady_clock::time_point start);
/// Shortest text of a number ("0.2", "1e-05").
std::string number_text(double v);
/// "784-256-128-10".
std::string layers_text(const backprop::io::Architecture& a);

}  // namespace cli
