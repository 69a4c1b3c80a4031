#include "learner/evaluator.h"

#include <filesystem>
#include <fstream>
#include <limits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "learner/checkpoint.h"
#include "learner/dreamer_agent.h"
#include "services/durable_file.h"
#include "services/status_macros.h"

namespace dreamfleet::learner {
namespace {

// Evaluation envs take env indices no training env uses.
constexpr int kEvalEnvIndex = 1 << 20;
constexpr char kBestScore[] = "score.txt";

}  // namespace

absl::StatusOr<std::unique_ptr<Evaluator>> Evaluator::Create(envs::EnvOptions env_options,
                                                             int64_t episodes, int64_t max_steps,
                                                             uint64_t seed) {
  if (episodes < 1 || episodes > 1000 || max_steps < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("need 1 to 1000 evaluation episodes and a step limit >= 1; got ", episodes,
                     " and ", max_steps));
  }
  env_options.env_index = kEvalEnvIndex;
  ASSIGN_OR_RETURN(std::unique_ptr<envs::VectorEnv> envs,
                   envs::VectorEnv::Create(env_options, static_cast<int>(episodes)));
  return std::unique_ptr<Evaluator>(new Evaluator(std::move(envs), max_steps, seed));
}

Evaluator::Evaluator(std::unique_ptr<envs::VectorEnv> envs, int64_t max_steps, uint64_t seed)
    : envs_(std::move(envs)),
      max_steps_(max_steps),
      generator_(at::detail::createCPUGenerator(seed)) {}

absl::StatusOr<EvalResult> Evaluator::Run(dreamer::Policy& policy, int64_t env_steps) {
  const absl::Time start = absl::Now();
  const int n = envs_->num_envs();
  EvalResult result;
  result.env_steps = env_steps;
  result.episodes = n;
  for (const bool greedy : {true, false}) {
    RETURN_IF_ERROR(envs_->Reset());
    dreamer::PolicyState policy_state = policy->Initial(n);
    // Each env's first episode counts, summed step by step (so an episode cut at the limit
    // counts its return so far); envs that finished keep stepping (auto-reset) unread.
    std::vector<double> returns(n, 0.0);
    std::vector<char> success(n, 0), finished(n, 0);
    int remaining = n;
    std::vector<int> actions;
    for (int64_t step = 0; step < max_steps_ && remaining > 0; ++step) {
      RETURN_IF_ERROR(
          dreamer::ActOnEnvs(policy, *envs_, &policy_state, generator_, &actions, greedy));
      if (absl::Status status = envs_->Step(actions); !status.ok()) {
        return absl::Status(status.code(),
                            absl::StrCat("evaluation env step failed: ", status.message()));
      }
      for (int i = 0; i < n; ++i) {
        if (finished[i]) continue;
        returns[i] += envs_->reward()[i];
        success[i] |= envs_->success()[i];
      }
      for (const envs::EpisodeStats& episode : envs_->finished_episodes()) {
        if (finished[episode.env]) continue;
        finished[episode.env] = 1;  // its return and success are complete
        --remaining;
      }
    }
    result.cut += remaining;
    double mean_return = 0, mean_success = 0;
    for (int i = 0; i < n; ++i) {
      mean_return += returns[i] / n;
      mean_success += (success[i] ? 1.0 : 0.0) / n;
    }
    (greedy ? result.greedy_return : result.sampled_return) = mean_return;
    (greedy ? result.greedy_success : result.sampled_success) = mean_success;
  }
  result.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  return result;
}

absl::StatusOr<BestAgent> BestAgent::Open(const std::string& dir, bool fresh) {
  if (dir.empty()) return absl::InvalidArgumentError("no best-agent directory");
  BestAgent best;
  best.dir_ = dir;
  best.score_ = -std::numeric_limits<double>::infinity();
  if (!fresh) {
    if (std::ifstream in(dir + "/" + kBestScore); in) {
      double score = 0;
      if (in >> score) best.score_ = score;
    }
    return best;
  }
  // Only what Offer writes goes; anything else a user keeps there stays.
  std::error_code error;
  for (const std::string& score : {std::string(kBestScore), std::string(kBestScore) + ".tmp"}) {
    std::filesystem::remove(dir + "/" + score, error);
  }
  if (absl::Status cleared = RemoveCheckpoints(dir); !cleared.ok() || error) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot clear the previous run's best agent in ", dir, ": ",
                     cleared.ok() ? error.message() : std::string(cleared.message())));
  }
  return best;
}

absl::StatusOr<bool> BestAgent::Offer(DreamerAgent& agent, const EvalResult& result) {
  if (!(result.greedy_return > score_)) return false;
  // Best checkpoints are numbered one past the highest in the directory, not by update count: a
  // resumed run can reach an update count its lost timeline already saved a best agent at.
  int64_t step = 0;
  if (absl::StatusOr<std::vector<int64_t>> steps = ListCheckpoints(dir_);
      steps.ok() && !steps->empty()) {
    step = steps->back() + 1;
  }
  RETURN_IF_ERROR(agent.Save(dir_, /*keep_last=*/1, step));
  RETURN_IF_ERROR(services::ReplaceFileDurably(
      dir_ + "/" + kBestScore, absl::StrFormat("%.17g %lld\n", result.greedy_return,
                                               static_cast<long long>(result.env_steps))));
  score_ = result.greedy_return;
  return true;
}

}  // namespace dreamfleet::learner
