// Foresight report: does the world model see an episode's end, and a reward, coming? Data flow:
// the run's config -> one env (an env index of its own) and the agent restored from a checkpoint
// -> the policy plays `episodes` episodes -> for every step s of every episode, the world model
// observes the episode up to s (WorldModel::Posterior over each episode, a chunk at a time; or
// only the last `context` steps: WorldModel::OpenLoop over windows) and imagines the next
// `horizon` from the actions taken (WorldModel::ImagineActions) -> per lead k (1..horizon, and 0:
// the observed step itself, what the heads make of the posterior), the imagined chance that the
// episode ends at step s + k where it truly ended there and where it did not, and the imagined
// reward where a reward truly came and where none did. A model that foresees deaths shows a far
// higher end chance at the true ends than elsewhere at short leads; one that does not cannot teach
// the actor to avoid them. For a grid observation (MinAtar, the gridworld's symbolic views) it also
// scores the decoded imagined grid per channel: which occupied cells it keeps, above all those
// that were empty at the last observed step (where the player or an entity moved), so a model
// that cannot imagine a collision shows whether it loses the player, the entities or both.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/config.h"

namespace dreamfleet::learner {

struct ForesightOptions {
  std::string checkpoint_dir;
  int64_t episodes = 20;     // episodes played (each to its end, at most max_steps steps)
  int64_t max_steps = 2000;  // an episode still running is cut here (its steps still count)
  // Observed steps before each imagined stretch (at most those since the episode's start); 0:
  // the whole episode so far, as the agent itself has followed it (observed once: the cheapest).
  int64_t context = 0;
  int64_t horizon = 10;      // imagined steps after each
  int64_t chunk_steps = 16384;  // model steps imagined at once (bounds memory)
  uint64_t seed = 1;         // env seed, the policy's sampling and the model's latent samples
  bool greedy = false;       // the policy's most likely action instead of sampling
};

// How well the imagined grid keeps one channel's occupied cells (an entry counts as occupied at
// >= 0.5, in the truth and in the decoded imagination).
struct ForesightCells {
  int64_t occupied = 0;  // true occupied cells at this lead, over all scored steps
  double kept = 0;       // share of them the imagination has occupied too
  // The mean decoded probability (or value) at them: below 0.5 where the imagination spreads an
  // object over several cells, near 0 where it lost it.
  double probability = 0;
  // Occupied cells that were not occupied at the last observed step (something moved, appeared or
  // was picked up there), and the share of them imagined: what repeating the last step misses.
  int64_t arrived = 0;
  double arrived_kept = 0;
  double spurious_per_step = 0;  // imagined occupied cells that are truly empty, per scored step
};

struct ForesightLead {
  int64_t lead = 0;  // imagined steps after the last observed one (0: that step, the posterior)
  // Steps scored at this lead: those where the episode truly ended (by the game's rules, not a
  // time limit) and the others; the mean imagined end chance (1 - continue probability) of each.
  int64_t ends = 0;
  int64_t others = 0;
  double end_chance_at_ends = 0;
  double end_chance_elsewhere = 0;
  // Steps with a true reward != 0 and with none; the mean imagined reward of each (and, at the
  // rewarded steps, the mean true reward).
  int64_t rewarded = 0;
  int64_t unrewarded = 0;
  double reward_at_rewarded = 0;
  double true_reward_at_rewarded = 0;
  double reward_elsewhere = 0;
  // A grid observation's cells (EnvSpec::vector_grid_channels > 0; empty otherwise), one entry
  // per channel in the env's order.
  std::vector<ForesightCells> cells;
};

struct ForesightEpisode {
  int64_t length = 0;     // actions taken
  bool terminal = false;  // ended by the game's rules (not a time limit or max_steps)
  double episode_return = 0;
};

struct ForesightReport {
  int64_t episodes = 0;
  int64_t steps = 0;  // env steps played
  int64_t ends = 0;   // episodes that ended by the game's rules
  double mean_return = 0;
  std::vector<ForesightEpisode> played;
  std::vector<ForesightLead> leads;  // leads 0..horizon
};

// The report of the agent in options.checkpoint_dir. NOT_FOUND without a checkpoint;
// FAILED_PRECONDITION when it does not fit the config; INVALID_ARGUMENT for bad options
// (1 <= episodes <= 1000, 0 <= context <= 1000, 1 <= horizon <= 100, 1 <= max_steps <= 100000,
// chunk_steps >= 1).
absl::StatusOr<ForesightReport> Foresight(const services::Config& config,
                                          const ForesightOptions& options);

class DreamerAgent;

// The same for an agent in memory (a trainer's, mid-run): options.checkpoint_dir is not read. The
// episodes are played in an env of their own with random streams of their own, so training goes
// on exactly as without the report.
absl::StatusOr<ForesightReport> Foresight(const services::Config& config, DreamerAgent& agent,
                                          const ForesightOptions& options);

// One line: per lead 1 and `far` (or the last lead), the end chance at true ends and elsewhere
// and the imagined reward at true rewards and elsewhere.
std::string ForesightLine(const ForesightReport& report, int64_t far = 5);

// A few lines for a terminal: the episodes and, per lead, the two end chances and the rewards;
// for a grid observation, per lead and channel, the occupied cells kept and the arrived ones.
std::string ForesightSummary(const ForesightReport& report);

}  // namespace dreamfleet::learner
