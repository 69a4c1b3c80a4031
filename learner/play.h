// Play: a trained agent's episodes as an animated GIF, from any checkpoint DreamerAgent writes
// (bench_learning and dreamfleet-train-local's <dir>/checkpoint, a cluster's <run.dir>/learner).
// Data flow: the run's config -> one env (envs of its own: env indices no training env uses) and
// the agent restored from the checkpoint -> the policy acts (greedy or sampled) -> each step's
// picture (the env's RGB image observation, else Environment::RenderRgb) -> frames -> GIF.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "envs/environment.h"
#include "services/config.h"

namespace dreamfleet::learner {

struct PlayOptions {
  std::string checkpoint_dir;
  int64_t episodes = 1;
  bool greedy = true;        // the policy's most likely action; false: sample as in training
  int64_t max_steps = 2000;  // per episode; an episode still running is cut (and says so)
  uint64_t seed = 1;         // the episodes' env seed and the policy's sampling seed
  int64_t max_frames = 3000;  // frames kept for the GIF (the episodes still play to the end)
};

struct PlayedEpisode {
  double episode_return = 0;
  int64_t length = 0;
  bool success = false;
  bool cut = false;  // stopped at max_steps
  std::vector<int64_t> action_counts;  // steps that played each action (the env's action index)
};

struct PlayResult {
  std::vector<PlayedEpisode> episodes;
  std::vector<std::string> action_names;  // the env's, by action index (may be empty)
  // Every step's picture, episode after episode: [frames, height, width, 3] RGB.
  int height = 0;
  int width = 0;
  std::vector<uint8_t> frames;
  int64_t frames_dropped = 0;  // pictures past options.max_frames, not kept
  int64_t frame_count() const {
    return height * width == 0
               ? 0
               : static_cast<int64_t>(frames.size()) / (int64_t{height} * width * 3);
  }
};

// Plays options.episodes episodes of `config`'s env with the agent in options.checkpoint_dir.
// NOT_FOUND when the directory holds no checkpoint; FAILED_PRECONDITION when the checkpoint does
// not fit the config (another model size, env or two-hot space); UNIMPLEMENTED when the env can
// neither observe nor render a picture; INVALID_ARGUMENT for bad options.
absl::StatusOr<PlayResult> Play(const services::Config& config, const PlayOptions& options);

}  // namespace dreamfleet::learner
