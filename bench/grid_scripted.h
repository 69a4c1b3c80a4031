// Scripted policies on the gridworlds that see only what the agent sees (MiniGrid's 7x7
// egocentric view in one-hot cells, env.view symbolic_egocentric), for bench_grid_scripted: what
// seeing the goal and exploring are each worth on a task.
//   random        uniform over left, right, forward (bench_learning's random level);
//   random+seek   the same until the goal is in view, then the shortest walk to it over the
//                 open cells in view (random again when none reaches it);
//   wander        forward while the cell ahead is open, a random turn at a wall and, with
//                 probability `turn`, anywhere (no memory);
//   wander+seek   wander until the goal is in view, then walks to it as random+seek does;
//   map+seek      remembers every cell it has seen (dead reckoning from its own moves) and walks
//                 to the nearest open cell beside an unseen one until a walk to the goal is in
//                 view.
// Any other player (bench_grid_scripted's trained agent) plays the same episodes through
// GridPlayer and PlayGrid.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "envs/env_options.h"

namespace dreamfleet::bench {

enum class GridPolicy { kRandom, kRandomSeek, kWander, kWanderSeek, kMapSeek };

// Every policy with its table name, in the table's order.
struct NamedGridPolicy {
  GridPolicy policy;
  const char* name;
};
const std::vector<NamedGridPolicy>& GridPolicies();

struct GridPlayResult {
  int64_t episodes = 0;
  int64_t successes = 0;
  double return_sum = 0.0;
  int64_t success_steps = 0;  // steps of the successful episodes, summed
  int64_t steps = 0;          // steps of every episode
  int64_t goal_in_view_steps = 0;  // of them, steps taken with the goal in view
  // Episodes with the goal in view at some step (every success is one: the goal was ahead).
  int64_t goal_seen_episodes = 0;
};

// Chooses the actions of one player in PlayGrid.
class GridPlayer {
 public:
  virtual ~GridPlayer() = default;
  // Called before each episode's first Choose.
  virtual void NewEpisode() {}
  // The action (GridWorld's kLeft, kRight or kForward) for the egocentric observation `obs`
  // (7 x 7 cells x 12 channels); a status error ends the play with it.
  virtual absl::Status Choose(const std::vector<float>& obs, int* action) = 0;
};

// Plays `episodes` episodes of the gridworld `options` makes (walls and a goal, 3 actions; its
// view must be symbolic_egocentric) with `player`. Episode e's layout depends only on `seed` and
// e, so every player meets the same ones. InvalidArgument for envs with keys or doors, or
// without the egocentric view.
absl::Status PlayGrid(const envs::EnvOptions& options, int64_t episodes, uint64_t seed,
                      GridPlayer* player, GridPlayResult* result);

// PlayGrid with a scripted policy on `env_name`'s defaults (its view symbolic_egocentric).
absl::Status PlayGridPolicy(const std::string& env_name, GridPolicy policy, int64_t episodes,
                            uint64_t seed, double turn, GridPlayResult* result);

// The step that walks towards the goal in an egocentric observation (7 x 7 cells x 12 channels),
// or -1 when no goal is in view. Exposed for tests.
int SeekGoal(const std::vector<float>& obs);

}  // namespace dreamfleet::bench
