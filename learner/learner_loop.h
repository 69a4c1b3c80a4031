// The learner process's main loop: background threads sample B x T batches from every replay shard
// (through ShardedReplayClient) into a bounded queue; the trainer takes them, runs DreamerV3
// updates, publishes the policy weights through the ParameterService every N updates or S
// seconds, and checkpoints every M minutes and on shutdown. On start it resumes from the latest
// checkpoint in <run.dir>/learner/.
#pragma once

#include "absl/status/status.h"
#include "learner/parameter_service.h"
#include "services/config.h"
#include "services/metrics.h"

namespace dreamfleet::learner {

// Runs until shutdown is requested or learner.max_updates is reached. `service` is already
// serving; weights are published into it.
absl::Status RunLearner(const services::Config& config, ParameterServiceImpl* service,
                        services::Metrics* metrics);

}  // namespace dreamfleet::learner
