// Prioritized selector (PER): P(i) = p_i^a / sum_j p_j^a with a = priority_exponent. A sum-tree
// over slots gives O(log n) update and sample; inner nodes are recomputed from their children on
// every update, so rounding never accumulates. New items get the largest priority seen so far.
#pragma once

#include <vector>

#include "absl/container/flat_hash_map.h"
#include "replay_server/selectors/interface.h"

namespace dreamfleet::replay {

class PrioritizedSelector : public Selector {
 public:
  explicit PrioritizedSelector(double exponent) : exponent_(exponent) {}
  void Insert(uint64_t key) override;
  bool Delete(uint64_t key) override;
  bool Update(uint64_t key, double priority) override;
  Sampled Sample(std::mt19937_64& rng) override;
  size_t size() const override { return slot_.size(); }
  std::string name() const override { return "prioritized"; }

 private:
  void SetLeaf(size_t slot, double weight);
  void Grow();

  double exponent_;
  double max_priority_ = 1.0;
  size_t capacity_ = 0;            // leaves
  std::vector<double> tree_;       // [2 * capacity_], root at 1, leaves at capacity_ + slot
  std::vector<uint64_t> keys_;     // slot -> key
  std::vector<size_t> free_;       // unused slots
  absl::flat_hash_map<uint64_t, size_t> slot_;  // key -> slot
};

}  // namespace dreamfleet::replay
