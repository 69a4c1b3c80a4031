// dreamfleet-report (also `dreamfleet report`): reports on what a trained agent learned.
//   openloop: the world model's open-loop predictions beside the truth, as a GIF and a PNG strip.
//   foresight: whether the world model sees an episode's end and a reward coming, by lead.
#include <algorithm>
#include <cstdio>
#include <iostream>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "learner/agent_source.h"
#include "learner/foresight.h"
#include "learner/openloop_files.h"
#include "services/command_line.h"
#include "services/config.h"
#include "services/thread_env.h"

namespace {

using namespace dreamfleet;

int OpenLoopMain(int argc, char** argv) {
  std::string gif_path, png_path;
  learner::OpenLoopOptions o;
  int64_t seed = 1, frame_ms = 150;
  services::CommandLine command_line(
      "dreamfleet report openloop [--run RUN_DIR | --checkpoint DIR --config FILE] [flags]",
      "What the world model imagines beside what happened (DreamerV3's open-loop report). The "
      "agent plays --sequences windows of --length steps in a fresh env, each from an episode "
      "start; the world model observes the first --context steps of each and imagines the rest "
      "from the actions taken. Writes an animated GIF (one frame per step; per window: true | "
      "predicted | difference, a white bar while the model still observes) and a PNG strip "
      "(three rows per window, one column per step), and prints the prediction error. --run "
      "takes a run directory with a config.yaml (a bench_learning seed directory or a "
      "dreamfleet up run.dir).");
  learner::AgentFlags agent;
  agent.Register(&command_line);
  command_line.AddInt("sequences", &o.sequences, "windows, one row each (1 to 64)");
  command_line.AddInt("length", &o.length, "steps per window (at most 1000)");
  command_line.AddInt("context", &o.context, "steps the model observes before it imagines");
  command_line.AddBool("greedy", &o.greedy,
                       "play the windows with the policy's most likely action (default: sample)");
  command_line.AddInt("seed", &seed,
                      "seed of the episodes, of sampling and of the model's latents");
  command_line.AddInt("frame-ms", &frame_ms, "milliseconds each GIF frame shows (10 to 1000)");
  command_line.AddString("gif", &gif_path,
                         "GIF to write (\"\" = <run>/openloop.gif, else openloop.gif)");
  command_line.AddString("png", &png_path, "PNG strip to write (\"\" = beside the GIF, .png)");
  int exit_code = 0;
  if (!services::ParseCommandLineOrExit(command_line, argc, argv, &exit_code)) return exit_code;
  if (frame_ms < 10 || frame_ms > 1000 || seed < 0) {
    std::cerr << "dreamfleet report openloop: need --frame-ms from 10 to 1000 and --seed >= 0\n";
    return 2;
  }
  o.seed = static_cast<uint64_t>(seed);
  std::optional<learner::ResolvedAgent> resolved =
      learner::ResolveAgentOrExit(command_line, agent, "dreamfleet report openloop", &exit_code);
  if (!resolved) return exit_code;
  const services::Config* config = &resolved->config;
  o.checkpoint_dir = resolved->checkpoint_dir;
  if (gif_path.empty()) {
    gif_path = agent.run_dir.empty() ? "openloop.gif" : agent.run_dir + "/openloop.gif";
  }
  if (png_path.empty()) {
    png_path = gif_path.size() > 4 && gif_path.substr(gif_path.size() - 4) == ".gif"
                   ? gif_path.substr(0, gif_path.size() - 4) + ".png"
                   : gif_path + ".png";
  }
  std::printf("open loop of %s with %s: %lld windows of %lld steps, %lld observed\n",
              config->env.name.c_str(), o.checkpoint_dir.c_str(),
              static_cast<long long>(o.sequences), static_cast<long long>(o.length),
              static_cast<long long>(o.context));
  std::fflush(stdout);
  absl::StatusOr<learner::OpenLoopReport> report = learner::OpenLoop(*config, o);
  if (!report.ok()) {
    std::cerr << "dreamfleet report openloop: " << report.status() << "\n";
    return absl::IsInvalidArgument(report.status()) ? 2 : 1;
  }
  std::printf("%s\n", learner::OpenLoopSummary(*report).c_str());
  std::string by_step;
  for (int64_t t = 0; t < report->length; t += std::max<int64_t>(1, report->length / 10)) {
    absl::StrAppend(&by_step, " ", t, ":", absl::StrFormat("%.4f", report->step_mse[t]));
  }
  std::printf("error by step:%s\n", by_step.c_str());
  if (absl::Status written =
          learner::WriteOpenLoopFiles(*report, gif_path, png_path, static_cast<int>(frame_ms));
      !written.ok()) {
    std::cerr << "dreamfleet report openloop: " << written << "\n";
    return 1;
  }
  std::printf("wrote %s (%lld frames, %dx%d) and %s\n", gif_path.c_str(),
              static_cast<long long>(report->length), report->AnimationWidth(),
              report->AnimationHeight(), png_path.c_str());
  return 0;
}

int ForesightMain(int argc, char** argv) {
  learner::ForesightOptions o;
  int64_t seed = 1;
  services::CommandLine command_line(
      "dreamfleet report foresight [--run RUN_DIR | --checkpoint DIR --config FILE] [flags]",
      "Does the world model see an episode's end, and a reward, coming? The agent plays "
      "--episodes episodes in a fresh env; from every step, the world model, which has observed "
      "the episode up to there (or its last --context steps), imagines the next --horizon from "
      "the actions taken. Prints, per lead "
      "(imagined steps ahead), the imagined chance that the episode ends where it truly ended "
      "and where it did not, and the imagined reward where a reward truly came and where none "
      "did. A model that foresees deaths shows a far higher end chance at the true ends at "
      "short leads; the actor learns to avoid only what the model foresees. For a grid "
      "observation (MinAtar, the gridworld's symbolic views; the egocentric view's cells are "
      "relative to the agent, so a turn moves them all) it also prints, per lead and "
      "channel, the share of occupied cells the decoded imagination keeps, of those that "
      "arrived since the last observed step (what moved), and its spurious cells: lead 0 "
      "shows whether the model reconstructs the grid at all.");
  learner::AgentFlags agent;
  agent.Register(&command_line);
  command_line.AddInt("episodes", &o.episodes, "episodes to play (1 to 1000)");
  command_line.AddInt("max-steps", &o.max_steps, "cut an episode still running after this many");
  command_line.AddInt("context", &o.context,
                      "steps the model observes before it imagines (1-1000; near an episode's "
                      "start, the steps since it); 0: the episode so far, as the agent follows "
                      "it. A shorter one shows how fast the model finds the state again");
  command_line.AddInt("horizon", &o.horizon, "steps it imagines after them (1-100)");
  command_line.AddBool("greedy", &o.greedy,
                       "play with the policy's most likely action (default: sample)");
  command_line.AddInt("seed", &seed, "seed of the episodes, of sampling and of the latents");
  int exit_code = 0;
  if (!services::ParseCommandLineOrExit(command_line, argc, argv, &exit_code)) return exit_code;
  if (seed < 0) {
    std::cerr << "dreamfleet report foresight: need --seed >= 0\n";
    return 2;
  }
  o.seed = static_cast<uint64_t>(seed);
  std::optional<learner::ResolvedAgent> resolved =
      learner::ResolveAgentOrExit(command_line, agent, "dreamfleet report foresight", &exit_code);
  if (!resolved) return exit_code;
  o.checkpoint_dir = resolved->checkpoint_dir;
  std::printf("foresight of %s with %s: %lld episodes, %s observed, %lld steps imagined\n",
              resolved->config.env.name.c_str(), o.checkpoint_dir.c_str(),
              static_cast<long long>(o.episodes),
              o.context == 0 ? "the episode so far"
                             : absl::StrCat("the last ", o.context, " steps").c_str(),
              static_cast<long long>(o.horizon));
  std::fflush(stdout);
  absl::StatusOr<learner::ForesightReport> report = learner::Foresight(resolved->config, o);
  if (!report.ok()) {
    std::cerr << "dreamfleet report foresight: " << report.status() << "\n";
    return absl::IsInvalidArgument(report.status()) ? 2 : 1;
  }
  std::printf("%s", learner::ForesightSummary(*report).c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  dreamfleet::services::EnsureThreadEnvironment(argc, argv);
  const std::string usage =
      "usage: dreamfleet report openloop|foresight [flags]   (--help for the flags)\n";
  if (argc < 2) {
    std::cerr << usage;
    return 2;
  }
  const std::string command = argv[1];
  if (command == "openloop") return OpenLoopMain(argc - 1, argv + 1);
  if (command == "foresight") return ForesightMain(argc - 1, argv + 1);
  if (command == "--help" || command == "-h") {
    std::cout << usage;
    return 0;
  }
  std::cerr << "dreamfleet report: unknown report \"" << command << "\"\n" << usage;
  return 2;
}
