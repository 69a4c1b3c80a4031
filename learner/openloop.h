// Open-loop report: what the world model imagines, beside what happened. Data flow: the run's
// config -> one env (env indices of its own) and the agent restored from a checkpoint -> the
// policy plays `sequences` windows of `length` steps, each from a fresh episode start (continuing
// through an episode's end into the next) -> WorldModel::OpenLoop observes the first `context`
// steps of each window and imagines the rest from the window's actions -> panels of true |
// predicted | difference, as an animation (one frame per step, one row per window) and as a strip
// (three rows of panels per window, one column per step), the official DreamerV3 "openloop" report.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "services/config.h"

namespace dreamfleet::learner {

struct OpenLoopOptions {
  std::string checkpoint_dir;
  int64_t sequences = 4;  // windows (rows)
  int64_t length = 50;    // steps per window
  int64_t context = 5;    // observed steps; the other length - context are imagined
  uint64_t seed = 1;      // env seed, the policy's sampling and the model's latent samples
  bool greedy = false;    // the policy that plays the windows: sampled as in training by default
};

// One picture of every step of every window: panels are [height, width, 3] RGB. Image
// observations are shown as they are. A vector observation that the env says is a grid of cells
// (EnvSpec::vector_grid_channels: MinAtar's channels, the gridworld's symbolic view) is drawn as
// that grid, each cell in its channels' colours; any other vector as a square of grey cells, one
// per entry. Values map from the smallest true value of the report (black) to the largest; the
// difference panel is grey, from 0 to that range.
struct OpenLoopReport {
  int64_t sequences = 0;
  int64_t length = 0;
  int64_t context = 0;
  int height = 0;  // of one panel
  int width = 0;
  std::string observation;  // "image" or "vector": what the panels show
  // [sequences, 3 (true, predicted, |difference|), length, height, width, 3].
  std::vector<uint8_t> panels;
  // Mean squared error per observation entry (pixels in [0, 1]; vectors in their own units),
  // over every window, of the observed steps and of the imagined ones; and per step.
  double observed_mse = 0;
  double imagined_mse = 0;
  // The same error for a model that only repeats the last observed step over the imagined ones:
  // a world model that learned the dynamics beats it.
  double hold_mse = 0;
  std::vector<double> step_mse;  // [length]
  // Reward: mean absolute error of the predicted reward over the imagined steps, and the true
  // rewards' sum over them (0 means there was nothing to predict).
  double imagined_reward_mae = 0;
  double imagined_reward_sum = 0;

  size_t panel_offset(int64_t sequence, int row, int64_t step) const {
    return ((sequence * 3 + row) * length + step) * static_cast<size_t>(height) * width * 3;
  }
  const uint8_t* panel(int64_t sequence, int row, int64_t step) const {
    return panels.data() + panel_offset(sequence, row, step);
  }
  // The animation: frame t shows every window's true | predicted | difference panels of step t
  // side by side (2-pixel gaps), one window per row; a white bar under the panels while the model
  // still observes, none once it imagines. [length, AnimationHeight(), AnimationWidth(), 3].
  int AnimationHeight() const;
  int AnimationWidth() const;
  std::vector<uint8_t> Animation() const;
  // The strip, panel by panel in the order EncodePngGrid lays out with `length` per row: window 0's
  // true row, its predicted row, its difference row, then window 1's, ...
  std::vector<uint8_t> Strip() const { return panels; }
};

class DreamerAgent;

// The report of the agent in options.checkpoint_dir. NOT_FOUND without a checkpoint;
// FAILED_PRECONDITION when it does not fit the config; INVALID_ARGUMENT for bad options
// (1 <= context < length <= 1000, 1 <= sequences <= 64); UNIMPLEMENTED when the model has neither
// an image nor a vector observation to show.
absl::StatusOr<OpenLoopReport> OpenLoop(const services::Config& config,
                                        const OpenLoopOptions& options);
// The same for an agent in memory (a trainer's, mid-run): options.checkpoint_dir is not read. The
// windows are played in an env of their own, which never feeds replay.
absl::StatusOr<OpenLoopReport> OpenLoop(const services::Config& config, DreamerAgent& agent,
                                        const OpenLoopOptions& options);

}  // namespace dreamfleet::learner
