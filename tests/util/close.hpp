// Comparing two computations of the same numbers that may round differently (instruction-set variants, fused
// and separate ops, a kernel against plain loops).
#pragma once

#include <algorithm>
#include <cmath>
#include <vector>

namespace testutil {

/// Worst |a - b| over the elements, relative to the largest |b| (elements near zero come from cancellation and
/// carry the rounding of the larger terms). 1 when the sizes differ.
inline double worst_relative(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return 1.0;
  double worst = 0.0, largest = 0.0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    worst = std::max(worst, std::fabs(a[i] - b[i]));
    largest = std::max(largest, std::fabs(b[i]));
  }
  return worst / std::max(largest, 1e-300);
}

}  // namespace testutil
