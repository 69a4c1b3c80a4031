// Batch: one training batch of B sequences of T steps, as the replay service hands it out.
// DreamerV3 step semantics: step t holds the observation, the reward received on arriving at it,
// its flags, and the action the agent then took in it (so the RSSM is driven by action[t-1]).
#pragma once

#include <torch/torch.h>

#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "dreamer/agent_config.h"
#include "services/named_tensor.h"
#include "services/step_record.h"

namespace dreamfleet::dreamer {

struct Batch {
  torch::Tensor image;        // uint8 [B, T, H, W, C] (undefined without images)
  torch::Tensor vector;       // float [B, T, V]
  torch::Tensor text;         // int [B, T, L]
  torch::Tensor action;       // int64 [B, T]
  torch::Tensor reward;       // float [B, T]
  torch::Tensor is_first;     // bool [B, T]
  torch::Tensor is_last;      // bool [B, T]
  torch::Tensor is_terminal;  // bool [B, T]
  // Replay context (AgentConfig::replay_context): the latent the actor stored with the step just
  // before the window, and the action taken there. The window's RSSM starts from them instead of
  // the zero state (unless its first step is_first). All three undefined without context.
  torch::Tensor context_deter;   // float [B, D]
  torch::Tensor context_stoch;   // float [B, S, C]
  torch::Tensor context_action;  // int64 [B]

  // Moves (and converts flags/actions to their dtypes) onto `device`.
  Batch To(torch::Device device) const;
};

// Checks presence, dtypes and shapes against the config (messages name the field and shape).
absl::Status ValidateBatch(const Batch& batch, const AgentConfig& config);

// A batch from step-record fields of shape [B, T, ...] (services/step_record.h; a replay sample
// or train-local's replay), copying each field's bytes into a tensor. Observations the fields lack
// stay undefined; INVALID_ARGUMENT names a missing required field or a byte count that does not
// match its shape. Actions become int64.
absl::StatusOr<Batch> BatchFromFields(const std::vector<services::NamedTensor>& fields);

// The step-record shape of the observations `config` models.
services::StepShape StepShapeOf(const AgentConfig& config);

// Random but well-formed batch (for tests and benchmarks).
Batch RandomBatch(const AgentConfig& config, int64_t batch_size, int64_t length, uint64_t seed);

}  // namespace dreamfleet::dreamer
