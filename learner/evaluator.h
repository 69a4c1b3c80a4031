// Evaluation episodes and the best agent, for both trainers (LocalTrainer, LearnerLoop).
// Evaluator: envs of its own (env indices no training env uses, so they never feed replay) on
// which the current policy plays one episode per env, greedily (its most likely action) and
// sampled; its own sampling generator, so evaluating never changes training. BestAgent: the agent
// of the best greedy evaluation so far, as one checkpoint plus score.txt in a directory.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "dreamer/policy.h"
#include "envs/env_options.h"
#include "envs/vector_env.h"

namespace dreamfleet::learner {

class DreamerAgent;

// One evaluation: the mean return and success rate of its episodes in each mode.
struct EvalResult {
  int64_t env_steps = -1;  // the training env steps it ran at; -1: none has run yet
  int64_t episodes = 0;    // per mode
  int64_t cut = 0;         // episodes cut at the step limit, both modes together
  double greedy_return = 0;
  double greedy_success = 0;
  double sampled_return = 0;
  double sampled_success = 0;
  double seconds = 0;  // wall time it took
};

class Evaluator {
 public:
  // `episodes` envs of `env_options`' env (its env_index replaced by the evaluation's own),
  // episodes cut after `max_steps` steps, sampling seeded with `seed`.
  static absl::StatusOr<std::unique_ptr<Evaluator>> Create(envs::EnvOptions env_options,
                                                           int64_t episodes, int64_t max_steps,
                                                           uint64_t seed);
  // Plays one episode per env in each mode; `env_steps` labels the result.
  absl::StatusOr<EvalResult> Run(dreamer::Policy& policy, int64_t env_steps);

 private:
  Evaluator(std::unique_ptr<envs::VectorEnv> envs, int64_t max_steps, uint64_t seed);
  std::unique_ptr<envs::VectorEnv> envs_;
  int64_t max_steps_;
  torch::Generator generator_;
};

class BestAgent {
 public:
  // `dir` must not be a training checkpoint directory. `fresh`: a new run, which clears what a
  // previous run's BestAgent wrote there (nothing else); otherwise the kept score is read, so a
  // resumed run only replaces its best agent with a better one.
  static absl::StatusOr<BestAgent> Open(const std::string& dir, bool fresh);
  double score() const { return score_; }
  const std::string& dir() const { return dir_; }
  // Saves `agent` when result.greedy_return beats the kept score: the checkpoint first, then the
  // score (a crash in between leaves the old score beside an agent at least as good). Returns
  // whether it saved.
  absl::StatusOr<bool> Offer(DreamerAgent& agent, const EvalResult& result);

 private:
  std::string dir_;
  double score_ = 0;
};

}  // namespace dreamfleet::learner
