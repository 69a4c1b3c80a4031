// How a table picks items to sample. A selector holds item keys (the table-wide id of an item's
// first step) and, per strategy, what it needs to weight them: uniform, recency (newer items more
// likely) or prioritized (priorities from the learner, sum-tree). The table calls every method
// under its own mutex, so selectors are not thread-safe.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>

#include "absl/status/statusor.h"

namespace dreamfleet::replay {

class Selector {
 public:
  struct Sampled {
    uint64_t key = 0;
    double probability = 0;
  };

  virtual ~Selector() = default;
  // Adds a new item (prioritized: with the largest priority seen so far).
  virtual void Insert(uint64_t key) = 0;
  // Removes `key`; false when it is not held.
  virtual bool Delete(uint64_t key) = 0;
  // Sets the priority of `key` (finite, >= 0); false when it is not held. Only the prioritized
  // selector uses priorities; the others accept and ignore them.
  virtual bool Update(uint64_t key, double priority) = 0;
  // One item and the probability it had. Requires size() > 0.
  virtual Sampled Sample(std::mt19937_64& rng) = 0;
  virtual size_t size() const = 0;
  virtual std::string name() const = 0;
};

struct SelectorOptions {
  std::string name = "uniform";   // uniform | recency | prioritized
  double priority_exponent = 0.8; // prioritized: p^exponent
  double recency_decay = 0.999;   // recency: weight decay^age, age counted in items
};

absl::StatusOr<std::unique_ptr<Selector>> CreateSelector(const SelectorOptions& options);

}  // namespace dreamfleet::replay
