#include "replay_server/selectors/prioritized.h"

#include <cmath>

namespace dreamfleet::replay {

void PrioritizedSelector::Grow() {
  const size_t old_capacity = capacity_;
  capacity_ = capacity_ == 0 ? 1024 : capacity_ * 2;
  std::vector<double> old_tree = std::move(tree_);
  tree_.assign(2 * capacity_, 0.0);
  keys_.resize(capacity_, 0);
  for (size_t i = 0; i < old_capacity; ++i) tree_[capacity_ + i] = old_tree[old_capacity + i];
  for (size_t i = capacity_ - 1; i >= 1; --i) tree_[i] = tree_[2 * i] + tree_[2 * i + 1];
  for (size_t i = capacity_; i-- > old_capacity;) free_.push_back(i);
}

void PrioritizedSelector::SetLeaf(size_t slot, double weight) {
  size_t node = capacity_ + slot;
  tree_[node] = weight;
  for (node /= 2; node >= 1; node /= 2) tree_[node] = tree_[2 * node] + tree_[2 * node + 1];
}

void PrioritizedSelector::Insert(uint64_t key) {
  if (slot_.contains(key)) return;
  if (free_.empty()) Grow();
  const size_t slot = free_.back();
  free_.pop_back();
  slot_[key] = slot;
  keys_[slot] = key;
  SetLeaf(slot, std::pow(max_priority_, exponent_));
}

bool PrioritizedSelector::Delete(uint64_t key) {
  auto it = slot_.find(key);
  if (it == slot_.end()) return false;
  SetLeaf(it->second, 0.0);
  free_.push_back(it->second);
  slot_.erase(it);
  return true;
}

bool PrioritizedSelector::Update(uint64_t key, double priority) {
  auto it = slot_.find(key);
  if (it == slot_.end()) return false;
  if (priority > max_priority_) max_priority_ = priority;
  SetLeaf(it->second, std::pow(priority, exponent_));
  return true;
}

Selector::Sampled PrioritizedSelector::Sample(std::mt19937_64& rng) {
  const double total = tree_[1];
  if (!(total > 0)) {
    // Every priority is 0: fall back to uniform over the held items.
    std::uniform_int_distribution<size_t> pick(0, slot_.size() - 1);
    auto it = slot_.begin();
    std::advance(it, pick(rng));
    return {it->first, 1.0 / static_cast<double>(slot_.size())};
  }
  std::uniform_real_distribution<double> uniform(0.0, total);
  for (int attempt = 0; attempt < 8; ++attempt) {
    double target = uniform(rng);
    size_t node = 1;
    while (node < capacity_) {
      if (target < tree_[2 * node] || tree_[2 * node + 1] <= 0) {
        node = 2 * node;
      } else {
        target -= tree_[2 * node];
        node = 2 * node + 1;
      }
    }
    const double weight = tree_[node];
    if (weight > 0) return {keys_[node - capacity_], weight / total};
  }
  // Rounding led to empty leaves repeatedly: take the heaviest path.
  size_t node = 1;
  while (node < capacity_) node = tree_[2 * node] >= tree_[2 * node + 1] ? 2 * node : 2 * node + 1;
  return {keys_[node - capacity_], tree_[node] / total};
}

}  // namespace dreamfleet::replay
