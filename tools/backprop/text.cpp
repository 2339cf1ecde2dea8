// Numbers and networks in the tool's words.
#include "text.hpp"

#include <charconv>
#include <cstdint>

namespace cli {

namespace bp = backprop;

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

std::string number_text(double v) {
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

std::string layers_text(const bp::io::Architecture& a) {
  std::string s = std::to_string(a.inputs);
  for (std::int64_t h : a.hidden) s.append("-").append(std::to_string(h));
  return s.append("-").append(std::to_string(a.outputs));
}

}  // namespace cli
