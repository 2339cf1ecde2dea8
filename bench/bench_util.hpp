// What the benchmark programs share: command-line values and the median of timings.
#pragma once

#include <algorithm>
#include <backprop/error.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace bench {

/// "256,128" -> {256, 128}.
inline std::vector<std::int64_t> parse_list(const std::string& s) {
  std::vector<std::int64_t> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, ','))
    if (!item.empty()) out.push_back(std::stoll(item));
  return out;
}

/// The median (the mean of the middle two for an even count); 0 for none.
inline double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/// Reads "--name value" pairs: each option's handler gets the value. Throws ValueError naming the program for
/// an unknown option or a missing value.
inline void parse_options(int argc, char** argv, const std::string& program,
                          const std::map<std::string, std::function<void(const std::string&)>>& options) {
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    const auto it = options.find(k);
    if (it == options.end()) throw backprop::ValueError(program + ": unknown option " + k);
    if (i + 1 >= argc) throw backprop::ValueError(program + ": " + k + " needs a value");
    it->second(argv[++i]);
  }
}

}  // namespace bench
