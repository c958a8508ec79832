// Rng: a small deterministic generator (splitmix64-seeded xoshiro256**) so sampled tokens depend
// only on the seed, never on the standard library's distribution implementations.
#pragma once

#include <cstdint>

namespace hardkv {

// One splitmix64 step: advances `state` and returns a well-mixed 64-bit value (seed derivation).
uint64_t splitmix64(uint64_t& state);

class Rng {
 public:
  explicit Rng(uint64_t seed);
  uint64_t next_u64();
  // Uniform in [0, 1) with 53 random bits.
  double next_double() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

 private:
  uint64_t s_[4];
};

}  // namespace hardkv
