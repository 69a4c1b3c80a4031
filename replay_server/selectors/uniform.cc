#include "replay_server/selectors/uniform.h"

namespace dreamfleet::replay {

void UniformSelector::Insert(uint64_t key) {
  if (!index_.emplace(key, keys_.size()).second) return;
  keys_.push_back(key);
}

bool UniformSelector::Delete(uint64_t key) {
  auto it = index_.find(key);
  if (it == index_.end()) return false;
  const size_t position = it->second;
  index_.erase(it);
  if (position + 1 != keys_.size()) {
    keys_[position] = keys_.back();
    index_[keys_[position]] = position;
  }
  keys_.pop_back();
  return true;
}

Selector::Sampled UniformSelector::Sample(std::mt19937_64& rng) {
  std::uniform_int_distribution<size_t> pick(0, keys_.size() - 1);
  return {keys_[pick(rng)], 1.0 / static_cast<double>(keys_.size())};
}

}  // namespace dreamfleet::replay
