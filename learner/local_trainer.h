// LocalTrainer: DreamerV3 in one process (dreamfleet-train-local) — K envs (envs::VectorEnv), an
// in-memory SequenceReplay and a DreamerAgent. One Tick(): the policy acts on the K envs (the
// same policy step as an actor, dreamer::ActOnEnvs) -> their step records go to replay -> the
// envs step -> every env step earns train_ratio replayed steps, spent as B x T updates (with a
// checkpoint every save_every updates when a checkpoint dir is set).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "envs/env_options.h"
#include "envs/vector_env.h"
#include "learner/dreamer_agent.h"
#include "learner/evaluator.h"
#include "services/config.h"
#include "services/learning_curve.h"

namespace dreamfleet::learner {

struct LocalTrainerOptions {
  std::string env = "grid_empty_5x5";
  std::string preset = "1m";
  int64_t steps = 100000;   // env steps to run
  double train_ratio = 64;  // replayed steps per env step
  // > 0: replay windows are drawn by priority^exponent, the priority being the reward + KL loss of
  // the window when last trained on (the config's replay.selector prioritized); 0: uniformly.
  double priority_exponent = 0;
  // Share (0-1) of replay windows drawn around a step with a nonzero reward (the config's
  // replay.rewarded_share; SequenceReplay); 0: none.
  double rewarded_share = 0;
  int64_t envs = 4;
  int64_t image_size = 64;
  std::string view = "full";
  std::string action_set = "full";  // MinAtar: full (6 actions) or minimal (the game's own)
  int64_t batch = 16;
  int64_t length = 64;
  int64_t seed = 0;
  int64_t threads = 0;         // 0: LibTorch's choice
  // Held random actions in the training envs (the config's actor.explore_prob / explore_hold;
  // dreamer::HeldRandomActions); never in evaluation.
  double explore_prob = 0;
  int64_t explore_hold = 1;
  double until_success = 0;    // stop once the last `episode_window` episodes reach this rate
  std::string checkpoint_dir;  // "" = no checkpoints
  // Start from the agent in this checkpoint directory (e.g. a run's best_dir) when
  // checkpoint_dir holds no checkpoint yet. "" = start fresh.
  std::string init_from;
  int64_t save_every = 1000;   // updates
  double lr = 4e-5;
  int64_t warmup = 1000;
  std::vector<std::string> agent_sets;  // KEY=VALUE agent config fields
  int64_t episode_window = 100;         // episodes in the reported return and success rate
  // One CSV line per finished training episode (envs/episode_log.h), started afresh unless the
  // run resumes from its own checkpoint_dir; then the episodes logged up to the checkpoint refill
  // the episode window, so the reported return carries on. "" = none (the window starts empty on a
  // resume).
  std::string episode_log;
  // A directory where every training step is logged (learner/replay_log.h), so a run resumed from
  // its own checkpoint_dir starts with the replay it had at the checkpoint (the steps logged
  // before it; later ones are cut) rather than an empty one. A fresh run empties it; a run
  // started from another run's agent (init_from) refuses one that holds steps. "" = none (replay
  // starts empty on a resume).
  std::string replay_log;
  // Evaluation: every eval_every env steps (0 = never), eval_episodes episodes with the current
  // policy acting greedily (its most likely action) and as many sampling, on envs of their own
  // that never feed replay. An episode still running after eval_max_steps steps is cut and
  // counted with its return so far.
  int64_t eval_every = 0;
  int64_t eval_episodes = 8;
  int64_t eval_max_steps = 10000;
  // With evaluation: the agent of the best greedy evaluation return so far is kept here as a
  // checkpoint of its own (written atomically; its score in <best_dir>/score.txt). "" = none.
  std::string best_dir;

  // INVALID_ARGUMENT naming the first bad value.
  absl::Status Validate() const;
};

struct LocalProgress {
  int64_t env_steps = 0;
  int64_t updates = 0;
  int64_t skipped_updates = 0;
  int64_t episodes = 0;    // since this process started (the whole run's: episodes_from_log())
  double mean_return = 0;  // last options.episode_window episodes
  double success = 0;      // last options.episode_window episodes
  int64_t window_episodes = 0;  // episodes in that window so far (see options.episode_log)
  // Env steps taken with a held random action (options.explore_prob) since this process started:
  // 0 again after a resume, unlike env_steps.
  int64_t explored_steps = 0;
  // Replay windows drawn around a rewarded step (options.rewarded_share) since this process
  // started.
  int64_t rewarded_windows = 0;
  double wall_seconds = 0;
  // Wall seconds spent writing options.replay_log (appending, syncing, pruning) since this
  // process started.
  double replay_log_seconds = 0;
  // Whether steps are still logged to options.replay_log (false without one, or after a write to
  // it failed: an ERROR line says why).
  bool replay_logging = false;
  std::map<std::string, double> losses;  // of the latest update
  std::map<std::string, double> stats;   // its actor-critic statistics (entropy, ret, ...)
  EvalResult eval;                       // the latest evaluation (options.eval_every)
};

// A progress CSV row of `p`: its counters, return and success, the losses (rec = the decoder
// losses summed over image, vector and text), the statistics and the latest evaluation.
services::CurveRow CurveRowOf(const LocalProgress& p);

class LocalTrainer {
 public:
  // Builds the envs and the agent and resumes from options.checkpoint_dir when it holds a
  // checkpoint (replay starts empty unless options.replay_log holds the steps before it).
  static absl::StatusOr<std::unique_ptr<LocalTrainer>> Create(const LocalTrainerOptions& options);
  // The same for a dreamfleet config, as `dreamfleet up` would train it, in one process: the env
  // section (all its keys), actor.count x actor.envs_per_actor envs, the learner section's agent
  // and batch shape, replay.samples_per_insert as the train ratio, run.seed. `run` gives the
  // budget and checkpoints (its env, preset, batch, lr, exploration and agent fields are ignored;
  // actor.explore_prob and actor.explore_hold give the exploration). A config
  // without a train ratio (replay.samples_per_insert 0, "unthrottled" in a cluster) is
  // INVALID_ARGUMENT: one process needs the ratio to know how many updates an env step buys.
  static absl::StatusOr<std::unique_ptr<LocalTrainer>> Create(const services::Config& config,
                                                              const LocalTrainerOptions& run);
  ~LocalTrainer();

  // One env step of every env, then the updates it earned, then an evaluation when one is due.
  absl::Status Tick();
  // Runs an evaluation now (FAILED_PRECONDITION when options.eval_every is 0: no eval envs).
  absl::StatusOr<EvalResult> Evaluate();
  // True once options.steps env steps are done or the success target is reached.
  bool done() const;
  bool reached_success() const;
  LocalProgress Progress() const;
  // Writes a checkpoint (with the env step counter) when a checkpoint dir is set.
  absl::Status Save();
  // Whether it carried on from a checkpoint (its own, or options.init_from's).
  bool resumed() const { return started_from_ != StartedFrom::kFresh; }
  // Resumed from its own checkpoint with options.episode_log: Progress().episodes counts the
  // whole run's episodes (those logged up to the checkpoint too), not only this process's.
  bool episodes_from_log() const { return episodes_from_log_; }
  StartedFrom started_from() const { return started_from_; }
  // Steps (over all envs) put back into replay from options.replay_log on a resume; 0 otherwise.
  int64_t restored_replay_steps() const { return restored_replay_steps_; }
  int64_t replay_size() const;  // steps held in replay now, over all envs
  // The best greedy evaluation return so far (from best_dir's score.txt after a resume); -inf
  // before the first evaluation.
  double best_eval_return() const;

  const envs::EnvSpec& spec() const { return envs_->spec(); }
  DreamerAgent& agent() { return *agent_; }

 private:
  LocalTrainer(const LocalTrainerOptions& options, std::unique_ptr<envs::VectorEnv> envs,
               std::unique_ptr<DreamerAgent> agent);
  // `options` gives envs, batch, length, train ratio, seed and the run limits; `config` the agent.
  // `env_options` builds the evaluation envs.
  static absl::StatusOr<std::unique_ptr<LocalTrainer>> Build(const LocalTrainerOptions& options,
                                                             const envs::EnvOptions& env_options,
                                                             std::unique_ptr<envs::VectorEnv> envs,
                                                             const dreamer::AgentConfig& config);
  absl::Status Train();
  // Opens options.replay_log; on a resume from the own checkpoint, refills replay from it.
  absl::Status OpenReplayLog();

  struct State;
  const LocalTrainerOptions options_;
  std::unique_ptr<envs::VectorEnv> envs_;
  std::unique_ptr<Evaluator> evaluator_;  // null without evaluation
  std::optional<BestAgent> best_;         // without options.best_dir: none
  std::unique_ptr<DreamerAgent> agent_;
  std::unique_ptr<State> state_;
  bool episodes_from_log_ = false;
  int64_t restored_replay_steps_ = 0;
  StartedFrom started_from_ = StartedFrom::kFresh;
};

}  // namespace dreamfleet::learner
