// bench_grid_scripted: what finding the goal asks of an agent on the gridworlds. Plays the
// scripted policies of bench/grid_scripted.h (random, random+seek, wander, wander+seek, map+seek),
// which see only what the agent sees (MiniGrid's 7x7 egocentric view), and prints their success
// rates as a Markdown table. The gap between random and random+seek is what an agent gains from
// walking to the goal once it sees it; map+seek is what exploring with a map adds. With --run, a
// trained agent (sampled and greedy) plays the same episodes beside them, so its row says which of
// the two it learned. `--help` lists the flags.
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bench/grid_scripted.h"
#include "services/command_line.h"

#ifdef DREAMFLEET_GRID_AGENT
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <utility>

#include "dreamer/policy.h"
#include "envs/env_config.h"
#include "learner/agent_source.h"
#include "services/status_macros.h"
#endif

namespace dreamfleet::bench {
namespace {

struct Flags {
  std::string envs = "grid_fourrooms";
  int64_t episodes = 2000;
  int64_t seed = 1;
  double turn = 0.2;
};

void PrintRow(const std::string& env, const std::string& player, int64_t episodes,
              const GridPlayResult& result) {
  const double n = static_cast<double>(episodes);
  std::printf(
      "| %s | %s | %lld | %.3f | %.3f | %.1f | %.3f | %.3f | %.3f |\n", env.c_str(), player.c_str(),
      static_cast<long long>(episodes), result.successes / n, result.return_sum / n,
      result.successes > 0 ? static_cast<double>(result.success_steps) / result.successes : 0.0,
      static_cast<double>(result.goal_in_view_steps) / static_cast<double>(result.steps),
      result.goal_seen_episodes / n,
      result.goal_seen_episodes > 0
          ? static_cast<double>(result.successes) / static_cast<double>(result.goal_seen_episodes)
          : 0.0);
  std::fflush(stdout);
}

#ifdef DREAMFLEET_GRID_AGENT
// A trained agent as a GridPlayer: its policy steps on each observation, its recurrent state
// carried through the episode; a progress line every 30 s on stderr (thousands of episodes take
// minutes).
class AgentPlayer : public GridPlayer {
 public:
  AgentPlayer(dreamer::Policy policy, const envs::EnvSpec& spec, bool greedy, uint64_t seed,
              int64_t episodes, std::string label)
      : policy_(std::move(policy)),
        spec_(spec),
        greedy_(greedy),
        generator_(at::detail::createCPUGenerator(seed)),
        episodes_(episodes),
        label_(std::move(label)),
        last_progress_(std::chrono::steady_clock::now()) {}

  void NewEpisode() override {
    state_ = dreamer::PolicyState{};  // a fresh one at the episode's first step (Choose)
    if (std::chrono::steady_clock::now() - last_progress_ > std::chrono::seconds(30)) {
      std::cerr << "bench_grid_scripted: " << label_ << ": episode " << played_ << "/" << episodes_
                << "\n";
      last_progress_ = std::chrono::steady_clock::now();
    }
    ++played_;
  }

  absl::Status Choose(const std::vector<float>& obs, int* action) override {
    if (static_cast<int64_t>(obs.size()) != spec_.vector_size) {
      return absl::InvalidArgumentError(absl::StrCat("the agent reads ", spec_.vector_size,
                                                     " entries, the view has ", obs.size()));
    }
    // The episode's first step starts from a fresh state (NewEpisode cleared it).
    const uint8_t first = state_.deter.defined() ? 0 : 1;
    if (first != 0) state_ = policy_->Initial(1);
    // learner::LoadAgent builds the agent on the CPU, where this generator drives its sampling.
    std::vector<int> chosen;
    RETURN_IF_ERROR(dreamer::ActOnObservations(policy_, spec_, 1, nullptr, obs.data(), nullptr,
                                               &first, &state_, generator_, &chosen, greedy_));
    *action = chosen[0];
    return absl::OkStatus();
  }

 private:
  dreamer::Policy policy_;
  envs::EnvSpec spec_;
  bool greedy_;
  torch::Generator generator_;
  dreamer::PolicyState state_;  // undefined until the episode's first step
  int64_t episodes_;
  int64_t played_ = 0;
  std::string label_;
  std::chrono::steady_clock::time_point last_progress_;
};

struct GridAgent {
  envs::EnvOptions options;
  learner::LoadedAgent loaded;
  std::string checkpoint_dir;
};

// The agent --run or --checkpoint names, checked to have been trained on one of `names` through
// the egocentric view; nullopt (with the message printed and *exit_code set) otherwise.
std::optional<GridAgent> LoadGridAgent(const services::CommandLine& command_line,
                                       const learner::AgentFlags& agent_flags,
                                       const std::vector<std::string>& names, const Flags& flags,
                                       int* exit_code) {
  std::optional<learner::ResolvedAgent> resolved =
      learner::ResolveAgentOrExit(command_line, agent_flags, "bench_grid_scripted", exit_code);
  if (!resolved) return std::nullopt;
  GridAgent agent;
  agent.options = envs::EnvOptionsFromConfig(resolved->config, 0);
  agent.checkpoint_dir = resolved->checkpoint_dir;
  *exit_code = 2;
  if (std::find(names.begin(), names.end(), agent.options.name) == names.end()) {
    std::cerr << "bench_grid_scripted: the agent was trained on " << agent.options.name
              << ", which --envs does not name (--envs " << flags.envs << ")\n";
    return std::nullopt;
  }
  if (agent.options.max_episode_steps != 0) {
    std::cerr << "bench_grid_scripted: the agent's env.max_episode_steps is "
              << agent.options.max_episode_steps
              << "; the scripted policies play the env's own time limit (0)\n";
    return std::nullopt;
  }
  if (agent.options.view != "symbolic_egocentric") {
    std::cerr << "bench_grid_scripted: the agent sees " << agent.options.name << " with env.view "
              << agent.options.view << "; the scripted policies see symbolic_egocentric\n";
    return std::nullopt;
  }
  auto loaded = learner::LoadAgent(resolved->config, resolved->checkpoint_dir,
                                   static_cast<uint64_t>(flags.seed), 1 << 22);
  if (!loaded.ok()) {
    std::cerr << "bench_grid_scripted: " << loaded.status() << "\n";
    *exit_code = 1;
    return std::nullopt;
  }
  agent.loaded = std::move(*loaded);
  *exit_code = 0;
  return agent;
}

// The agent's rows, sampled then greedy, on the episodes the scripted policies played. Returns
// the exit code.
int PlayAgent(GridAgent& agent, const Flags& flags) {
  torch::manual_seed(static_cast<uint64_t>(flags.seed));
  for (bool greedy : {false, true}) {
    const std::string label =
        absl::StrCat("agent, ", greedy ? "greedy" : "sampled", " (", agent.checkpoint_dir, ")");
    AgentPlayer player(agent.loaded.agent->policy(), agent.loaded.envs->spec(), greedy,
                       static_cast<uint64_t>(flags.seed), flags.episodes, label);
    GridPlayResult result;
    if (auto s = PlayGrid(agent.options, flags.episodes, static_cast<uint64_t>(flags.seed), &player,
                          &result);
        !s.ok()) {
      std::cerr << "bench_grid_scripted: " << s << "\n";
      return 1;
    }
    PrintRow(agent.options.name, label, flags.episodes, result);
  }
  return 0;
}
#endif

int Main(int argc, char** argv) {
  Flags flags;
  services::CommandLine command_line(
      "bench_grid_scripted [flags]",
      "Plays scripted policies on gridworlds through MiniGrid's 7x7 egocentric view (random, "
      "random+seek: walks to the goal once it is in view, wander: forward until a wall with "
      "random turns, wander+seek, map+seek: explores with a map of what it has seen) and prints "
      "their success rates as a Markdown table: what "
      "seeing the goal and exploring are each worth on the task."
#ifdef DREAMFLEET_GRID_AGENT
      " With --run (or --checkpoint and --config), a trained agent plays the same episodes, "
      "sampled and greedy, in rows of its own."
#endif
  );
#ifdef DREAMFLEET_GRID_AGENT
  learner::AgentFlags agent_flags;
  agent_flags.Register(&command_line);
#endif
  command_line.AddString("envs", &flags.envs,
                         "comma-separated gridworld names without keys or doors (grid_fourrooms, "
                         "grid_empty_*)");
  command_line.AddInt("episodes", &flags.episodes, "episodes per policy and env");
  command_line.AddInt("seed", &flags.seed, "seed of the episodes' layouts and the policies");
  command_line.AddDouble("turn", &flags.turn,
                         "wander: chance of a random turn on an open cell, in [0, 1]");
  int exit_code = 0;
  if (!services::ParseCommandLineOrExit(command_line, argc, argv, &exit_code)) return exit_code;
  if (flags.episodes <= 0 || flags.turn < 0 || flags.turn > 1) {
    std::cerr << "--episodes must be > 0 and --turn in [0, 1]\n";
    return 2;
  }
  const std::vector<std::string> names = absl::StrSplit(flags.envs, ',', absl::SkipEmpty());
  if (names.empty()) {
    std::cerr << "--envs names no env\n";
    return 2;
  }
#ifdef DREAMFLEET_GRID_AGENT
  std::optional<GridAgent> agent;
  if (!agent_flags.run_dir.empty() || !agent_flags.checkpoint_dir.empty() || agent_flags.best ||
      !command_line.config_path().empty() || !command_line.overrides().empty()) {
    agent = LoadGridAgent(command_line, agent_flags, names, flags, &exit_code);
    if (!agent) return exit_code;
  }
#endif
  std::printf(
      "| env | policy | episodes | success | mean return | steps to the goal (successes) "
      "| steps with the goal in view | episodes that saw the goal | reached, of those |\n"
      "|---|---|---:|---:|---:|---:|---:|---:|---:|\n");
  for (const std::string& name : names) {
    for (const NamedGridPolicy& p : GridPolicies()) {
      GridPlayResult result;
      if (auto s = PlayGridPolicy(name, p.policy, flags.episodes, static_cast<uint64_t>(flags.seed),
                                  flags.turn, &result);
          !s.ok()) {
        std::cerr << "bench_grid_scripted: " << s << "\n";
        return 1;
      }
      PrintRow(name, p.name, flags.episodes, result);
    }
  }
#ifdef DREAMFLEET_GRID_AGENT
  if (agent) return PlayAgent(*agent, flags);
#endif
  return 0;
}

}  // namespace
}  // namespace dreamfleet::bench

int main(int argc, char** argv) { return dreamfleet::bench::Main(argc, argv); }
