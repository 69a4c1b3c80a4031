// bench_breakout_probe: why a trained MinAtar Breakout agent scores what it scores.
//
//   bench_breakout_probe --run runs/bench_learning/minatar_breakout/seed0 [--episodes=40]
//                        [--greedy=false] [--seed=5] [--scripted-episodes=200] [--trace-misses=N]
//   bench_breakout_probe --scripted-only
//
// 1. Two scripted paddles on the same game with the same sticky actions (0.1): one that follows
//    the ball's column, one that moves to the column where the falling ball will reach the
//    paddle's row. They say what simple control scores, as levels for the learning curves.
// 2. The agent plays --episodes episodes (the board read from the game's state, so an agent that
//    sees pixels can be probed too; what needs the model's imagined boards, the decoded cells of
//    3, the imagined boards of 5 and all of 6, only for the symbolic view). While the ball falls,
//    each move is compared with the landing-column paddle's move; at each miss, the distance from
//    paddle to ball is counted, and whether the last three moves went away from the ball, towards
//    it, or neither on balance; the action histogram is printed. While the ball rises, each move
//    is judged against the column the ball then came down in (known when the fall begins) and
//    against the rising ball's column, with the paddle's gap to the landing column at the rise's
//    start and at the fall's: whether the agent uses the rise to get into place.
// 3. From the agent's own posterior states where the falling ball will land two or more columns
//    away from the paddle, near enough for the paddle to get there in time, the world model
//    imagines 12 steps of two fixed plans, 16 samples each: stay still, or move to the landing
//    column. It prints the imagined survival (product of continue probabilities), imagined reward
//    plus the critic's value at the end, the survival until the step after the ball reaches the
//    paddle's row (one catch, no second fall), and the move plan's continue probability per
//    imagined step by the ball's starting row: a dip at the catch step is a model that imagines a
//    correct catch as a likely miss; and, on the step before the deciding one, how many of the
//    move plan's samples decode to the paddle where the plan put it and the ball on its landing
//    cell (a board that shows the catch coming while the continue head dips says the continue
//    prediction, not the dynamics, loses it). A model that separates the plans while the policy
//    does not move says the actor-critic is the limit, not the world model. Both plans' survival
//    is also split by the gap between paddle and landing column at the probed state (2, 3, 4+).
// 4. At every step while the ball falls, the actor and the critic: the policy's probability of
//    moving left, not moving and right, the critic's value, and a one-step lookahead value of each
//    move (reward + continue x value of the state the world model expects after it). Summed over
//    every falling step and over the last 4 before each miss: how often the landing-column
//    paddle's move is the policy's most probable, the one the agent chose (sticky actions may have
//    repeated its previous one instead), and the one the lookahead values
//    best. A lookahead that prefers the right move where the policy does not says the actor lags
//    its critic; a lookahead that does not says the critic (or the model under it) cannot tell.
//    The same over every step of the falls by their starting gap (0-1, 2, 3, 4+ columns), beside
//    how many falls from each gap were caught: where the agent's reach ends, and who gives up.
// 5. --trace-misses N prints, for the first N misses, the last 10 boards and moves with the board
//    the world model expects one step later (decoded from its prior) and the actor and critic as
//    in 4, which shows where a miss comes from: a move away from the ball, or a model that
//    predicts the ball wrongly.
// 6. Open loop: from up to 300 posterior states while the ball falls, the world model imagines
//    the next 5 boards under the actions the agent took (16 samples, each decoded), and the probe
//    counts the samples with the ball, and the paddle, on exactly the real cell after 1..5 steps.
//    A catch the model cannot foresee starts here: a ball it loses track of in 3-4 steps.
// 7. The continue probability the model gives the step that decides a ball (the ball leaves the
//    row above the paddle's), imagined from the posterior 3 steps earlier under the actions
//    taken, averaged separately over real catches and real misses (up to 300 each): whether the
//    continue head tells them apart on the agent's own play. Beside it, every deciding step of
//    the agent's play counted by outcome and by how many columns the paddle moved in the 4 steps
//    before (0, 1, 2+): how often late movement ends in a miss in the data the model learns from.
// 8. --replay-falls DIR reads the training play a run logged (a bench_learning run's `replay`
//    directory, read from a temporary copy) and counts its falls by the
//    paddle's starting gap and outcome, per 20k env steps: whether the data the model learned
//    from ever held a catch from 3 or 4+ columns, and when. Needs the run's config (--run) for
//    the log's layout, and the symbolic view.
#include <torch/torch.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <iostream>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "dreamer/actor_critic.h"
#include "dreamer/batch.h"
#include "dreamer/distributions.h"
#include "dreamer/models/mlp.h"
#include "dreamer/policy.h"
#include "dreamer/world_model.h"
#include "envs/minatar_breakout.h"
#include "envs/minatar_env.h"
#include "envs/rng.h"
#include "learner/agent_source.h"
#include "learner/replay_log.h"
#include "services/command_line.h"
#include "services/thread_env.h"

namespace {

using namespace dreamfleet;

constexpr double kSticky = 0.1;  // MinAtar's sticky-action probability, as the configs use it
constexpr int kRow = 9;          // the paddle's row

// Column where a ball at (x, y) moving in `dir` (MinAtarBreakout::ball_dir: 0 up-left, 1
// up-right, 2 down-right, 3 down-left) reaches the row above the paddle, bouncing off the side
// walls as the game does (the position clamps and the direction flips). A rising ball: its column.
int LandingColumn(int x, int y, int dir) {
  if (dir < 2) return x;
  int dx = dir == 2 ? 1 : -1;
  for (int step = 0; step < kRow - 1 - y; ++step) {
    x += dx;
    if (x < 0 || x > 9) {
      x = x < 0 ? 0 : 9;
      dx = -dx;
    }
  }
  return x;
}

int MoveTowards(int target, int paddle) {
  return target < paddle ? envs::kLeft : target > paddle ? envs::kRight : envs::kNoop;
}

// Agent action indices against MinAtar's actions: the agent may act in the full 6-action set or
// in Breakout's minimal one (noop, left, right); the env spec names the agent's actions.
struct ActionMap {
  std::vector<int> game;                                           // agent action -> MinAtarAction
  int agent[envs::kMinAtarNumActions] = {-1, -1, -1, -1, -1, -1};  // MinAtarAction -> agent

  explicit ActionMap(const std::vector<std::string>& names) {
    for (size_t i = 0; i < names.size(); ++i) {
      for (int a = 0; a < envs::kMinAtarNumActions; ++a) {
        if (names[i] == envs::kMinAtarActionNames[a]) {
          game.push_back(a);
          agent[a] = static_cast<int>(i);
        }
      }
    }
  }
  bool ok(size_t num_actions) const {
    return game.size() == num_actions && agent[envs::kNoop] >= 0 && agent[envs::kLeft] >= 0 &&
           agent[envs::kRight] >= 0;
  }
};

void Scripted(int episodes, uint64_t seed) {
  for (int mode = 0; mode < 2; ++mode) {
    envs::Rng rng(seed);
    double total = 0;
    for (int e = 0; e < episodes; ++e) {
      envs::MinAtarBreakout game;
      game.Reset(&rng);
      bool terminal = false;
      int last = envs::kNoop;
      for (int t = 0; t < 10000 && !terminal; ++t) {  // MinAtarEnv's default episode cut
        const int target = mode == 0 ? game.ball_x()
                                     : LandingColumn(game.ball_x(), game.ball_y(), game.ball_dir());
        int action = MoveTowards(target, game.paddle_x());
        if (rng.Uniform() < kSticky) action = last;
        last = action;
        total += game.Act(action, &rng, &terminal);
      }
    }
    std::printf(
        "scripted paddle that %s: mean return %.2f over %d episodes (sticky actions %.1f)\n",
        mode == 0 ? "follows the ball's column" : "moves to the landing column", total / episodes,
        episodes, kSticky);
  }
}

struct Board {
  int paddle = -1, ball_x = -1, ball_y = -1, trail_x = -1, trail_y = -1;
  bool complete() const { return paddle >= 0 && ball_x >= 0 && trail_x >= 0; }
  // The direction of the last move (trail -> ball). After a bounce the game may already have
  // flipped it; the probe accepts that approximation.
  int dir() const {
    // A straight-down or straight-up step only happens when a side wall clamped the column, and
    // the game has then turned the ball away from that wall.
    const bool down = ball_y > trail_y;
    const bool right = ball_x != trail_x ? ball_x > trail_x : ball_x == 0;
    return down ? (right ? 2 : 3) : (right ? 1 : 0);
  }
};

// The game's uint8 state or a logged step's float grid, both 0/1 per cell.
template <typename Cell>
Board Decode(const Cell* grid) {  // [10, 10, 4]: paddle, ball, trail, brick
  Board b;
  for (int y = 0; y < 10; ++y) {
    for (int x = 0; x < 10; ++x) {
      const Cell* c = grid + (y * 10 + x) * 4;
      if (c[0] != 0) b.paddle = x;
      if (c[1] != 0) b.ball_x = x, b.ball_y = y;
      if (c[2] != 0) b.trail_x = x, b.trail_y = y;
    }
  }
  return b;
}

// One imagined step for each of the samples in deter [N, D] / stoch [N, S, C]: the prior after
// each sample's agent action in `actions` (int64 [N]; the global generator draws the latents).
void PriorStep(learner::DreamerAgent& agent, const torch::Tensor& actions, torch::Tensor* deter,
               torch::Tensor* stoch) {
  auto rssm = agent.world_model()->rssm();
  auto onehot = torch::one_hot(actions, agent.config().num_actions).to(torch::kFloat);
  *deter = rssm->Core(*deter, *stoch, onehot);
  *stoch = rssm->Sample(rssm->PriorLogit(*deter), std::nullopt);
}

// The same with one action for every sample.
void PriorStep(learner::DreamerAgent& agent, int action, torch::Tensor* deter,
               torch::Tensor* stoch) {
  PriorStep(agent, torch::full({deter->size(0)}, action, torch::kLong), deter, stoch);
}

// Where the decoded grid of each sample's features [N, F] puts the ball (cell y * 10 + x) and the
// paddle (its column on row kRow), each at its channel's largest value.
struct DecodedCells {
  torch::Tensor ball_cell, paddle_x;  // int64 [N]
};
DecodedCells Decoded(learner::DreamerAgent& agent, const torch::Tensor& feat) {
  auto grid = agent.world_model()->DecodeVector(feat).reshape({feat.size(0), 10, 10, 4});
  return {grid.select(-1, 1).reshape({feat.size(0), 100}).argmax(1),
          grid.select(-1, 0).select(1, kRow).argmax(1)};
}

// Imagined survival and reward + value of a fixed plan from one posterior state over `steps`
// steps; the survival after `landing_steps` steps, the per-step continue probabilities added to
// `step_continue` when given.
struct PlanOutcome {
  double survival = 0, value = 0, survival_at_landing = 0;
  // On the step before the deciding one (the ball one row above the paddle's): the share of
  // samples whose decoded paddle is where the plan has put it, and whose decoded ball is on row
  // kRow - 1 in the column the real game would have it.
  double paddle_placed = 0, ball_placed = 0;
};
PlanOutcome ImaginePlan(learner::DreamerAgent& agent, const ActionMap& map,
                        const dreamer::PolicyState& state, int paddle, int target, bool move,
                        double gamma, int steps, int landing_steps, bool decodes,
                        std::vector<double>* step_continue = nullptr) {
  PlanOutcome out;
  torch::NoGradGuard no_grad;
  auto wm = agent.world_model();
  const int64_t samples = 16;
  auto deter = state.deter.repeat({samples, 1});
  auto stoch = state.stoch.repeat({samples, 1, 1});
  auto alive = torch::ones({samples});
  double reward = 0;
  for (int h = 0; h < steps; ++h) {
    int action = envs::kNoop;
    if (move) {
      action = MoveTowards(target, paddle);
      paddle += action == envs::kLeft ? -1 : action == envs::kRight ? 1 : 0;
    }
    PriorStep(agent, map.agent[action], &deter, &stoch);
    auto feat = dreamer::RssmImpl::Feat(deter, stoch);
    reward += (alive * wm->RewardMean(feat)).mean().item<double>();
    // With contdisc the continue probability includes the discount: take it out.
    auto cont = wm->ContinueProb(feat) / (agent.config().contdisc ? gamma : 1.0);
    if (step_continue != nullptr) (*step_continue)[h] += cont.mean().item<double>();
    alive = alive * cont;
    if (h + 1 == landing_steps) out.survival_at_landing = alive.mean().item<double>();
    if (decodes && h + 3 == landing_steps) {
      const DecodedCells cells = Decoded(agent, feat);
      out.paddle_placed = (cells.paddle_x == paddle).to(torch::kFloat).mean().item<double>();
      out.ball_placed =
          (cells.ball_cell == (kRow - 1) * 10 + target).to(torch::kFloat).mean().item<double>();
    }
  }
  auto feat = dreamer::RssmImpl::Feat(deter, stoch);
  auto value = dreamer::TwoHotMean(agent.actor_critic()->value()->forward(feat),
                                   dreamer::TwoHotSpaceNamed(agent.config().twohot));
  out.survival = alive.mean().item<double>();
  out.value = reward + (alive * value).mean().item<double>();
  return out;
}

// What the actor and the critic make of one posterior state: the policy's probability of moving
// the paddle left, not at all (noop and the actions that do not move it) and right; the critic's
// value; and a one-step lookahead value of each move, reward + continue * value of the state the
// world model expects after it (16 samples), so that q - v is that move's advantage as the critic
// and model see it.
struct ActorView {
  double p[3] = {0, 0, 0};  // left, stay, right
  double value = 0;
  double q[3] = {0, 0, 0};
};
constexpr int kMoves[3] = {envs::kLeft, envs::kNoop, envs::kRight};
int MoveIndex(int move) { return move == envs::kLeft ? 0 : move == envs::kRight ? 2 : 1; }

// A fall's starting gap (columns between paddle and landing column) as one of 0-1, 2, 3, 4+.
int GapBucket(int gap) { return std::clamp(gap - 1, 0, 3); }

// Over the rises that ended in a fall: each rising step's move against the column the ball
// then came down in (towards it, not moving, away; on the landing column, not moving counts as
// towards), the gap between paddle and that column at the rise's first step and at the fall's
// first, and the moves against the rising ball's own column, which is all the agent can see of
// where it is going until it turns.
struct RiseStep {
  Board board;
  int move;  // MinAtarAction
};

struct RiseStats {
  int64_t rises = 0, steps = 0;
  int64_t landing[3] = {0, 0, 0};          // away, not moving, towards the landing column
  int64_t column[3] = {0, 0, 0};           // the same against the ball's column at that step
  int64_t far_steps = 0, far_towards = 0;  // steps 3+ columns from the landing column
  double gap_first = 0, gap_fall = 0;

  static int Kind(int move, int paddle, int target) {
    const int dx = (move == envs::kRight) - (move == envs::kLeft);
    const int side = (target > paddle) - (target < paddle);
    if (dx == 0) return side == 0 ? 2 : 1;
    return dx == side ? 2 : 0;
  }
  void Add(const std::vector<RiseStep>& rise, int target, int paddle_at_fall) {
    if (rise.empty()) return;
    ++rises;
    gap_first += std::abs(target - rise.front().board.paddle);
    gap_fall += std::abs(target - paddle_at_fall);
    for (const RiseStep& r : rise) {
      ++steps;
      ++landing[Kind(r.move, r.board.paddle, target)];
      ++column[Kind(r.move, r.board.paddle, r.board.ball_x)];
      if (std::abs(target - r.board.paddle) >= 3) {
        ++far_steps;
        far_towards += Kind(r.move, r.board.paddle, target) == 2;
      }
    }
  }
  void Print() const {
    const double n = std::max<int64_t>(steps, 1);
    std::printf(
        "while the ball rises (%lld rises that ended in a fall, %lld steps): moves towards the "
        "column it then came down in %.1f%%, no move %.1f%%, away %.1f%%; towards the rising "
        "ball's column %.1f%%, away %.1f%%; paddle 3+ columns from the landing column in %.1f%% "
        "of rising steps, moving towards it in %.1f%% of those; mean gap to the landing column "
        "at the rise's first step %.2f, at the fall's first %.2f\n",
        static_cast<long long>(rises), static_cast<long long>(steps), 100.0 * landing[2] / n,
        100.0 * landing[1] / n, 100.0 * landing[0] / n, 100.0 * column[2] / n,
        100.0 * column[0] / n, 100.0 * far_steps / n,
        100.0 * far_towards / std::max<int64_t>(far_steps, 1),
        gap_first / std::max<int64_t>(rises, 1), gap_fall / std::max<int64_t>(rises, 1));
  }
};

// Over a set of falling-ball steps: how often the move the landing-column paddle makes (the
// "wanted" move) is the policy's most probable move, the one it chose, and the one the one-step
// lookahead values best; the policy's mean probability of it; the critic's mean value and the
// mean spread of the lookahead values (best move's minus worst move's).
struct WantedStats {
  int64_t n = 0, policy_mode = 0, chosen = 0, q_best = 0;
  double p_wanted = 0, value = 0, q_spread = 0;
  void Add(const ActorView& v, int wanted, int chosen_move) {
    const int w = MoveIndex(wanted);
    ++n;
    p_wanted += v.p[w];
    chosen += MoveIndex(chosen_move) == w;
    policy_mode += v.p[w] >= v.p[0] && v.p[w] >= v.p[1] && v.p[w] >= v.p[2];
    q_best += v.q[w] >= v.q[0] && v.q[w] >= v.q[1] && v.q[w] >= v.q[2];
    value += v.value;
    q_spread += std::max({v.q[0], v.q[1], v.q[2]}) - std::min({v.q[0], v.q[1], v.q[2]});
  }
  void Print(const char* what) const {
    if (n == 0) return;
    std::printf(
        "  %-44s %5lld steps: p(wanted) %.2f, wanted = policy's mode %.1f%%, chosen %.1f%%, "
        "best one-step lookahead %.1f%%; value %.2f, lookahead spread %.3f\n",
        what, static_cast<long long>(n), p_wanted / n, 100.0 * policy_mode / n, 100.0 * chosen / n,
        100.0 * q_best / n, value / n, q_spread / n);
  }
};

ActorView InspectActor(learner::DreamerAgent& agent, const ActionMap& map,
                       const dreamer::PolicyState& state) {
  torch::NoGradGuard no_grad;
  ActorView out;
  auto wm = agent.world_model();
  auto ac = agent.actor_critic();
  const auto space = dreamer::TwoHotSpaceNamed(agent.config().twohot);
  auto feat = dreamer::RssmImpl::Feat(state.deter, state.stoch);
  auto probs = ac->PolicyLogits(feat).exp().reshape({-1}).contiguous();
  for (size_t a = 0; a < map.game.size(); ++a) {
    out.p[MoveIndex(map.game[a])] += probs[a].item<double>();
  }
  out.value = dreamer::TwoHotMean(ac->value()->forward(feat), space).mean().item<double>();
  const int64_t samples = 16;
  const double gamma = 1.0 - 1.0 / agent.config().horizon;
  for (int m = 0; m < 3; ++m) {
    auto deter = state.deter.repeat({samples, 1});
    auto stoch = state.stoch.repeat({samples, 1, 1});
    PriorStep(agent, map.agent[kMoves[m]], &deter, &stoch);
    auto next = dreamer::RssmImpl::Feat(deter, stoch);
    // With contdisc the continue probability already includes the discount.
    auto cont = wm->ContinueProb(next) * (agent.config().contdisc ? 1.0 : gamma);
    auto v = dreamer::TwoHotMean(ac->value()->forward(next), space);
    out.q[m] = (wm->RewardMean(next) + cont * v).mean().item<double>();
  }
  return out;
}

// Decision-time planning with the agent's own world model and critic: each action held for 1, 2,
// 4 or 8 steps and then the policy's most likely action, against the policy's most likely action
// throughout, `samples` imagined rollouts each of `horizon` steps, scored by the discounted
// imagined reward plus the critic's value at the end. Returns the first action of the best plan
// when it beats the policy's own plan by more than `margin`, else -1 (keep the policy's action).
int PlanAction(learner::DreamerAgent& agent, const dreamer::PolicyState& state, int samples,
               int horizon, double margin) {
  torch::NoGradGuard no_grad;
  auto wm = agent.world_model();
  auto ac = agent.actor_critic();
  const int64_t actions = agent.config().num_actions;
  const std::vector<int64_t> holds = {1, 2, 4, 8};
  const int64_t plans = actions * static_cast<int64_t>(holds.size()) + 1;  // the last: no hold
  const int64_t n = plans * samples;
  std::vector<int64_t> fixed(n), hold(n);
  for (int64_t p = 0; p < plans; ++p) {
    for (int64_t k = 0; k < samples; ++k) {
      fixed[p * samples + k] = p + 1 < plans ? p / static_cast<int64_t>(holds.size()) : 0;
      hold[p * samples + k] = p + 1 < plans ? holds[p % holds.size()] : 0;
    }
  }
  const auto fixed_t = torch::tensor(fixed, torch::kLong);
  const auto hold_t = torch::tensor(hold, torch::kLong);
  const double gamma = 1.0 - 1.0 / agent.config().horizon;
  auto deter = state.deter.repeat({n, 1});
  auto stoch = state.stoch.repeat({n, 1, 1});
  auto weight = torch::ones({n});
  auto score = torch::zeros({n});
  auto first = torch::zeros({n}, torch::kLong);
  for (int h = 0; h < horizon; ++h) {
    auto feat = dreamer::RssmImpl::Feat(deter, stoch);
    auto mode = ac->PolicyLogits(feat).argmax(-1).reshape({n});
    auto act = torch::where(hold_t > h, fixed_t, mode);
    if (h == 0) first = act;
    PriorStep(agent, act, &deter, &stoch);
    auto next = dreamer::RssmImpl::Feat(deter, stoch);
    score = score + weight * wm->RewardMean(next).reshape({n});
    weight = weight * wm->ContinueProb(next).reshape({n}) * (agent.config().contdisc ? 1.0 : gamma);
  }
  auto last = dreamer::RssmImpl::Feat(deter, stoch);
  score = score + weight * dreamer::TwoHotMean(ac->value()->forward(last),
                                               dreamer::TwoHotSpaceNamed(agent.config().twohot))
                               .reshape({n});
  auto per_plan = score.reshape({plans, samples}).mean(1);
  const int64_t best = per_plan.argmax().item<int64_t>();
  if (per_plan[best].item<double>() <= per_plan[plans - 1].item<double>() + margin) return -1;
  return static_cast<int>(first[best * samples].item<int64_t>());
}

// The board the world model expects one step after `state` when the agent takes `action`: the
// decoded grid of the prior (mean of 16 samples), each object where its channel is largest.
Board ImagineNextBoard(learner::DreamerAgent& agent, const dreamer::PolicyState& state,
                       int action) {
  torch::NoGradGuard no_grad;
  const int64_t samples = 16;
  auto deter = state.deter.repeat({samples, 1});
  auto stoch = state.stoch.repeat({samples, 1, 1});
  PriorStep(agent, action, &deter, &stoch);
  // Predict decodes into the observation's own space under either learner.vector_loss.
  auto grid = agent.world_model()
                  ->Predict(dreamer::RssmImpl::Feat(deter, stoch).unsqueeze(1),
                            /*decode_observations=*/true)
                  .vector.mean(std::vector<int64_t>{0, 1})
                  .reshape({10, 10, 4})
                  .contiguous();
  Board b;
  const float* g = grid.data_ptr<float>();
  float best[3] = {-1e9f, -1e9f, -1e9f};
  for (int y = 0; y < 10; ++y) {
    for (int x = 0; x < 10; ++x) {
      const float* c = g + (y * 10 + x) * 4;
      if (y == kRow && c[0] > best[0]) best[0] = c[0], b.paddle = x;
      if (c[1] > best[1]) best[1] = c[1], b.ball_x = x, b.ball_y = y;
      if (c[2] > best[2]) best[2] = c[2], b.trail_x = x, b.trail_y = y;
    }
  }
  return b;
}

// Open loop: from a posterior state while the ball falls, the world model imagines the next
// kOpenLoop boards under the actions the agent actually took (16 samples each, decoded one by one)
// and is scored against the real boards: how often each sample puts the ball, and the paddle, on
// exactly the right cell k steps ahead. The real paddle also follows MinAtar's sticky actions,
// which the model cannot know, so the paddle's score has a ceiling below 1.
constexpr int kOpenLoop = 5;
struct OpenLoopStats {
  int64_t starts = 0;
  double ball[kOpenLoop] = {}, paddle[kOpenLoop] = {};
  void Add(learner::DreamerAgent& agent, const dreamer::PolicyState& state,
           const std::vector<int>& agent_actions, const std::vector<Board>& truth) {
    torch::NoGradGuard no_grad;
    const int64_t samples = 16;
    auto deter = state.deter.repeat({samples, 1});
    auto stoch = state.stoch.repeat({samples, 1, 1});
    for (int k = 0; k < kOpenLoop; ++k) {
      PriorStep(agent, agent_actions[k], &deter, &stoch);
      const DecodedCells cells = Decoded(agent, dreamer::RssmImpl::Feat(deter, stoch));
      const Board& b = truth[k];
      ball[k] +=
          (cells.ball_cell == b.ball_y * 10 + b.ball_x).to(torch::kFloat).mean().item<double>();
      paddle[k] += (cells.paddle_x == b.paddle).to(torch::kFloat).mean().item<double>();
    }
    ++starts;
  }
  void Print() const {
    std::printf(
        "open loop from %lld posterior states while the ball falls, under the actions taken (16 "
        "samples; the real paddle also follows sticky actions): samples with the ball / the "
        "paddle on the right cell after 1..%d steps:\n  ball  ",
        static_cast<long long>(starts), kOpenLoop);
    for (int k = 0; k < kOpenLoop; ++k) std::printf(" %.3f", starts ? ball[k] / starts : 0.0);
    std::printf("\n  paddle");
    for (int k = 0; k < kOpenLoop; ++k) std::printf(" %.3f", starts ? paddle[k] / starts : 0.0);
    std::printf("\n");
  }
};

// The world model's continue probability at the deciding step of a real catch and of a real miss
// (the step the ball leaves the row above the paddle's), imagined from the posterior 3 steps
// earlier under the actions taken: what it should learn to tell apart.
struct DecidingStats {
  int64_t n[2] = {0, 0};  // caught, missed
  double cont[2] = {0, 0};
  void Add(learner::DreamerAgent& agent, const dreamer::PolicyState& state,
           const std::vector<int>& agent_actions, bool caught, double gamma) {
    torch::NoGradGuard no_grad;
    const int64_t samples = 16;
    auto deter = state.deter.repeat({samples, 1});
    auto stoch = state.stoch.repeat({samples, 1, 1});
    for (int a : agent_actions) PriorStep(agent, a, &deter, &stoch);
    auto c = agent.world_model()->ContinueProb(dreamer::RssmImpl::Feat(deter, stoch)) /
             (agent.config().contdisc ? gamma : 1.0);
    const int i = caught ? 0 : 1;
    ++n[i];
    cont[i] += c.mean().item<double>();
  }
  void Print() const {
    std::printf(
        "continue probability at the deciding step, imagined 3 steps ahead under the actions "
        "taken: real catches %.3f (%lld), real misses %.3f (%lld)\n",
        n[0] ? cont[0] / n[0] : 0.0, static_cast<long long>(n[0]), n[1] ? cont[1] / n[1] : 0.0,
        static_cast<long long>(n[1]));
  }
};

// The falls in a run's logged training play (item 8 of the header), per 20k env steps.
int ReplayFalls(const learner::ResolvedAgent& resolved, const dreamer::AgentConfig& agent_config,
                const std::string& dir) {
  constexpr int64_t kWindow = 20000;
  learner::ReplayLogLayout layout;
  layout.shape = dreamer::StepShapeOf(agent_config);
  layout.envs =
      static_cast<int>(resolved.config.actor.count * resolved.config.actor.envs_per_actor);
  if (agent_config.replay_context != 0) {
    layout.deter = agent_config.deter;
    layout.stoch = agent_config.stoch;
    layout.classes = agent_config.classes;
  }
  if (layout.shape.vector_size != 400) {
    std::cerr << "bench_breakout_probe: --replay-falls reads the symbolic view's 10x10x4 grid; "
                 "this run's steps hold "
              << layout.shape.vector_size << " floats\n";
    return 2;
  }
  struct EnvState {
    Board before;
    int fall_gap = -1;
    bool decided = false;
  };
  std::vector<EnvState> per_env(layout.envs);
  // [window][gap bucket 0-1, 2, 3, 4+][caught, missed]
  std::vector<std::array<std::array<int64_t, 2>, 4>> counts;
  int64_t steps = 0;
  auto add = [&](int env, const services::StepRecord& step, const float*, const float*) {
    const int64_t window = steps++ / kWindow;
    if (static_cast<int64_t>(counts.size()) <= window) counts.resize(window + 1);
    EnvState& e = per_env[env];
    if (step.is_first) e = EnvState{};
    const Board b = Decode(step.vector);
    if (step.is_terminal) {
      if (e.fall_gap >= 0) ++counts[window][GapBucket(e.fall_gap)][1];
      e = EnvState{};
      return;
    }
    if (b.complete() && b.dir() >= 2) {
      if (!e.before.complete() || e.before.dir() < 2) {
        e.fall_gap = std::abs(LandingColumn(b.ball_x, b.ball_y, b.dir()) - b.paddle);
        e.decided = false;
      }
      e.decided = e.decided || b.ball_y == kRow - 1;
    } else if (b.complete()) {
      if (e.fall_gap >= 0 && e.decided) ++counts[window][GapBucket(e.fall_gap)][0];
      e.fall_gap = -1;
    }
    e.before = b;
    if (step.is_last) e = EnvState{};
  };
  // Opening a log to read it back starts a new (empty) segment in it, so the probe reads a copy
  // and leaves the run's directory as it was.
  std::error_code error;
  if (!std::filesystem::is_directory(dir, error)) {
    std::cerr << "bench_breakout_probe: --replay-falls " << dir << " is not a directory\n";
    return 2;
  }
  std::string copy_template =
      (std::filesystem::temp_directory_path(error) / "breakout_probe_replay_XXXXXX").string();
  if (mkdtemp(copy_template.data()) == nullptr) {
    std::cerr << "bench_breakout_probe: cannot make a temporary directory " << copy_template
              << "\n";
    return 1;
  }
  const std::filesystem::path copy = copy_template;
  std::filesystem::copy(dir, copy, std::filesystem::copy_options::recursive, error);
  learner::ReplayLogResume resumed;
  absl::StatusOr<std::unique_ptr<learner::ReplayLog>> log =
      error ? absl::InternalError(
                  absl::StrCat("copying ", dir, " to ", copy.string(), ": ", error.message()))
            : learner::ReplayLog::Open(copy.string(), layout, std::numeric_limits<int64_t>::max(),
                                       true, add, &resumed);
  if (log.ok()) log->reset();  // closes the segment it started before the copy goes
  std::filesystem::remove_all(copy, error);
  if (!log.ok()) {
    std::cerr << "bench_breakout_probe: " << log.status() << "\n";
    return 1;
  }
  // The windows count the logged steps from the first one the log still holds (a run prunes
  // the segments its replay no longer needs).
  const int64_t first = std::max<int64_t>(resumed.first_env_step, 0);
  std::printf(
      "falls in the logged training play of %s (%lld steps from env step %lld, %lld envs; "
      "damaged stretches %lld), by the paddle's gap to the landing column as a fall begins: "
      "caught / all\n",
      dir.c_str(), static_cast<long long>(steps), static_cast<long long>(first),
      static_cast<long long>(layout.envs), static_cast<long long>(resumed.damaged));
  std::printf("%-16s %12s %12s %12s %12s %14s\n", "env steps", "gap 0-1", "gap 2", "gap 3",
              "gap 4+", "missed/falls");
  for (size_t w = 0; w < counts.size(); ++w) {
    int64_t falls = 0, missed = 0;
    std::string row;
    for (int g = 0; g < 4; ++g) {
      const int64_t all = counts[w][g][0] + counts[w][g][1];
      falls += all;
      missed += counts[w][g][1];
      row += absl::StrCat(
          " ",
          std::string(std::max<int>(
                          0, 12 - static_cast<int>(absl::StrCat(counts[w][g][0], "/", all).size())),
                      ' '),
          counts[w][g][0], "/", all);
    }
    std::printf("%6lldk-%6lldk %s %14.3f\n",
                static_cast<long long>((first + static_cast<int64_t>(w) * kWindow) / 1000),
                static_cast<long long>((first + static_cast<int64_t>(w + 1) * kWindow) / 1000),
                row.c_str(), falls ? static_cast<double>(missed) / falls : 0.0);
  }
  return 0;
}

int Main(int argc, char** argv) {
  int64_t episodes = 40, scripted_episodes = 200, seed = 5, trace_misses = 0;
  int64_t plan_samples = 0, plan_horizon = 12;
  double plan_margin = 0.0;
  bool greedy = true, scripted_only = false;
  services::CommandLine command_line(
      "bench_breakout_probe [--run RUN_DIR | --checkpoint DIR --config FILE] [flags]",
      "Why a trained MinAtar Breakout agent (symbolic view or pixels) scores what it scores: two "
      "scripted "
      "paddles' scores, the agent's moves against the ball's landing column, and what its world "
      "model imagines for staying still against moving there.");
  learner::AgentFlags agent_flags;
  agent_flags.Register(&command_line);
  command_line.AddInt("episodes", &episodes, "agent episodes to play");
  command_line.AddBool("greedy", &greedy, "the policy's most likely action (false: sample)");
  command_line.AddInt("seed", &seed, "seed of the episodes, sampling and scripted games");
  command_line.AddInt("scripted-episodes", &scripted_episodes, "episodes per scripted paddle");
  command_line.AddBool("scripted-only", &scripted_only, "only the scripted paddles (no agent)");
  command_line.AddInt("trace-misses", &trace_misses,
                      "print the last 10 boards and moves before each of the first N misses");
  command_line.AddInt("plan-samples", &plan_samples,
                      "plan every move with the agent's world model and critic: each action held "
                      "for 1, 2, 4 or 8 steps, then the policy's mode, this many imagined "
                      "rollouts per plan; the best plan's first move replaces the policy's when it "
                      "scores more than --plan-margin above the policy's own plan (0 = no "
                      "planning)");
  command_line.AddInt("plan-horizon", &plan_horizon, "imagined steps per plan");
  command_line.AddDouble("plan-margin", &plan_margin,
                         "how much more (imagined reward + value) a plan must score than the "
                         "policy's own to replace its move");
  std::string replay_falls;
  command_line.AddString("replay-falls", &replay_falls,
                         "instead of playing: count the falls in the training play logged in "
                         "this replay log directory (a bench_learning run's `replay`; read from a "
                         "temporary copy), by starting gap and outcome, per 20k "
                         "env steps");
  int exit_code = 0;
  if (!services::ParseCommandLineOrExit(command_line, argc, argv, &exit_code)) return exit_code;
  if (plan_samples < 0 || plan_samples > 256 || plan_horizon < 1 || plan_horizon > 64) {
    std::cerr << "bench_breakout_probe: need --plan-samples in [0, 256] and --plan-horizon in "
                 "[1, 64]\n";
    return 2;
  }
  if (episodes < 1 || scripted_episodes < 1 || seed < 0) {
    std::cerr << "bench_breakout_probe: need --episodes >= 1, --scripted-episodes >= 1 and "
                 "--seed >= 0\n";
    return 2;
  }
  Scripted(static_cast<int>(scripted_episodes), static_cast<uint64_t>(seed));
  if (scripted_only) return 0;

  std::optional<learner::ResolvedAgent> resolved =
      learner::ResolveAgentOrExit(command_line, agent_flags, "bench_breakout_probe", &exit_code);
  if (!resolved) return exit_code;
  if (resolved->config.env.name != "minatar_breakout") {
    std::cerr << "bench_breakout_probe: the agent was trained on env " << resolved->config.env.name
              << "; the probe reads the board of minatar_breakout\n";
    return 2;
  }
  // An agent that sees the grid has a grid decoder, so the probe can read the boards its world
  // model imagines. From pixels it cannot: the probe reads the true board from the game's state
  // and leaves out what needs an imagined board (the move plan's decoded cells, the traced
  // misses' imagined next board, the open-loop boards).
  const bool decodes = resolved->config.env.view == "symbolic";
  auto loaded = learner::LoadAgent(resolved->config, resolved->checkpoint_dir,
                                   static_cast<uint64_t>(seed), 1 << 22);
  if (!loaded.ok()) {
    std::cerr << "bench_breakout_probe: " << loaded.status() << "\n";
    return 1;
  }
  envs::VectorEnv& env = *loaded->envs;
  learner::DreamerAgent& agent = *loaded->agent;
  if (!replay_falls.empty()) return ReplayFalls(*resolved, agent.config(), replay_falls);
  auto* game = dynamic_cast<envs::MinAtarEnv*>(env.env(0));
  if (game == nullptr || game->num_channels() != 4) {
    std::cerr << "bench_breakout_probe: the env is not MinAtar Breakout's 4-channel game\n";
    return 1;
  }
  if (!decodes) {
    std::printf(
        "the agent sees pixels (env.view %s): boards read from the game's state; the move plan's "
        "decoded cells, the traced misses' imagined boards and the open-loop boards are left "
        "out\n",
        resolved->config.env.view.c_str());
  }
  const ActionMap map(env.spec().action_names);
  if (!map.ok(static_cast<size_t>(agent.config().num_actions))) {
    std::cerr << "bench_breakout_probe: the env's actions ("
              << absl::StrJoin(env.spec().action_names, ", ")
              << ") are not MinAtar's with noop, left and right\n";
    return 1;
  }
  dreamer::Policy policy = agent.policy();
  const double gamma = 1.0 - 1.0 / agent.config().horizon;
  torch::Generator generator = at::detail::createCPUGenerator(static_cast<uint64_t>(seed));
  if (auto s = env.Reset(); !s.ok()) {
    std::cerr << "bench_breakout_probe: " << s << "\n";
    return 1;
  }
  dreamer::PolicyState state = policy->Initial(1);
  std::vector<int> action;
  std::vector<int64_t> actions(agent.config().num_actions, 0);
  std::array<int64_t, 10> miss_distance{};
  int64_t falling = 0, agree = 0, steps = 0, probes = 0, done = 0, planned_moves = 0;
  double total = 0, episode_return = 0;
  double survive[2] = {0, 0}, value[2] = {0, 0}, survive_landing[2] = {0, 0};
  double paddle_placed = 0, ball_placed = 0;  // the move plan's, before the deciding step
  int64_t miss_kind[3] = {0, 0, 0};  // misses after moving away from / not towards / towards it
  // Per imagined step, the mean continue probability of the move plan, by the ball's row at the
  // probe (the catch is at step 9 - row).
  std::vector<std::vector<double>> row_continue(10, std::vector<double>(12, 0.0));
  std::vector<int64_t> row_probes(10, 0);
  Board before;
  // The last steps' boards and moves, printed for the first --trace-misses misses.
  struct Recent {
    Board board;
    int move;                    // MinAtarAction
    int agent_action;            // the agent's index
    dreamer::PolicyState state;  // the posterior after seeing `board`
    int wanted = -1;             // the landing-column paddle's move while the ball falls, else -1
    ActorView view;              // the actor and critic at this step (while the ball falls)
  };
  WantedStats falling_stats, miss_stats;
  std::array<WantedStats, 10> falling_by_row;  // by the falling ball's row: how early it commits
  // Columns between the paddle and the landing column on the first step of each fall: where the
  // paddle waits while the ball rises.
  std::array<int64_t, 10> start_distance{};
  // While the ball rises: the boards and moves of the current rise, tallied when the next fall
  // begins against the column that fall will land in (known then), so that the rise's moves
  // are judged by where the ball came down.
  std::vector<RiseStep> rise;
  RiseStats rise_stats;
  // Falls by the paddle's gap to the landing column as the fall begins, and how they ended
  // (caught: the ball rose again from the paddle; missed: the episode ended in it; a fall a
  // brick turned back counts as neither): whether the misses come from
  // where the paddle starts a fall or from what it does during it.
  int fall_gap = -1;  // the current fall's gap, -1 while the ball rises
  // Whether the current fall reached the row above the paddle's: a fall that a brick turned back
  // (a ball falling from the top through a gap in the wall) was never the paddle's to catch.
  bool fall_decided = false;
  std::array<std::array<int64_t, 2>, 10> fall_outcome{};  // [gap][caught, missed]
  // Every falling step by its fall's starting gap (0-1, 2, 3, 4+): where the agent cannot make
  // a catch, whether its policy, its critic or its model gives up.
  std::array<WantedStats, 4> falling_by_gap;
  // The plans' imagined survival by the gap at the probed state (2, 3, 4+).
  double plan_by_gap[3][2] = {{0, 0}, {0, 0}, {0, 0}};
  int64_t plan_by_gap_n[3] = {0, 0, 0};
  // This episode's posteriors, the agent's actions and the boards, for the open-loop scores.
  struct Step {
    dreamer::PolicyState state;
    int agent_action;
    Board board;
  };
  std::vector<Step> history;
  OpenLoopStats open_loop;
  DecidingStats deciding;
  // Deciding steps by outcome (caught, missed) and by how many columns the paddle moved in the 4
  // steps before (0, 1, 2 or more): what the agent's own play teaches about late movement.
  int64_t late_moves[2][3] = {{0, 0, 0}, {0, 0, 0}};
  std::deque<Recent> recent;
  int64_t traced = 0;
  int falling_wanted = -1;  // this step's entry of Recent
  ActorView falling_view;
  while (done < episodes) {
    const Board board = Decode(game->state().data());
    if (auto s = dreamer::ActOnEnvs(policy, env, &state, generator, &action, greedy); !s.ok()) {
      std::cerr << "bench_breakout_probe: " << s << "\n";
      return 1;
    }
    if (plan_samples > 0) {
      const int planned = PlanAction(agent, state, static_cast<int>(plan_samples),
                                     static_cast<int>(plan_horizon), plan_margin);
      if (planned >= 0 && planned != action[0]) {
        action[0] = planned;
        // The next posterior step follows the move taken.
        state.prev_action = torch::full_like(state.prev_action, planned);
        ++planned_moves;
      }
    }
    ++actions[action[0]];
    if (board.complete() && board.dir() >= 2) {
      const int target = LandingColumn(board.ball_x, board.ball_y, board.dir());
      const int wanted = MoveTowards(target, board.paddle);
      const int game_action = map.game[action[0]];
      const int moved =
          game_action == envs::kLeft || game_action == envs::kRight ? game_action : envs::kNoop;
      ++falling;
      agree += wanted == moved;
      const ActorView view = InspectActor(agent, map, state);
      falling_stats.Add(view, wanted, moved);
      falling_by_row[board.ball_y].Add(view, wanted, moved);
      if (!before.complete() || before.dir() < 2) {
        ++start_distance[std::abs(target - board.paddle)];
        fall_gap = std::abs(target - board.paddle);
        fall_decided = false;
        rise_stats.Add(rise, target, board.paddle);
        rise.clear();
      }
      falling_by_gap[GapBucket(fall_gap)].Add(view, wanted, moved);
      fall_decided = fall_decided || board.ball_y == kRow - 1;
      falling_view = view;
      falling_wanted = wanted;
      // The paddle moves before the ball in each step, so it has kRow - ball_y moves to be
      // under the ball's column at row kRow - 1 when the ball comes down to row kRow.
      if (board.ball_y <= 5 && std::abs(target - board.paddle) >= 2 &&
          std::abs(target - board.paddle) <= kRow - board.ball_y && probes < 300) {
        ++probes;
        for (int plan = 0; plan < 2; ++plan) {
          // Survival also until the step after the ball reaches the paddle's row: one catch, no
          // second fall.
          const PlanOutcome o = ImaginePlan(agent, map, state, board.paddle, target, plan == 1,
                                            gamma, 12, kRow - board.ball_y + 1, decodes,
                                            plan == 1 ? &row_continue[board.ball_y] : nullptr);
          if (plan == 1) {
            ++row_probes[board.ball_y];
            paddle_placed += o.paddle_placed;
            ball_placed += o.ball_placed;
          }
          survive[plan] += o.survival;
          const int gap_bucket = std::min(2, std::abs(target - board.paddle) - 2);
          plan_by_gap[gap_bucket][plan] += o.survival;
          plan_by_gap_n[gap_bucket] += plan;
          value[plan] += o.value;
          survive_landing[plan] += o.survival_at_landing;
        }
      }
    }
    // An episode's first board has its trail on the ball: not a rise.
    const bool at_start = board.trail_x == board.ball_x && board.trail_y == board.ball_y;
    if (board.complete() && board.dir() < 2 && !at_start) {
      rise.push_back({board, map.game[action[0]]});
      if (fall_gap >= 0 && fall_decided) ++fall_outcome[fall_gap][0];  // rose again: caught
      fall_gap = -1;
    }
    before = board;
    history.push_back(
        {{state.deter.clone(), state.stoch.clone(), state.prev_action.clone()}, action[0], board});
    recent.push_back({board, map.game[action[0]], action[0], {}, falling_wanted, falling_view});
    falling_wanted = -1;
    if (traced < trace_misses) {
      recent.back().state = {state.deter.clone(), state.stoch.clone(), state.prev_action.clone()};
    }
    if (recent.size() > 10) recent.pop_front();
    if (auto s = env.Step(action); !s.ok()) {
      std::cerr << "bench_breakout_probe: " << s << "\n";
      return 1;
    }
    ++steps;
    episode_return += env.reward()[0];
    if (env.is_last()[0] != 0) {
      if (before.complete()) ++miss_distance[std::min(9, std::abs(before.paddle - before.ball_x))];
      if (env.is_terminal()[0] != 0 && fall_gap >= 0) ++fall_outcome[fall_gap][1];
      fall_gap = -1;  // a fall the time limit cut off is neither
      if (env.is_terminal()[0] != 0) {
        // The net direction of the last three moves against the ball's side of the paddle.
        int net = 0;
        for (size_t i = recent.size() >= 3 ? recent.size() - 3 : 0; i < recent.size(); ++i) {
          const Board& b = recent[i].board;
          const int side = (b.ball_x > b.paddle) - (b.ball_x < b.paddle);
          net += side * ((recent[i].move == envs::kRight) - (recent[i].move == envs::kLeft));
        }
        ++miss_kind[net > 0 ? 2 : net < 0 ? 0 : 1];
        for (size_t i = recent.size() >= 4 ? recent.size() - 4 : 0; i < recent.size(); ++i) {
          if (recent[i].wanted >= 0)
            miss_stats.Add(recent[i].view, recent[i].wanted, recent[i].move);
        }
      }
      if (traced < trace_misses && env.is_terminal()[0] != 0 &&
          recent.back().state.deter.defined()) {
        ++traced;
        std::printf(
            "miss %lld (return %.0f), the last %zu steps as paddle ball(x,y) trail(x,y) move:\n",
            static_cast<long long>(traced), episode_return, recent.size());
        for (size_t i = 0; i < recent.size(); ++i) {
          const Board& b = recent[i].board;
          const int a = recent[i].move;
          std::printf("  paddle %d ball (%d,%d) trail (%d,%d) %-5s", b.paddle, b.ball_x, b.ball_y,
                      b.trail_x, b.trail_y,
                      a == envs::kLeft    ? "left"
                      : a == envs::kRight ? "right"
                                          : "stay");
          // The world model's one-step prediction of the next board from this posterior and move.
          const Board next =
              decodes ? ImagineNextBoard(agent, recent[i].state, recent[i].agent_action) : Board{};
          const ActorView view =
              recent[i].wanted >= 0 ? recent[i].view : InspectActor(agent, map, recent[i].state);
          if (decodes) {
            std::printf(" | imagined next: paddle %d ball (%d,%d)", next.paddle, next.ball_x,
                        next.ball_y);
          }
          std::printf(" | pi L/S/R %.2f/%.2f/%.2f v %.2f q-v L/S/R %+.2f/%+.2f/%+.2f\n", view.p[0],
                      view.p[1], view.p[2], view.value, view.q[0] - view.value,
                      view.q[1] - view.value, view.q[2] - view.value);
        }
      }
      for (size_t t = 0; decodes && t + kOpenLoop < history.size() && open_loop.starts < 300; ++t) {
        const Board& b = history[t].board;
        if (!b.complete() || b.dir() < 2) continue;
        std::vector<int> taken;
        std::vector<Board> truth;
        bool known = true;
        for (int k = 0; k < kOpenLoop; ++k) {
          taken.push_back(history[t + k].agent_action);
          truth.push_back(history[t + k + 1].board);
          known = known && truth.back().complete();
        }
        if (known) open_loop.Add(agent, history[t].state, taken, truth);
      }
      const bool ended_terminal = env.is_terminal()[0] != 0;
      for (size_t c = 2; c < history.size(); ++c) {
        const Board& b = history[c].board;
        if (!b.complete() || b.ball_y != kRow - 1 || b.dir() < 2) continue;
        const bool last = c + 1 == history.size();
        if (last && !ended_terminal) continue;  // cut off by the time limit, not decided
        if (c >= 4 && history[c - 4].board.complete()) {
          ++late_moves[last ? 1 : 0][std::min(2, std::abs(history[c - 4].board.paddle - b.paddle))];
        }
        if (deciding.n[last ? 1 : 0] >= 300) continue;
        deciding.Add(
            agent, history[c - 2].state,
            {history[c - 2].agent_action, history[c - 1].agent_action, history[c].agent_action},
            !last, gamma);
      }
      history.clear();
      recent.clear();
      before = Board{};  // the next episode's first falling step begins a fall
      rise.clear();      // a rise the episode ended in has no landing column
      total += episode_return;
      episode_return = 0;
      ++done;
      state = policy->Initial(1);
      if (auto s = env.Step(std::vector<int>(1, map.agent[envs::kNoop])); !s.ok()) {  // auto-reset
        std::cerr << "bench_breakout_probe: " << s << "\n";
        return 1;
      }
    }
  }
  std::printf("agent (%s, %s): mean return %.2f over %lld episodes, %lld steps\n",
              resolved->checkpoint_dir.c_str(), greedy ? "greedy" : "sampled", total / done,
              static_cast<long long>(done), static_cast<long long>(steps));
  if (plan_samples > 0) {
    std::printf(
        "planned with the world model (%lld rollouts per plan, %lld steps, margin %.3f): the plan "
        "replaced the policy's move in %lld of %lld steps (%.1f%%)\n",
        static_cast<long long>(plan_samples), static_cast<long long>(plan_horizon), plan_margin,
        static_cast<long long>(planned_moves), static_cast<long long>(steps),
        100.0 * planned_moves / std::max<int64_t>(steps, 1));
  }
  std::printf(
      "while the ball falls, its move is the landing-column paddle's in %.1f%% of %lld "
      "steps\n",
      100.0 * agree / std::max<int64_t>(falling, 1), static_cast<long long>(falling));
  std::printf("paddle-to-landing-column columns when the ball starts to fall:");
  for (int d = 0; d < 10; ++d) {
    std::printf(" %d:%lld", d, static_cast<long long>(start_distance[d]));
  }
  std::printf("\nfalls by that gap, caught / missed (share missed):");
  for (int d = 0; d < 10; ++d) {
    const int64_t all = fall_outcome[d][0] + fall_outcome[d][1];
    if (all == 0) continue;
    std::printf(" %d: %lld/%lld (%.2f)", d, static_cast<long long>(fall_outcome[d][0]),
                static_cast<long long>(fall_outcome[d][1]),
                static_cast<double>(fall_outcome[d][1]) / all);
  }
  std::printf("\npaddle-to-ball columns on the last step before each miss:");
  for (int d = 0; d < 10; ++d) std::printf(" %d:%lld", d, static_cast<long long>(miss_distance[d]));
  std::printf(
      "\nmisses by the net direction of the last 3 moves: away from the ball %lld, none %lld, "
      "towards it %lld",
      static_cast<long long>(miss_kind[0]), static_cast<long long>(miss_kind[1]),
      static_cast<long long>(miss_kind[2]));
  std::printf(
      "\nthe actor and critic against the landing-column paddle's move (\"wanted\"; one-step "
      "lookahead: reward + continue x value after each move):\n");
  rise_stats.Print();
  falling_stats.Print("every step while the ball falls:");
  for (int y = 0; y < 10; ++y) {
    const std::string what = absl::StrCat("  with the ball on row ", y, " (paddle's row 9):");
    falling_by_row[y].Print(what.c_str());
  }
  miss_stats.Print("the last 4 steps before each miss (falling):");
  const char* gap_names[4] = {
      "  falls starting 0-1 columns away:", "  falls starting 2 columns away:",
      "  falls starting 3 columns away:", "  falls starting 4+ columns away:"};
  for (int g = 0; g < 4; ++g) falling_by_gap[g].Print(gap_names[g]);
  if (decodes) open_loop.Print();
  deciding.Print();
  {
    auto miss_share = [&](int moved) {
      const int64_t all = late_moves[0][moved] + late_moves[1][moved];
      return all ? static_cast<double>(late_moves[1][moved]) / all : 0.0;
    };
    std::printf("deciding steps by the columns the paddle moved in the 4 steps before:");
    for (int moved = 0; moved < 3; ++moved) {
      std::printf(" %s%d: %lld caught / %lld missed (%.2f missed)%s", moved == 2 ? ">=" : "", moved,
                  static_cast<long long>(late_moves[0][moved]),
                  static_cast<long long>(late_moves[1][moved]), miss_share(moved),
                  moved < 2 ? "," : "\n");
    }
  }
  std::printf("actions taken:");
  for (size_t a = 0; a < actions.size(); ++a) {
    std::printf(" %s %lld", env.spec().action_names[a].c_str(), static_cast<long long>(actions[a]));
  }
  std::printf(
      "\nimagined from %lld posterior states with the falling ball landing >= 2 columns "
      "away, 12 steps x 16 samples:\n",
      static_cast<long long>(probes));
  if (probes > 0) {
    for (int plan = 0; plan < 2; ++plan) {
      std::printf(
          "  %-28s survival %.3f, imagined reward + value %.3f; survival until the step after "
          "the ball reaches the paddle's row %.3f\n",
          plan == 0 ? "stay still:" : "move to the landing column:", survive[plan] / probes,
          value[plan] / probes, survive_landing[plan] / probes);
    }
    std::printf("  survival staying / moving, by the gap at the probed state:");
    for (int g = 0; g < 3; ++g) {
      if (plan_by_gap_n[g] == 0) continue;
      std::printf(" %s%d: %.3f / %.3f (%lld)", g == 2 ? ">=" : "", g + 2,
                  plan_by_gap[g][0] / plan_by_gap_n[g], plan_by_gap[g][1] / plan_by_gap_n[g],
                  static_cast<long long>(plan_by_gap_n[g]));
    }
    std::printf("\n");
    if (decodes) {
      std::printf(
          "  move plan, the step before the deciding one (ball one row above the paddle's): "
          "samples with the paddle where the plan put it %.3f, with the ball on the landing cell "
          "%.3f\n",
          paddle_placed / probes, ball_placed / probes);
    }
    std::printf("  move plan, mean continue probability per imagined step, by the ball's row:\n");
    for (int y = 0; y < 10; ++y) {
      if (row_probes[y] == 0) continue;
      std::printf("    row %d (%lld probes, catch at step %d):", y,
                  static_cast<long long>(row_probes[y]), 9 - y);
      for (double c : row_continue[y]) std::printf(" %.2f", c / row_probes[y]);
      std::printf("\n");
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  dreamfleet::services::EnsureThreadEnvironment(argc, argv);
  return Main(argc, argv);
}
