// See minatar_env.h.
#include "envs/minatar_env.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "envs/env_options.h"
#include "services/status_macros.h"

namespace dreamfleet::envs {

Rgb MinAtarEnv::ChannelColor(int channel) {
  // Ten well-separated colours; black is the empty background.
  static constexpr Rgb kPalette[] = {{230, 25, 75},  {60, 180, 75},  {255, 225, 25}, {0, 130, 200},
                                     {245, 130, 48}, {145, 30, 180}, {70, 240, 240}, {240, 50, 230},
                                     {210, 245, 60}, {250, 190, 212}};
  return kPalette[channel % 10];
}

absl::StatusOr<std::unique_ptr<MinAtarEnv>> MinAtarEnv::Create(std::unique_ptr<MinAtarGame> game,
                                                               const MinAtarOptions& options) {
  if (game == nullptr) return absl::InvalidArgumentError("MinAtarEnv needs a game");
  if (options.sticky_actions > 1.0f) {
    return absl::InvalidArgumentError(absl::StrCat("sticky_actions ", options.sticky_actions,
                                                   " for \"", options.name, "\" is above 1"));
  }
  RETURN_IF_ERROR(CheckImageSizeAndTimeLimit(options.image_size, options.max_steps));
  const int max_steps = options.max_steps > 0 ? options.max_steps : kDefaultMaxEpisodeSteps;
  return std::unique_ptr<MinAtarEnv>(new MinAtarEnv(std::move(game), options, max_steps));
}

MinAtarEnv::MinAtarEnv(std::unique_ptr<MinAtarGame> game, const MinAtarOptions& options,
                       int max_steps)
    : game_(std::move(game)),
      options_(options),
      renderer_(kMinAtarSize, kMinAtarSize, options.image_size, options.image_size,
                options.grayscale ? 1 : 3),
      state_(kMinAtarSize * kMinAtarSize * game_->num_channels(), 0),
      cell_colors_(kMinAtarSize * kMinAtarSize) {
  options_.sticky_actions = std::max(0.0f, options.sticky_actions);
  spec_.name = options.name;
  spec_.image_height = options.image_size;
  spec_.image_width = options.image_size;
  spec_.image_channels = options.grayscale ? 1 : 3;
  if (options.symbolic) {
    spec_.image_height = spec_.image_width = spec_.image_channels = 0;
    spec_.vector_size = kMinAtarSize * kMinAtarSize * game_->num_channels();
    spec_.vector_grid_channels = game_->num_channels();
  }
  if (options.minimal_actions) {
    game_actions_ = game_->minimal_actions();
  } else {
    for (int a = 0; a < kMinAtarNumActions; ++a) game_actions_.push_back(a);
  }
  spec_.num_actions = static_cast<int>(game_actions_.size());
  for (int a : game_actions_) spec_.action_names.push_back(kMinAtarActionNames[a]);
  spec_.reward_min = 0.0f;
  spec_.reward_max = game_->max_reward();
  spec_.max_episode_steps = max_steps;
}

absl::Status MinAtarEnv::Reset(uint64_t seed, StepBuffer* out) {
  rng_.Seed(seed);
  game_->Reset(&rng_);
  last_action_ = kNoop;
  step_count_ = 0;
  done_ = false;
  Write(0.0f, /*is_first=*/true, /*terminal=*/false, out);
  return absl::OkStatus();
}

absl::Status MinAtarEnv::Step(int action, StepBuffer* out) {
  if (done_) {
    return absl::FailedPreconditionError(
        absl::StrCat(spec_.name, ": Step after the episode ended; call Reset"));
  }
  if (action < 0 || action >= spec_.num_actions) {
    return absl::InvalidArgumentError(
        absl::StrCat(spec_.name, ": action ", action, " is outside [0, ", spec_.num_actions, ")"));
  }
  action = game_actions_[action];
  // MinAtar draws the sticky coin on every step, even when it is 0.
  if (rng_.Uniform() < options_.sticky_actions) action = last_action_;
  last_action_ = action;
  bool terminal = false;
  const float reward = game_->Act(action, &rng_, &terminal);
  ++step_count_;
  done_ = terminal || step_count_ >= spec_.max_episode_steps;
  Write(reward, /*is_first=*/false, terminal, out);
  return absl::OkStatus();
}

void MinAtarEnv::Write(float reward, bool is_first, bool terminal, StepBuffer* out) {
  std::fill(state_.begin(), state_.end(), 0);
  game_->WriteState(state_.data());
  out->reward = reward;
  out->is_first = is_first;
  out->is_last = done_;
  out->is_terminal = terminal;
  out->success = false;
  if (options_.symbolic) {
    if (out->vector != nullptr) std::copy(state_.begin(), state_.end(), out->vector);
    return;
  }
  if (out->image == nullptr) return;
  ColourCells();
  renderer_.Render(cell_colors_.data(), out->image);
}

void MinAtarEnv::ColourCells() {
  const int c = game_->num_channels();
  for (int cell = 0; cell < kMinAtarSize * kMinAtarSize; ++cell) {
    Rgb color;  // black background
    for (int ch = c - 1; ch >= 0; --ch) {
      if (state_[cell * c + ch]) {
        color = ChannelColor(ch);
        break;
      }
    }
    cell_colors_[cell] = color;
  }
}

absl::Status MinAtarEnv::RenderRgb(std::vector<uint8_t>* rgb, int* height, int* width) {
  constexpr int kPixels = 16 * kMinAtarSize;
  static const CellRenderer* const renderer =
      new CellRenderer(kMinAtarSize, kMinAtarSize, kPixels, kPixels, 3);
  ColourCells();
  rgb->resize(kPixels * kPixels * 3);
  renderer->Render(cell_colors_.data(), rgb->data());
  *height = *width = kPixels;
  return absl::OkStatus();
}

}  // namespace dreamfleet::envs
