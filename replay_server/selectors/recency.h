// Recency selector: an item's weight is decay^age, where age counts the items inserted after it,
// so the newest item is the most likely and the weight halves every log(0.5)/log(decay) items.
// Items sit in insertion order in a ring with tombstones for out-of-order deletes; a sample draws
// an age from the truncated geometric distribution and redraws when it hits a tombstone (rare:
// eviction deletes nearly in insertion order). Probabilities are reported for the ring, ignoring
// tombstones, which is exact when there are none.
#pragma once

#include <deque>

#include "absl/container/flat_hash_map.h"
#include "replay_server/selectors/interface.h"

namespace dreamfleet::replay {

class RecencySelector : public Selector {
 public:
  explicit RecencySelector(double decay) : decay_(decay) {}
  void Insert(uint64_t key) override;
  bool Delete(uint64_t key) override;
  bool Update(uint64_t key, double priority) override { return ordinal_.contains(key); }
  Sampled Sample(std::mt19937_64& rng) override;
  size_t size() const override { return ordinal_.size(); }
  std::string name() const override { return "recency"; }

 private:
  struct Slot {
    uint64_t key;
    bool alive;
  };
  double decay_;
  std::deque<Slot> slots_;                         // oldest first
  uint64_t base_ = 0;                              // ordinal of slots_.front()
  absl::flat_hash_map<uint64_t, uint64_t> ordinal_;  // key -> ordinal
};

}  // namespace dreamfleet::replay
