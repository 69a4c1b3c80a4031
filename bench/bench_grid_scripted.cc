// bench_grid_scripted: what finding the goal asks of an agent on the gridworlds. Plays the
// scripted policies of bench/grid_scripted.h (random, random+seek, wander, wander+seek, map+seek),
// which see only what the agent sees (MiniGrid's 7x7 egocentric view), and prints their success
// rates as a Markdown table. The gap between random and random+seek is what an agent gains from
// walking to the goal once it sees it; map+seek is what exploring with a map adds. `--help` lists
// the flags.
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "bench/grid_scripted.h"
#include "services/command_line.h"

namespace dreamfleet::bench {
namespace {

struct Flags {
  std::string envs = "grid_fourrooms";
  int64_t episodes = 2000;
  int64_t seed = 1;
  double turn = 0.2;
};

int Main(int argc, char** argv) {
  Flags flags;
  services::CommandLine command_line(
      "bench_grid_scripted [flags]",
      "Plays scripted policies on gridworlds through MiniGrid's 7x7 egocentric view (random, "
      "random+seek: walks to the goal once it is in view, wander: forward until a wall with "
      "random turns, wander+seek, map+seek: explores with a map of what it has seen) and prints "
      "their success rates as a Markdown table: what "
      "seeing the goal and exploring are each worth on the task.");
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
  std::printf(
      "| env | policy | episodes | success | mean return | steps to the goal (successes) "
      "| steps with the goal in view |\n|---|---|---:|---:|---:|---:|---:|\n");
  for (const std::string& name : names) {
    for (const NamedGridPolicy& p : GridPolicies()) {
      GridPlayResult result;
      if (auto s = PlayGridPolicy(name, p.policy, flags.episodes, static_cast<uint64_t>(flags.seed),
                                  flags.turn, &result);
          !s.ok()) {
        std::cerr << "bench_grid_scripted: " << s << "\n";
        return 1;
      }
      const double n = static_cast<double>(flags.episodes);
      std::printf(
          "| %s | %s | %lld | %.3f | %.3f | %.1f | %.3f |\n", name.c_str(), p.name,
          static_cast<long long>(flags.episodes), result.successes / n, result.return_sum / n,
          result.successes > 0 ? static_cast<double>(result.success_steps) / result.successes : 0.0,
          static_cast<double>(result.goal_in_view_steps) / static_cast<double>(result.steps));
      std::fflush(stdout);
    }
  }
  return 0;
}

}  // namespace
}  // namespace dreamfleet::bench

int main(int argc, char** argv) { return dreamfleet::bench::Main(argc, argv); }
