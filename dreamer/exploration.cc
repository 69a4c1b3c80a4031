#include "dreamer/exploration.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace dreamfleet::dreamer {

HeldRandomActions::HeldRandomActions(int num_envs, const ExplorationOptions& options, uint64_t seed)
    : options_(options),
      held_action_(static_cast<size_t>(std::max(num_envs, 0)), 0),
      steps_left_(static_cast<size_t>(std::max(num_envs, 0)), 0),
      rng_(seed) {
  options_.prob = options_.prob >= 0.0 ? std::min(options_.prob, 1.0) : 0.0;  // NaN: 0
  options_.max_hold = std::max(options_.max_hold, 1);
}

absl::Status HeldRandomActions::Validate(const ExplorationOptions& options) {
  if (!(options.prob >= 0.0 && options.prob <= 1.0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "exploration: the chance of starting a held random action must be in [0, 1], got ",
        options.prob));
  }
  if (options.max_hold < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "exploration: a held random action lasts at least 1 step, got a longest hold of ",
        options.max_hold));
  }
  return absl::OkStatus();
}

int HeldRandomActions::Apply(const uint8_t* is_first, int num_actions, std::vector<int>* actions) {
  if (!enabled() || num_actions <= 0) return 0;
  const size_t n = std::min(actions->size(), steps_left_.size());
  int taken = 0;
  for (size_t i = 0; i < n; ++i) {
    if (is_first[i]) steps_left_[i] = 0;
    if (steps_left_[i] == 0 && rng_.Bernoulli(options_.prob)) {
      held_action_[i] = rng_.UniformInt(0, num_actions - 1);
      steps_left_[i] = rng_.UniformInt(1, options_.max_hold);
    }
    if (steps_left_[i] == 0) continue;
    (*actions)[i] = held_action_[i];
    --steps_left_[i];
    ++taken;
  }
  explored_steps_ += taken;
  return taken;
}

}  // namespace dreamfleet::dreamer
