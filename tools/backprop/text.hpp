// Times and numbers in the tool's words.
#pragma once

#include <chrono>
#include <string>

namespace cli {

double seconds_since(std::chrono::steady_clock::time_point start);
/// Shortest text of a number ("0.2", "1e-05").
std::string number_text(double v);

}  // namespace cli
