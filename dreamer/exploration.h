// Exploration in the env on top of sampling the policy: temporally extended epsilon-greedy
// ("ez-greedy", Dabney, Ostrovski & Barreto 2021). An env that is not holding an action starts,
// with probability `prob` per step, a random action (uniform over the env's actions) that it then
// takes for a uniformly random 1 to `max_hold` steps in a row, whatever the policy samples; the
// first step of a new episode ends a hold. The random action is the one recorded to replay and fed
// back into the policy's recurrent state. Official DreamerV3 only samples the policy (prob 0).
// The actors and the single-process trainer use it; evaluation never does. Free of LibTorch.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "envs/rng.h"

namespace dreamfleet::dreamer {

struct ExplorationOptions {
  double prob = 0;   // per step, chance that an env not holding an action starts a hold; [0, 1]
  int max_hold = 1;  // a hold lasts a uniformly random 1..max_hold steps; >= 1
};

class HeldRandomActions {
 public:
  // Options outside their ranges are clamped into them (callers validate: Validate()).
  HeldRandomActions(int num_envs, const ExplorationOptions& options, uint64_t seed);
  // INVALID_ARGUMENT naming the bad option: prob outside [0, 1] (or NaN), max_hold < 1.
  static absl::Status Validate(const ExplorationOptions& options);

  bool enabled() const { return options_.prob > 0; }
  int num_envs() const { return static_cast<int>(steps_left_.size()); }
  // Replaces the action of every env that holds (or now starts holding) a random action: is_first
  // [num_envs] flags the envs whose current step opens an episode; actions [num_envs] in
  // [0, num_actions); both of num_envs() entries (extra actions are left alone). Returns how many
  // envs took a random action this step. The seed decides every draw, on any standard library.
  int Apply(const uint8_t* is_first, int num_actions, std::vector<int>* actions);
  // Env steps taken with a held random action so far.
  int64_t explored_steps() const { return explored_steps_; }

 private:
  ExplorationOptions options_;
  std::vector<int> held_action_;
  std::vector<int> steps_left_;  // of the current hold, this step included; 0 = not holding
  envs::Rng rng_;
  int64_t explored_steps_ = 0;
};

}  // namespace dreamfleet::dreamer
