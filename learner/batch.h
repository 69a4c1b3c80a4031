// Batch: one training batch of B sequences of T steps, as the replay service hands it out.
// DreamerV3 step semantics: step t holds the observation, the reward received on arriving at it,
// its flags, and the action the agent then took in it (so the RSSM is driven by action[t-1]).
#pragma once

#include <torch/torch.h>

#include "absl/status/status.h"
#include "learner/agent_config.h"

namespace dreamfleet::learner {

struct Batch {
  torch::Tensor image;        // uint8 [B, T, H, W, C] (undefined without images)
  torch::Tensor vector;       // float [B, T, V]
  torch::Tensor text;         // int [B, T, L]
  torch::Tensor action;       // int64 [B, T]
  torch::Tensor reward;       // float [B, T]
  torch::Tensor is_first;     // bool [B, T]
  torch::Tensor is_last;      // bool [B, T]
  torch::Tensor is_terminal;  // bool [B, T]

  // Moves (and converts flags/actions to their dtypes) onto `device`.
  Batch To(torch::Device device) const;
};

// Checks presence, dtypes and shapes against the config (messages name the field and shape).
absl::Status ValidateBatch(const Batch& batch, const AgentConfig& config);

// Random but well-formed batch (for tests and benchmarks).
Batch RandomBatch(const AgentConfig& config, int64_t batch_size, int64_t length, uint64_t seed);

}  // namespace dreamfleet::learner
