#include "bench/grid_scripted.h"

#include <algorithm>
#include <memory>

#include "absl/strings/str_cat.h"
#include "envs/environment.h"
#include "envs/gridworld.h"
#include "envs/registry.h"
#include "envs/rng.h"

namespace dreamfleet::bench {
namespace {

using envs::EnvOptions;
using envs::EnvSeed;
using envs::EnvSpec;
using envs::GridWorld;
using envs::MakeEnvironment;
using envs::Rng;
using envs::StepBuffer;

constexpr int kView = GridWorld::kViewSize;                // 7
constexpr int kChannels = GridWorld::kEgocentricChannels;  // 12
constexpr int kWallChannel = 0;
constexpr int kGoalChannel = 1;
constexpr int kHeadingChannel = 6;             // 6-9: right, down, left, up, at its own cell
constexpr int kUnseenChannel = kChannels - 1;  // occluded or outside the grid
constexpr int kCells = kView * kView;
constexpr int kAgentCell = (kView - 1) * kView + kView / 2;
constexpr int kLeft = GridWorld::kLeft;
constexpr int kRight = GridWorld::kRight;
constexpr int kForward = GridWorld::kForward;

// The egocentric view: the agent stands at row kView-1, column kView/2, facing row 0.
bool At(const std::vector<float>& obs, int row, int col, int channel) {
  return obs[(row * kView + col) * kChannels + channel] > 0.5f;
}

// The view's cell (row * kView + col) that shows the goal, the agent's own cell aside; -1: none.
int FindGoal(const std::vector<float>& obs) {
  for (int cell = 0; cell < kCells; ++cell) {
    if (cell != kAgentCell && At(obs, cell / kView, cell % kView, kGoalChannel)) return cell;
  }
  return -1;
}

// The agent's compass direction (MiniGrid's: 0 right, 1 down, 2 left, 3 up).
int Heading(const std::vector<float>& obs) {
  int dir = 0;
  for (int d = 0; d < 4; ++d) {
    if (At(obs, kView - 1, kView / 2, kHeadingChannel + d)) dir = d;
  }
  return dir;
}

// The step that walks towards the goal in view, or -1 when none is in view or no walk over the
// seen open cells of the view reaches it (a goal seen through a gap, behind a wall). A shortest
// walk over the view's cells by breadth-first search from the goal; the agent then steps to a
// neighbour one closer, turning first when that neighbour is not ahead.
int SeekStep(const std::vector<float>& obs) {
  const int goal = FindGoal(obs);
  if (goal < 0) return -1;
  const auto open = [&](int cell) {
    const int row = cell / kView, col = cell % kView;
    return !At(obs, row, col, kUnseenChannel) && !At(obs, row, col, kWallChannel);
  };
  int distance[kCells];
  std::fill(distance, distance + kCells, -1);
  int queue[kCells], tail = 0;
  distance[goal] = 0;
  queue[tail++] = goal;
  static constexpr int kDRow[4] = {-1, 0, 1, 0}, kDCol[4] = {0, 1, 0, -1};  // ahead, right, ...
  for (int head = 0; head < tail; ++head) {
    const int at = queue[head];
    for (int d = 0; d < 4; ++d) {
      const int row = at / kView + kDRow[d], col = at % kView + kDCol[d];
      if (row < 0 || col < 0 || row >= kView || col >= kView) continue;
      const int next = row * kView + col;
      if (distance[next] >= 0 || !open(next)) continue;
      distance[next] = distance[at] + 1;
      queue[tail++] = next;
    }
  }
  if (distance[kAgentCell] < 0) return -1;
  // Ahead first, else the side one step closer: a walk inside the view leaves the agent's cell
  // ahead or to a side (the view holds no cell behind it), so one of the three is.
  int best = -1;
  for (int d : {0, 1, 3}) {
    const int row = kView - 1 + kDRow[d], col = kView / 2 + kDCol[d];
    if (row < 0 || col < 0 || row >= kView || col >= kView) continue;
    const int next = row * kView + col;
    if (distance[next] >= 0 && distance[next] == distance[kAgentCell] - 1) {
      best = d;
      break;
    }
  }
  if (best == 0) return kForward;
  return best == 1 ? kRight : kLeft;
}

int Wander(const std::vector<float>& obs, double turn, Rng* rng) {
  const bool blocked = At(obs, kView - 2, kView / 2, kWallChannel);
  if (blocked || rng->Bernoulli(turn)) return rng->Bernoulli(0.5) ? kLeft : kRight;
  return kForward;
}

// A map of the cells seen so far, in coordinates relative to the episode's start (dead reckoning:
// the policy knows its own moves), and a walk towards the nearest open cell next to an unseen one.
class Explorer {
 public:
  void Reset() {
    cells_.assign(kSide * kSide, kUnknown);
    x_ = y_ = kSide / 2;
  }

  // Updates the map from `obs` (the agent's compass direction is at its own cell) and returns the
  // first step of a shortest walk to the nearest frontier; -1 when none is left.
  int Step(const std::vector<float>& obs) {
    if (!Inside(x_, y_)) return -1;  // a world wider than the map: wander
    const int dir = Heading(obs);
    for (int row = 0; row < kView; ++row) {
      for (int col = 0; col < kView; ++col) {
        if (At(obs, row, col, kUnseenChannel)) continue;
        int x, y;
        ToWorld(dir, kView - 1 - row, col - kView / 2, &x, &y);
        if (Inside(x, y)) cells_[y * kSide + x] = At(obs, row, col, kWallChannel) ? kWall : kOpen;
      }
    }
    // Breadth-first search from the agent over open cells to one with an unknown neighbour.
    std::vector<int> parent(kSide * kSide, -1);
    std::vector<int> queue = {y_ * kSide + x_};
    parent[queue[0]] = queue[0];
    int target = -1;
    for (size_t head = 0; head < queue.size() && target < 0; ++head) {
      const int at = queue[head];
      for (int d = 0; d < 4; ++d) {
        const int nx = at % kSide + kDx[d], ny = at / kSide + kDy[d];
        if (!Inside(nx, ny)) continue;
        const int next = ny * kSide + nx;
        if (cells_[next] == kUnknown) {
          target = at;
          break;
        }
        if (cells_[next] == kWall || parent[next] >= 0) continue;
        parent[next] = at;
        queue.push_back(next);
      }
    }
    if (target < 0 || target == y_ * kSide + x_) return target < 0 ? -1 : kLeft;  // look around
    int first = target;
    while (parent[first] != y_ * kSide + x_) first = parent[first];
    const int want_dx = first % kSide - x_, want_dy = first / kSide - y_;
    if (want_dx == kDx[dir] && want_dy == kDy[dir]) return kForward;
    return want_dx == kDx[(dir + 1) % 4] && want_dy == kDy[(dir + 1) % 4] ? kRight : kLeft;
  }

  // Dead reckoning: a forward step moves the agent when the cell ahead is not a wall.
  void Moved(const std::vector<float>& obs_before, int action) {
    if (action != kForward || At(obs_before, kView - 2, kView / 2, kWallChannel)) return;
    const int dir = Heading(obs_before);
    x_ += kDx[dir];
    y_ += kDy[dir];
  }

 private:
  static constexpr int kSide = 64;  // room for a 32x32 world from any start
  static constexpr int kUnknown = 0, kOpen = 1, kWall = 2;
  // MiniGrid's directions: right, down, left, up.
  static constexpr int kDx[4] = {1, 0, -1, 0};
  static constexpr int kDy[4] = {0, 1, 0, -1};

  static bool Inside(int x, int y) { return x >= 0 && y >= 0 && x < kSide && y < kSide; }
  // A cell `ahead` cells in front of the agent and `right` to its right.
  void ToWorld(int dir, int ahead, int right, int* x, int* y) const {
    const int rdir = (dir + 1) % 4;  // turning right
    *x = x_ + ahead * kDx[dir] + right * kDx[rdir];
    *y = y_ + ahead * kDy[dir] + right * kDy[rdir];
  }

  std::vector<uint8_t> cells_;
  int x_ = 0, y_ = 0;
};

}  // namespace

const std::vector<NamedGridPolicy>& GridPolicies() {
  static const std::vector<NamedGridPolicy> policies = {{GridPolicy::kRandom, "random"},
                                                        {GridPolicy::kRandomSeek, "random+seek"},
                                                        {GridPolicy::kWander, "wander"},
                                                        {GridPolicy::kWanderSeek, "wander+seek"},
                                                        {GridPolicy::kMapSeek, "map+seek"}};
  return policies;
}

int SeekGoal(const std::vector<float>& obs) { return SeekStep(obs); }

absl::Status PlayGrid(const EnvOptions& options, int64_t episodes, uint64_t seed,
                      GridPlayer* player, GridPlayResult* result) {
  if (options.view != "symbolic_egocentric") {
    return absl::InvalidArgumentError(
        absl::StrCat(options.name, " is seen with view ", options.view,
                     "; the scripted policies and the goal counts read view symbolic_egocentric"));
  }
  auto env = MakeEnvironment(options);
  if (!env.ok()) return env.status();
  const EnvSpec& spec = (*env)->spec();
  // Keys and doors (5 actions) are beyond these policies: a closed door would also break the
  // explorer's dead reckoning.
  if (spec.vector_size != kView * kView * kChannels || spec.num_actions != 3) {
    return absl::InvalidArgumentError(absl::StrCat(
        options.name,
        " is not a gridworld of walls and a goal seen through MiniGrid's 7x7 egocentric ",
        "view (vector ", spec.vector_size, ", ", spec.num_actions, " actions; want ",
        kView * kView * kChannels, " and 3)"));
  }
  std::vector<float> obs(spec.vector_size);
  StepBuffer step;
  step.vector = obs.data();
  // The same episodes (layouts) for every player: episode e resets with the same seed. Mixing the
  // seed first keeps the layouts of --seed 1 and --seed 2 apart (EnvSeed(s, e) = EnvSeed(s + e)).
  uint64_t mix = seed;
  const uint64_t layouts = envs::SplitMix64(&mix);
  *result = GridPlayResult{};
  for (int64_t e = 0; e < episodes; ++e) {
    if (auto s = (*env)->Reset(EnvSeed(layouts, static_cast<uint64_t>(e)), &step); !s.ok()) {
      return s;
    }
    double episode_return = 0.0;
    int steps = 0;
    bool goal_seen = false;
    player->NewEpisode();
    while (true) {
      const bool goal_in_view = FindGoal(obs) >= 0;
      result->goal_in_view_steps += goal_in_view;
      goal_seen |= goal_in_view;
      int action = -1;
      if (auto s = player->Choose(obs, &action); !s.ok()) return s;
      if (action < 0 || action >= spec.num_actions) {
        return absl::InternalError(
            absl::StrCat("the player chose action ", action, " of ", spec.num_actions));
      }
      if (auto s = (*env)->Step(action, &step); !s.ok()) return s;
      ++steps;
      ++result->steps;
      episode_return += step.reward;
      if (step.is_last) break;
    }
    ++result->episodes;
    result->goal_seen_episodes += goal_seen;
    result->return_sum += episode_return;
    if (step.success) {
      ++result->successes;
      result->success_steps += steps;
    }
  }
  return absl::OkStatus();
}

absl::Status PlayGridPolicy(const std::string& env_name, GridPolicy policy, int64_t episodes,
                            uint64_t seed, double turn, GridPlayResult* result) {
  // The scripted policies: seek the goal in view (all but random and wander), else explore with
  // the map (map+seek), else move at random or wander.
  class Scripted : public GridPlayer {
   public:
    Scripted(GridPolicy policy, uint64_t seed, double turn)
        : policy_(policy), turn_(turn), rng_(seed * 7919 + static_cast<uint64_t>(policy)) {}
    void NewEpisode() override { explorer_.Reset(); }
    absl::Status Choose(const std::vector<float>& obs, int* action) override {
      *action = -1;
      if (policy_ != GridPolicy::kRandom && policy_ != GridPolicy::kWander) *action = SeekStep(obs);
      if (*action < 0 && policy_ == GridPolicy::kMapSeek) *action = explorer_.Step(obs);
      if (*action < 0) {
        *action = policy_ == GridPolicy::kRandom || policy_ == GridPolicy::kRandomSeek
                      ? rng_.UniformInt(0, 2)
                      : Wander(obs, turn_, &rng_);
      }
      explorer_.Moved(obs, *action);
      return absl::OkStatus();
    }

   private:
    GridPolicy policy_;
    double turn_;
    Rng rng_;
    Explorer explorer_;
  };
  EnvOptions options;
  options.name = env_name;
  options.view = "symbolic_egocentric";
  options.base_seed = seed;
  Scripted player(policy, seed, turn);
  return PlayGrid(options, episodes, seed, &player, result);
}

}  // namespace dreamfleet::bench
