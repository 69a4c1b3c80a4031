// Fnv1a64: the stable 64-bit hash dreamfleet uses where a value must not change across machines,
// builds or restarts: an actor id's replay shard, checkpoint file checksums.
#pragma once

#include <cstdint>
#include <string_view>

namespace dreamfleet::services {

// FNV-1a 64-bit (offset basis 14695981039346656037, prime 1099511628211).
inline uint64_t Fnv1a64(std::string_view data) {
  uint64_t hash = 14695981039346656037ull;
  for (unsigned char c : data) {
    hash ^= c;
    hash *= 1099511628211ull;
  }
  return hash;
}

}  // namespace dreamfleet::services
