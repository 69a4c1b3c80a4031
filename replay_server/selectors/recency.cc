#include "replay_server/selectors/recency.h"

#include <cmath>

namespace dreamfleet::replay {

void RecencySelector::Insert(uint64_t key) {
  if (!ordinal_.emplace(key, base_ + slots_.size()).second) return;
  slots_.push_back({key, true});
}

bool RecencySelector::Delete(uint64_t key) {
  auto it = ordinal_.find(key);
  if (it == ordinal_.end()) return false;
  slots_[it->second - base_].alive = false;
  ordinal_.erase(it);
  while (!slots_.empty() && !slots_.front().alive) {
    slots_.pop_front();
    ++base_;
  }
  return true;
}

Selector::Sampled RecencySelector::Sample(std::mt19937_64& rng) {
  const size_t span = slots_.size();
  std::uniform_real_distribution<double> uniform(0.0, 1.0);
  // Weight of age a: decay^a (a = 0 is the newest); normaliser (1 - decay^span) / (1 - decay).
  const bool flat = decay_ >= 1.0;
  const double tail = flat ? 0.0 : std::pow(decay_, static_cast<double>(span));
  for (int attempt = 0; attempt < 64; ++attempt) {
    size_t age;
    if (flat) {
      age = std::min(span - 1, static_cast<size_t>(uniform(rng) * static_cast<double>(span)));
    } else {
      const double u = uniform(rng);
      const double a = std::floor(std::log(1.0 - u * (1.0 - tail)) / std::log(decay_));
      age = std::min(span - 1, static_cast<size_t>(std::max(0.0, a)));
    }
    const Slot& slot = slots_[span - 1 - age];
    if (!slot.alive) continue;
    const double probability =
        flat ? 1.0 / static_cast<double>(span)
             : std::pow(decay_, static_cast<double>(age)) * (1.0 - decay_) / (1.0 - tail);
    return {slot.key, probability};
  }
  // Only tombstones drawn: take the newest live item.
  for (size_t i = span; i-- > 0;) {
    if (slots_[i].alive) return {slots_[i].key, 1.0 / static_cast<double>(ordinal_.size())};
  }
  return {0, 0};
}

}  // namespace dreamfleet::replay
