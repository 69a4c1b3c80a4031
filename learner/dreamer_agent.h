// DreamerAgent: the DreamerV3 update step. Owns the world model, the actor-critic, one LaProp
// optimiser over both (as the official agent: a single optimiser and a summed loss), the return
// normaliser and the sampling generator. Train(batch):
//   world model loss (+ the disagreement ensemble's) -> backward   (timed as "world_model")
//   imagine 15 steps from every posterior state (+ intrinsic reward with disag_scale)
//   -> actor, critic and replay-value losses
//   -> backward -> LaProp step -> slow critic EMA     (timed as "actor_critic")
// A batch or loss that is not finite skips the update (no parameter, optimiser or normaliser
// change), counts it in skipped_updates() and says why. Save/Restore write and read one atomic
// checkpoint directory (modules, optimiser, counters, normaliser, generator state, config) so a
// resumed run reproduces the next update bit-for-bit on CPU.
#pragma once

#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "dreamer/actor_critic.h"
#include "dreamer/agent_config.h"
#include "dreamer/batch.h"
#include "dreamer/disagreement.h"
#include "dreamer/policy.h"
#include "dreamer/return_normalizer.h"
#include "dreamer/world_model.h"
#include "learner/laprop.h"

namespace dreamfleet::learner {

// Each part of an update runs in a profiler scope named this prefix + the part ("world model
// loss", "imagination", ...), so that `bench_learner --profile` can split operator time by part.
inline constexpr char kProfilePhasePrefix[] = "phase: ";

struct TrainMetrics {
  bool skipped = false;
  std::string skip_reason;
  std::map<std::string, double> losses;   // image, vector, rew, con, dyn, rep, policy, value, repval
  std::map<std::string, double> metrics;  // entropy, ret, prior_ent, post_ent, ...
  // Loss and backward pass; with overlap_wm the backward ran on a second thread during
  // actor_critic_seconds, so the two overlap in wall time.
  double world_model_seconds = 0.0;
  double actor_critic_seconds = 0.0;
  bool world_model_overlapped = false;    // overlap_wm: its backward ran on a second thread
  double imagination_seconds = 0.0;       // the rollouts, part of actor_critic_seconds
  std::vector<double> sequence_losses;    // [B] world-model loss per sequence (replay priorities)
  // With replay_context: the posterior latents the update computed for the batch's steps (CPU,
  // float, detached), to write back into replay. deter [B, T, D], stoch [B, T, S, C].
  torch::Tensor posterior_deter;
  torch::Tensor posterior_stoch;
};

class DreamerAgent {
 public:
  static absl::StatusOr<std::unique_ptr<DreamerAgent>> Create(const dreamer::AgentConfig& config,
                                                              torch::Device device = torch::kCPU);

  // One update. Errors are for malformed batches (shape/dtype); a non-finite batch or loss is a
  // skipped update (TrainMetrics::skipped), not an error.
  absl::StatusOr<TrainMetrics> Train(const dreamer::Batch& batch);

  // The imagination Train() runs: horizon steps from every posterior state of `wm` (or
  // imag_starts of them; no gradient), with predicted rewards and continues; the start's continue
  // comes from the batch. With imag_explore, some rows open with a held random action.
  dreamer::ImaginedTrajectory ImagineFrom(const dreamer::WorldModelOutput& wm,
                                          const dreamer::Batch& batch);

  // With disag_scale (the step Train runs after ImagineFrom): adds the disagreement ensemble's
  // intrinsic reward to traj's imagined rewards (from the second state on; zero-mean over them)
  // and sets `replay_reward` [B, T] to the batch's rewards plus the replayed transitions' own
  // (from `fit`, the ensemble's pass over batch `b`; zero-mean over them; none into an episode's
  // first step); the mean disagreements go to m.metrics ("disag", "disag_replay").
  void AddIntrinsicReward(const dreamer::DisagreementFit& fit, const dreamer::Batch& b,
                          dreamer::ImaginedTrajectory& traj, torch::Tensor& replay_reward,
                          TrainMetrics& m);

  // The actors' part, sharing this agent's weights.
  dreamer::Policy policy() { return policy_; }
  dreamer::NamedTensors ExportPolicy() { return dreamer::ExportPolicyWeights(policy_); }

  // Writes <dir>/ckpt-<updates>/ atomically.
  // `step` names the checkpoint (ckpt-<step>); -1 = the update count.
  absl::Status Save(const std::string& dir, int keep_last = 3, int64_t step = -1);
  // Restores the latest checkpoint in <dir>; NotFound when there is none.
  absl::Status Restore(const std::string& dir);

  int64_t updates() const { return updates_; }
  int64_t skipped_updates() const { return skipped_; }
  const dreamer::AgentConfig& config() const { return config_; }
  torch::Device device() const { return device_; }
  dreamer::WorldModel world_model() { return wm_; }
  dreamer::ActorCritic actor_critic() { return ac_; }
  // The disagreement ensemble; null unless disag_scale > 0.
  dreamer::Disagreement disagreement() { return disag_; }
  // Extra counters saved with checkpoints (e.g. env steps of the trainer).
  std::map<std::string, int64_t>& counters() { return counters_; }

 private:
  DreamerAgent(const dreamer::AgentConfig& config, torch::Device device);
  std::optional<torch::Generator> Gen() {
    return device_.is_cpu() ? std::optional<torch::Generator>(gen_) : std::nullopt;
  }
  TrainMetrics Skip(TrainMetrics m, std::string reason);

  dreamer::AgentConfig config_;
  torch::Device device_;
  dreamer::WorldModel wm_{nullptr};
  dreamer::ActorCritic ac_{nullptr};
  dreamer::Disagreement disag_{nullptr};  // only with disag_scale > 0
  dreamer::Policy policy_{nullptr};
  std::unique_ptr<LaProp> opt_;
  dreamer::ReturnNormalizer retnorm_;
  torch::Generator gen_;
  int64_t updates_ = 0;
  int64_t skipped_ = 0;
  std::map<std::string, int64_t> counters_;
};

// Where a trainer starts. kCheckpoint: its own latest checkpoint (a restart carries on);
// kInitFrom: another directory's latest checkpoint (weights, optimiser state, normaliser and
// counters: e.g. a run's best agent, for `dreamfleet up --resume best`); kFresh: neither.
enum class StartedFrom { kFresh, kCheckpoint, kInitFrom };

// Restores `agent` from `checkpoint_dir` when it holds a checkpoint, else from `init_from` when
// that is not empty (NOT_FOUND naming it when it holds none), else leaves it fresh. A trainer
// restarted after its first checkpoint therefore carries on from there, not from `init_from`.
absl::StatusOr<StartedFrom> RestoreOrInitialize(DreamerAgent& agent,
                                                const std::string& checkpoint_dir,
                                                const std::string& init_from);

}  // namespace dreamfleet::learner
