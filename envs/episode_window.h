// EpisodeWindow: the return and success rate of the last N finished episodes, as the actors'
// metrics and the single-process trainer's progress lines report them.
#pragma once

#include <cstddef>
#include <deque>

#include "envs/vector_env.h"

namespace dreamfleet::envs {

class EpisodeWindow {
 public:
  explicit EpisodeWindow(size_t size) : size_(size) {}

  void Add(const EpisodeStats& stats) {
    episodes_.push_back(stats);
    if (episodes_.size() > size_) episodes_.pop_front();
  }
  size_t size() const { return episodes_.size(); }
  bool full() const { return episodes_.size() >= size_; }
  // 0 while empty.
  double success_rate() const {
    if (episodes_.empty()) return 0;
    double successes = 0;
    for (const EpisodeStats& e : episodes_) successes += e.success ? 1 : 0;
    return successes / episodes_.size();
  }
  double mean_return() const {
    if (episodes_.empty()) return 0;
    double total = 0;
    for (const EpisodeStats& e : episodes_) total += e.episode_return;
    return total / episodes_.size();
  }

 private:
  size_t size_;
  std::deque<EpisodeStats> episodes_;
};

}  // namespace dreamfleet::envs
