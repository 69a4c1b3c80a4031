// LearnerLoop: the learner process's work. Background threads sample B x T batches from every
// replay shard (replay::ShardedReplayClient) into a bounded queue; each Step() takes one, runs a
// DreamerV3 update (DreamerAgent), sends priorities back for a prioritized table, publishes the
// policy weights through the broadcast::ParameterServiceImpl every N updates or S seconds, and
// checkpoints every M minutes (and at the end of Run). With learner.eval_every_updates, it also
// plays evaluation episodes every N updates on envs of its own (never feeding replay), exports
// their return and success on /metrics and in the Status RPC, keeps the best agent in
// <run.dir>/best and writes the open-loop report of the agent (<run.dir>/openloop.{gif,png}).
// Create() resumes from the latest checkpoint in <run.dir>/learner/, or, when that holds none,
// from the agent in `init_from` (`dreamfleet up --resume best`). The model is sized from the env's
// spec, looked up without starting it.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "broadcast/parameter_service.h"
#include "services/config.h"
#include "services/metrics.h"

namespace dreamfleet::learner {

class LearnerLoop {
 public:
  // `service` is already serving; weights are published into it and its Status RPC reports this
  // loop's progress.
  static absl::StatusOr<std::unique_ptr<LearnerLoop>> Create(
      const services::Config& config, broadcast::ParameterServiceImpl* service,
      services::Metrics* metrics, const std::string& init_from = "");
  ~LearnerLoop();

  // Waits up to `wait` for a batch and trains on it; publishes and checkpoints when due. Returns
  // whether an update was made (false: no batch yet, or one the model could not take, logged).
  // Errors: publishing failed.
  absl::StatusOr<bool> Step(absl::Duration wait = absl::Milliseconds(500));
  // Steps until shutdown is requested or learner.max_updates is reached, then checkpoints.
  absl::Status Run();
  // Publishes the current policy as the next weights version.
  absl::Status Publish();
  // Writes a checkpoint into <run.dir>/learner (errors are logged).
  void Checkpoint();

  int64_t updates() const;
  int64_t weights_version() const;
  bool resumed() const;

 private:
  struct Impl;
  explicit LearnerLoop(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Create + Run: the whole learner process after its servers are up.
absl::Status RunLearner(const services::Config& config, broadcast::ParameterServiceImpl* service,
                        services::Metrics* metrics, const std::string& init_from = "");

}  // namespace dreamfleet::learner
