// backprop/generator.hpp — explicit, seedable randomness.
//
// Every random choice in backprop (initial weights, shuffles, dropout masks) draws from a Generator the
// caller owns. Nothing reads global random state, so the same seed gives the same numbers on every run and
// every platform (the bits come from xoshiro256**, the distributions are written here, not taken from
// <random>).
//
// Example:
//   bp::Generator gen(42);
//   double u = gen.uniform();        // [0, 1)
//   double z = gen.normal();         // N(0, 1)
//   std::uint64_t k = gen.below(10); // 0..9
#pragma once

#include <array>
#include <cstdint>

namespace backprop {

class Generator {
 public:
  explicit Generator(std::uint64_t seed = 0) { seed_(seed); }

  /// Restarts the stream as if newly constructed with `seed`.
  void seed_(std::uint64_t seed);
  std::uint64_t seed() const { return seed_value_; }

  /// 64 random bits.
  std::uint64_t next();
  /// n values of next() into out, in order: the same stream as n calls of next(), in one tight loop.
  void fill(std::uint64_t* out, std::int64_t n);
  /// Uniform in [0, 1) with 53 random bits.
  double uniform();
  /// Uniform in [lo, hi).
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  /// Standard normal (Box-Muller; the second value is kept for the next call).
  double normal();
  /// Uniform integer in [0, n); n must be > 0. Unbiased (rejection sampling).
  std::uint64_t below(std::uint64_t n);
  /// true with probability p.
  bool bernoulli(double p) { return uniform() < p; }

  /// The full state, for checkpoints: restoring it continues the exact same stream.
  struct State {
    std::array<std::uint64_t, 4> s;
    std::uint64_t seed;
    bool has_spare;
    double spare;
  };
  State state() const { return {s_, seed_value_, has_spare_, spare_}; }
  void set_state(const State& st) {
    s_ = st.s;
    seed_value_ = st.seed;
    has_spare_ = st.has_spare;
    spare_ = st.spare;
  }

 private:
  std::array<std::uint64_t, 4> s_{};
  std::uint64_t seed_value_ = 0;
  bool has_spare_ = false;
  double spare_ = 0.0;
};

}  // namespace backprop
