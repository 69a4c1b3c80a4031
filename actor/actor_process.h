// One actor process: K envs stepped as a batch, a CPU copy of the policy, and one replay stream
// per env. Each tick: swap in the newest weights if any arrived (never waiting for them), pick K
// actions (uniformly at random until the first weights arrive: DreamerV3's prefill), record the
// step of every env into its chunk, send full chunks to the env's replay shard, step the envs.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "services/config.h"
#include "services/metrics.h"

namespace dreamfleet::actor {

struct ActorOptions {
  services::Config config;
  int actor_index = 0;       // env seeds, metrics port offset
  std::string actor_id;      // replay stream prefix; "" = "actor-<index>"
};

// Runs until shutdown is requested (SIGINT/SIGTERM) or actor.max_env_steps is reached. Waits with
// a log line, never crashes, while the learner or the replay shards are unreachable.
absl::Status RunActor(const ActorOptions& options, services::Metrics* metrics);

}  // namespace dreamfleet::actor
