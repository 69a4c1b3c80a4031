// Wraps a MinAtar game (minatar_game.h) as an Environment: MinAtar's sticky actions, a time limit,
// and rendering of the 10x10xC binary state to an RGB (or gray) image with one colour per channel,
// or (symbolic) the 10x10xC state itself as a float vector, the observation MinAtar's published
// baselines learn from.
// Data flow: Step(action) -> sticky-action choice -> MinAtarGame::Act -> state() -> Render into
// out->image (skipped when out->image is null, i.e. state-only stepping).
//
// Actions are MinAtar's full set of 6 (noop, left, up, right, down, fire), the default of the
// MinAtar package, where actions a game does not use are no-ops; or (minimal_actions) the game's
// minimal set, MinAtar's minimal_action_set() (Breakout: noop, left, right), agent action i being
// the set's i-th. Sticky actions: with probability sticky_actions the previous action is repeated
// (MinAtar: 0.1).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "envs/cell_renderer.h"
#include "envs/environment.h"
#include "envs/minatar_game.h"
#include "envs/rng.h"

namespace dreamfleet::envs {

struct MinAtarOptions {
  std::string name;
  float sticky_actions = 0.1f;  // MinAtar's default
  int max_steps = 0;            // 0 = kDefaultMaxEpisodeSteps
  int image_size = 64;
  bool grayscale = false;
  bool symbolic = false;  // observe the [10, 10, C] state as a vector instead of an image
  bool minimal_actions = false;  // the game's minimal action set instead of all 6
};

class MinAtarEnv : public Environment {
 public:
  // MinAtar itself has no time limit; we cut episodes at this many agent steps (is_last only).
  static constexpr int kDefaultMaxEpisodeSteps = 10000;
  static constexpr float kDefaultStickyActions = 0.1f;

  static absl::StatusOr<std::unique_ptr<MinAtarEnv>> Create(std::unique_ptr<MinAtarGame> game,
                                                            const MinAtarOptions& options);

  const EnvSpec& spec() const override { return spec_; }
  absl::Status Reset(uint64_t seed, StepBuffer* out) override;
  absl::Status Step(int action, StepBuffer* out) override;
  // The board at 16 pixels a cell (160x160), in the observation's colours.
  absl::Status RenderRgb(std::vector<uint8_t>* rgb, int* height, int* width) override;

  // The binary state behind the latest observation: [10, 10, C] row-major (y, x, channel).
  const std::vector<uint8_t>& state() const { return state_; }
  int num_channels() const { return game_->num_channels(); }
  MinAtarGame* game() { return game_.get(); }
  // The action the game actually received in the latest step (after stickiness), a MinAtarAction.
  int last_action() const { return last_action_; }
  // The MinAtarAction each agent action means: all 6 in order, or the game's minimal set.
  const std::vector<int>& game_actions() const { return game_actions_; }
  // Colour of a channel in rendered images; where channels overlap the highest index wins.
  static Rgb ChannelColor(int channel);

 private:
  MinAtarEnv(std::unique_ptr<MinAtarGame> game, const MinAtarOptions& options, int max_steps);
  void Write(float reward, bool is_first, bool terminal, StepBuffer* out);
  void ColourCells();  // cell_colors_ from state_

  std::unique_ptr<MinAtarGame> game_;
  MinAtarOptions options_;
  EnvSpec spec_;
  CellRenderer renderer_;
  Rng rng_;
  std::vector<uint8_t> state_;
  std::vector<Rgb> cell_colors_;
  std::vector<int> game_actions_;  // agent action -> MinAtarAction
  int last_action_ = kNoop;
  int step_count_ = 0;
  bool done_ = false;
};

}  // namespace dreamfleet::envs
