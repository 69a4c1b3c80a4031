// bench_breakout_probe: why a trained MinAtar Breakout agent scores what it scores.
//
//   bench_breakout_probe --run runs/bench_learning/minatar_breakout/seed0 [--episodes=40]
//                        [--greedy=false] [--seed=5] [--scripted-episodes=200]
//   bench_breakout_probe --scripted-only
//
// 1. Two scripted paddles on the same game with the same sticky actions (0.1): one that follows
//    the ball's column, one that moves to the column where the falling ball will reach the
//    paddle's row. They say what simple control scores, as levels for the learning curves.
// 2. The agent plays --episodes episodes (symbolic view). While the ball falls, each move is
//    compared with the landing-column paddle's move; at each miss, the distance from paddle to
//    ball is counted; the action histogram is printed.
// 3. From the agent's own posterior states where the falling ball will land two or more columns
//    away from the paddle, the world model imagines 12 steps of two fixed plans, 16 samples
//    each: stay still, or move to the landing column. It prints the imagined survival (product
//    of continue probabilities) and imagined reward plus the critic's value at the end. A model
//    that separates the plans while the policy does not move says the actor-critic is the limit,
//    not the world model.
#include <torch/torch.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "dreamer/actor_critic.h"
#include "dreamer/distributions.h"
#include "dreamer/policy.h"
#include "dreamer/world_model.h"
#include "envs/minatar_breakout.h"
#include "envs/rng.h"
#include "learner/agent_source.h"
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

Board Decode(const float* grid) {  // [10, 10, 4]: paddle, ball, trail, brick
  Board b;
  for (int y = 0; y < 10; ++y) {
    for (int x = 0; x < 10; ++x) {
      const float* c = grid + (y * 10 + x) * 4;
      if (c[0] > 0.5f) b.paddle = x;
      if (c[1] > 0.5f) b.ball_x = x, b.ball_y = y;
      if (c[2] > 0.5f) b.trail_x = x, b.trail_y = y;
    }
  }
  return b;
}

// Imagined survival and reward + value of a fixed plan from one posterior state.
std::pair<double, double> ImaginePlan(learner::DreamerAgent& agent,
                                      const dreamer::PolicyState& state, int paddle, int target,
                                      bool move, double gamma) {
  torch::NoGradGuard no_grad;
  auto wm = agent.world_model();
  auto rssm = wm->rssm();
  const int64_t samples = 16, actions = agent.config().num_actions;
  auto deter = state.deter.repeat({samples, 1});
  auto stoch = state.stoch.repeat({samples, 1, 1});
  auto alive = torch::ones({samples});
  double reward = 0;
  for (int h = 0; h < 12; ++h) {
    int action = envs::kNoop;
    if (move) {
      action = MoveTowards(target, paddle);
      paddle += action == envs::kLeft ? -1 : action == envs::kRight ? 1 : 0;
    }
    auto onehot =
        torch::one_hot(torch::full({samples}, action, torch::kLong), actions).to(torch::kFloat);
    deter = rssm->Core(deter, stoch, onehot);
    stoch = rssm->Sample(rssm->PriorLogit(deter), std::nullopt);
    auto feat = dreamer::RssmImpl::Feat(deter, stoch);
    reward += (alive * wm->RewardMean(feat)).mean().item<double>();
    // With contdisc the continue probability includes the discount: take it out.
    alive = alive * wm->ContinueProb(feat) / (agent.config().contdisc ? gamma : 1.0);
  }
  auto feat = dreamer::RssmImpl::Feat(deter, stoch);
  auto value = dreamer::TwoHotMean(agent.actor_critic()->value()->forward(feat),
                                   dreamer::TwoHotSpaceNamed(agent.config().twohot));
  return {alive.mean().item<double>(), reward + (alive * value).mean().item<double>()};
}

int Main(int argc, char** argv) {
  int64_t episodes = 40, scripted_episodes = 200, seed = 5;
  bool greedy = true, scripted_only = false;
  services::CommandLine command_line(
      "bench_breakout_probe [--run RUN_DIR | --checkpoint DIR --config FILE] [flags]",
      "Why a trained MinAtar Breakout agent (symbolic view) scores what it scores: two scripted "
      "paddles' scores, the agent's moves against the ball's landing column, and what its world "
      "model imagines for staying still against moving there.");
  learner::AgentFlags agent_flags;
  agent_flags.Register(&command_line);
  command_line.AddInt("episodes", &episodes, "agent episodes to play");
  command_line.AddBool("greedy", &greedy, "the policy's most likely action (false: sample)");
  command_line.AddInt("seed", &seed, "seed of the episodes, sampling and scripted games");
  command_line.AddInt("scripted-episodes", &scripted_episodes, "episodes per scripted paddle");
  command_line.AddBool("scripted-only", &scripted_only, "only the scripted paddles (no agent)");
  int exit_code = 0;
  if (!services::ParseCommandLineOrExit(command_line, argc, argv, &exit_code)) return exit_code;
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
  if (resolved->config.env.name != "minatar_breakout" || resolved->config.env.view != "symbolic") {
    std::cerr << "bench_breakout_probe: the agent was trained on env " << resolved->config.env.name
              << " with view " << resolved->config.env.view
              << "; the probe reads the board of minatar_breakout with view symbolic\n";
    return 2;
  }
  auto loaded = learner::LoadAgent(resolved->config, resolved->checkpoint_dir,
                                   static_cast<uint64_t>(seed), 1 << 22);
  if (!loaded.ok()) {
    std::cerr << "bench_breakout_probe: " << loaded.status() << "\n";
    return 1;
  }
  envs::VectorEnv& env = *loaded->envs;
  learner::DreamerAgent& agent = *loaded->agent;
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
  int64_t falling = 0, agree = 0, steps = 0, probes = 0, done = 0;
  double total = 0, episode_return = 0;
  double survive[2] = {0, 0}, value[2] = {0, 0};
  Board before;
  while (done < episodes) {
    const Board board = Decode(env.vector());
    if (auto s = dreamer::ActOnEnvs(policy, env, &state, generator, &action, greedy); !s.ok()) {
      std::cerr << "bench_breakout_probe: " << s << "\n";
      return 1;
    }
    ++actions[action[0]];
    if (board.complete() && board.dir() >= 2) {
      const int target = LandingColumn(board.ball_x, board.ball_y, board.dir());
      const int wanted = MoveTowards(target, board.paddle);
      const int moved =
          action[0] == envs::kLeft || action[0] == envs::kRight ? action[0] : envs::kNoop;
      ++falling;
      agree += wanted == moved;
      if (board.ball_y <= 5 && std::abs(target - board.paddle) >= 2 && probes < 300) {
        ++probes;
        for (int plan = 0; plan < 2; ++plan) {
          auto [alive, v] = ImaginePlan(agent, state, board.paddle, target, plan == 1, gamma);
          survive[plan] += alive;
          value[plan] += v;
        }
      }
    }
    before = board;
    if (auto s = env.Step(action); !s.ok()) {
      std::cerr << "bench_breakout_probe: " << s << "\n";
      return 1;
    }
    ++steps;
    episode_return += env.reward()[0];
    if (env.is_last()[0] != 0) {
      if (before.complete()) ++miss_distance[std::min(9, std::abs(before.paddle - before.ball_x))];
      total += episode_return;
      episode_return = 0;
      ++done;
      state = policy->Initial(1);
      if (auto s = env.Step(std::vector<int>(1, envs::kNoop)); !s.ok()) {  // the auto-reset
        std::cerr << "bench_breakout_probe: " << s << "\n";
        return 1;
      }
    }
  }
  std::printf("agent (%s, %s): mean return %.2f over %lld episodes, %lld steps\n",
              resolved->checkpoint_dir.c_str(), greedy ? "greedy" : "sampled", total / done,
              static_cast<long long>(done), static_cast<long long>(steps));
  std::printf(
      "while the ball falls, its move is the landing-column paddle's in %.1f%% of %lld "
      "steps\n",
      100.0 * agree / std::max<int64_t>(falling, 1), static_cast<long long>(falling));
  std::printf("paddle-to-ball columns on the last step before each miss:");
  for (int d = 0; d < 10; ++d) std::printf(" %d:%lld", d, static_cast<long long>(miss_distance[d]));
  std::printf("\nactions taken (noop, left, up, right, down, fire):");
  for (int64_t n : actions) std::printf(" %lld", static_cast<long long>(n));
  std::printf(
      "\nimagined from %lld posterior states with the falling ball landing >= 2 columns "
      "away, 12 steps x 16 samples:\n",
      static_cast<long long>(probes));
  if (probes > 0) {
    for (int plan = 0; plan < 2; ++plan) {
      std::printf("  %-28s survival %.3f, imagined reward + value %.3f\n",
                  plan == 0 ? "stay still:" : "move to the landing column:", survive[plan] / probes,
                  value[plan] / probes);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  dreamfleet::services::EnsureThreadEnvironment(argc, argv);
  return Main(argc, argv);
}
