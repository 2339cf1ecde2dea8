// printf into a std::string, for the library's text reports (io::ModelInfo::text, train::ModelEvaluation::text).
#pragma once

#include <cstdarg>
#include <cstdio>
#include <string>

namespace backprop::io::detail {

/// Appends `format` filled with the arguments, as std::printf would print it, to `out`.
[[gnu::format(printf, 2, 3)]] inline void appendf(std::string& out, const char* format, ...) {
  std::va_list args, again;
  va_start(args, format);
  va_copy(again, args);
  const int n = std::vsnprintf(nullptr, 0, format, args);
  va_end(args);
  if (n > 0) {
    const std::size_t at = out.size();
    out.resize(at + static_cast<std::size_t>(n) + 1);
    std::vsnprintf(out.data() + at, static_cast<std::size_t>(n) + 1, format, again);
    out.resize(at + static_cast<std::size_t>(n));
  }
  va_end(again);
}

}  // namespace backprop::io::detail
