// A small deterministic random number generator for the native envs (xoshiro256** seeded through
// splitmix64). Unlike <random>'s distributions, its integers and floats are the same on every
// standard library, so an episode is a pure function of its seed and the actions taken.
#pragma once

#include <cstdint>

namespace dreamfleet::envs {

// One splitmix64 step: a good 64-bit mixer for turning small seeds into unrelated states.
inline uint64_t SplitMix64(uint64_t* state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// The seed of env `env_index` of a fleet seeded with `base_seed` (envpool's base_seed + env_id,
// mixed so that neighbouring fleets do not share streams shifted by one env).
inline uint64_t EnvSeed(uint64_t base_seed, uint64_t env_index) {
  uint64_t state = base_seed + env_index;
  return SplitMix64(&state);
}

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) { Seed(seed); }

  void Seed(uint64_t seed) {
    uint64_t state = seed;
    for (uint64_t& word : s_) word = SplitMix64(&state);
  }

  uint64_t Next() {
    const uint64_t result = Rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = Rotl(s_[3], 45);
    return result;
  }

  // Uniform in [0, 1) with 53 random bits.
  double Uniform() { return static_cast<double>(Next() >> 11) * (1.0 / 9007199254740992.0); }

  // Uniform integer in [lo, hi] (inclusive); rejection sampling keeps it unbiased.
  int UniformInt(int lo, int hi) {
    const uint64_t range = static_cast<uint64_t>(static_cast<int64_t>(hi) - lo) + 1;
    const uint64_t limit = UINT64_MAX - UINT64_MAX % range;
    uint64_t x;
    do {
      x = Next();
    } while (x >= limit);
    return lo + static_cast<int>(x % range);
  }

  bool Bernoulli(double p) { return Uniform() < p; }

 private:
  static uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace dreamfleet::envs
