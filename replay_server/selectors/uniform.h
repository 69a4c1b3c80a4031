// Uniform selector: every held item equally likely. O(1) insert, delete and sample.
#pragma once

#include <vector>

#include "absl/container/flat_hash_map.h"
#include "replay_server/selectors/interface.h"

namespace dreamfleet::replay {

class UniformSelector : public Selector {
 public:
  void Insert(uint64_t key) override;
  bool Delete(uint64_t key) override;
  bool Update(uint64_t key, double priority) override { return index_.contains(key); }
  Sampled Sample(std::mt19937_64& rng) override;
  size_t size() const override { return keys_.size(); }
  std::string name() const override { return "uniform"; }

 private:
  std::vector<uint64_t> keys_;
  absl::flat_hash_map<uint64_t, size_t> index_;  // key -> position in keys_
};

}  // namespace dreamfleet::replay
