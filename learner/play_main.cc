// dreamfleet-play (also `dreamfleet play`): a trained agent's episodes as an animated GIF.
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <optional>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "learner/agent_source.h"
#include "learner/play.h"
#include "replay_server/image_export.h"
#include "services/command_line.h"
#include "services/config.h"
#include "services/thread_env.h"

namespace {

using namespace dreamfleet;

int Main(int argc, char** argv) {
  std::string out;
  learner::PlayOptions o;
  int64_t seed = 1, frame_ms = 80;
  services::CommandLine command_line(
      "dreamfleet play [--run RUN_DIR | --checkpoint DIR --config FILE] [flags]",
      "Plays episodes with a trained agent and writes them as an animated GIF, one frame per "
      "step. --run takes a run directory with a config.yaml: a bench_learning seed directory "
      "(runs/bench_learning/<task>/seed<k>, its checkpoint/ or best/) or a dreamfleet up run.dir "
      "(its learner/). Otherwise --checkpoint names a checkpoint directory (e.g. "
      "dreamfleet-train-local's --checkpoint-dir) and --config/--set the config it was trained "
      "with.");
  learner::AgentFlags agent;
  agent.Register(&command_line);
  command_line.AddString("out", &out, "GIF to write (\"\" = <run>/episode.gif, else episode.gif)");
  command_line.AddInt("episodes", &o.episodes, "episodes to play, one after another");
  command_line.AddBool("greedy", &o.greedy,
                       "act with the policy's most likely action (--greedy=false: sample)");
  command_line.AddInt("max-steps", &o.max_steps, "cut an episode after this many steps");
  command_line.AddInt("seed", &seed, "seed of the episodes and of sampling");
  command_line.AddInt("frame-ms", &frame_ms, "milliseconds each frame shows (10 to 1000)");
  command_line.AddInt("max-frames", &o.max_frames,
                      "frames the GIF keeps (about 77 KB of memory each at 160x160); later "
                      "steps still play and count");
  int exit_code = 0;
  if (!services::ParseCommandLineOrExit(command_line, argc, argv, &exit_code)) return exit_code;
  if (frame_ms < 10 || frame_ms > 1000 || seed < 0) {
    std::cerr << "dreamfleet play: need --frame-ms from 10 to 1000 and --seed >= 0\n";
    return 2;
  }
  o.seed = static_cast<uint64_t>(seed);
  std::optional<learner::ResolvedAgent> resolved =
      learner::ResolveAgentOrExit(command_line, agent, "dreamfleet play", &exit_code);
  if (!resolved) return exit_code;
  const services::Config* config = &resolved->config;
  o.checkpoint_dir = resolved->checkpoint_dir;
  if (out.empty()) out = agent.run_dir.empty() ? "episode.gif" : agent.run_dir + "/episode.gif";
  std::printf("playing %lld episode(s) of %s with %s (%s)\n", static_cast<long long>(o.episodes),
              config->env.name.c_str(), o.checkpoint_dir.c_str(), o.greedy ? "greedy" : "sampled");
  std::fflush(stdout);
  absl::StatusOr<learner::PlayResult> played = learner::Play(*config, o);
  if (!played.ok()) {
    std::cerr << "dreamfleet play: " << played.status() << "\n";
    return absl::IsInvalidArgument(played.status()) ? 2 : 1;
  }
  for (size_t i = 0; i < played->episodes.size(); ++i) {
    const learner::PlayedEpisode& e = played->episodes[i];
    // What the agent does: the share of the steps each action took (Freeway: is it more than
    // "always up"?).
    std::vector<std::string> shares;
    const std::vector<std::string>& names = played->action_names;
    for (size_t a = 0; a < e.action_counts.size(); ++a) {
      shares.push_back(absl::StrFormat(
          "%s %.1f%%", a < names.size() ? names[a] : absl::StrCat("action ", a),
          100.0 * static_cast<double>(e.action_counts[a]) / std::max<int64_t>(1, e.length)));
    }
    std::printf("episode %zu: return %.3f, %lld steps%s%s; actions: %s\n", i + 1, e.episode_return,
                static_cast<long long>(e.length), e.success ? ", success" : "",
                e.cut ? " (cut at --max-steps)" : "", absl::StrJoin(shares, ", ").c_str());
  }
  replay::Frames frames;
  frames.height = played->height;
  frames.width = played->width;
  frames.channels = 3;
  frames.data = std::move(played->frames);
  absl::StatusOr<std::string> gif = replay::EncodeGif(frames, static_cast<int>(frame_ms / 10));
  if (!gif.ok()) {
    std::cerr << "dreamfleet play: " << gif.status() << "\n";
    return 1;
  }
  std::ofstream file(out, std::ios::binary);
  if (!(file << *gif) || !file.flush()) {
    std::cerr << "dreamfleet play: cannot write " << out << "\n";
    return 1;
  }
  std::printf(
      "wrote %s (%d frames, %dx%d)%s\n", out.c_str(), frames.count(), frames.height, frames.width,
      played->frames_dropped > 0
          ? absl::StrCat("; ", played->frames_dropped, " later frames left out (--max-frames)")
                .c_str()
          : "");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  dreamfleet::services::EnsureThreadEnvironment(argc, argv);
  return Main(argc, argv);
}
