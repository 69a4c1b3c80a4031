// Batched CPU policy inference for an actor process: the K envs of a VectorEnv step through one
// Policy (encoder, RSSM posterior step, actor head) per tick. Weights arrive as a broadcast
// WeightsVersion and are swapped in between ticks. The header keeps LibTorch out of its users.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "broadcast/weights.h"
#include "dreamer/exploration.h"
#include "envs/vector_env.h"

namespace dreamfleet::actor {

class PolicyRunner {
 public:
  // `threads`: LibTorch intra-op threads for inference; `seed`: action sampling and exploration;
  // `explore`: held random actions on top of the policy's samples (none by default).
  static absl::StatusOr<std::unique_ptr<PolicyRunner>> Create(
      int num_envs, int threads, uint64_t seed, const dreamer::ExplorationOptions& explore = {});
  ~PolicyRunner();

  // Builds the policy from weights.model_config on first use (or when the model config changes)
  // and copies the weights in. On error the previous weights stay in use.
  absl::Status Load(const broadcast::WeightsVersion& weights);
  bool ready() const;
  int64_t version() const;

  // Samples one action per env from the envs' current batch (their latest observations and
  // is_first flags), or takes the env's held random action; the recurrent state carries over
  // between calls.
  absl::Status Act(const envs::VectorEnv& envs, std::vector<int>* actions);
  // Env steps Act() gave a held random action so far.
  int64_t explored_steps() const;

 private:
  struct Impl;
  explicit PolicyRunner(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace dreamfleet::actor
