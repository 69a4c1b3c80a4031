// ActorLoop: one actor process's work. K envs stepped as a batch (envs::VectorEnv), a CPU copy of
// the policy (PolicyRunner), one replay stream per env (ChunkBuilder + InsertWriter) and the
// weight subscriber (broadcast::ParameterClient). Each Tick(): swap in the newest weights if any
// arrived (never waiting for them), pick K actions (uniformly at random until the first weights
// arrive: DreamerV3's prefill), record the step of every env into its chunk and hand full chunks
// to replay, step the envs, update the metrics. Waits with a log line, never crashes, while the
// learner or the replay shards are unreachable.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "services/config.h"
#include "services/metrics.h"

namespace dreamfleet::actor {

struct ActorOptions {
  services::Config config;
  int actor_index = 0;   // env seeds, metrics port offset
  std::string actor_id;  // replay stream prefix; "" = "actor-<index>"
};

class ActorLoop {
 public:
  static absl::StatusOr<std::unique_ptr<ActorLoop>> Create(const ActorOptions& options,
                                                           services::Metrics* metrics);
  ~ActorLoop();

  // One step of every env (see the header comment). Errors: a chunk replay rejected, a failed
  // env or policy step.
  absl::Status Tick();
  // Ticks until shutdown is requested (SIGINT/SIGTERM) or actor.max_env_steps is reached, then
  // Flush()es with a 10 s deadline (none after an error, which it returns).
  absl::Status Run();
  // Hands partial chunks over where there is room and waits up to `timeout` for the shards to
  // acknowledge everything sent; steps still unacknowledged then are lost, never half-stored.
  // Logs what it flushed. Ends the replay streams and the weight subscription.
  void Flush(absl::Duration timeout);

  // Blocks until weights of at least `version` have arrived (not yet swapped in) or `timeout`.
  bool WaitForWeights(int64_t version, absl::Duration timeout);
  int64_t env_steps() const;
  int64_t weights_version() const;  // in use; 0 = random prefill
  uint64_t acknowledged_chunks() const;
  const std::string& actor_id() const;

 private:
  struct Impl;
  explicit ActorLoop(std::unique_ptr<Impl> impl);
  void SwapInWeights();
  absl::Status ChooseActions();
  absl::Status RecordSteps();
  absl::Status StepEnvs();
  void ReportLag();

  std::unique_ptr<Impl> impl_;
};

// Create + Run: the whole actor process after its flags and metrics server.
absl::Status RunActor(const ActorOptions& options, services::Metrics* metrics);

}  // namespace dreamfleet::actor
