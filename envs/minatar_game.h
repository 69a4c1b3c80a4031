// The rules of one MinAtar game (Young & Tian 2019), separate from observation, sticky actions
// and time limits (minatar_env.h). Data flow: MinAtarEnv calls Reset(rng) and Act(action, rng)
// with MinAtar's full action set; WriteState fills the 10x10xC binary state.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "envs/rng.h"

namespace dreamfleet::envs {

// MinAtar's full action set, in MinAtar's order.
enum MinAtarAction { kNoop = 0, kLeft = 1, kUp = 2, kRight = 3, kDown = 4, kFire = 5 };
inline constexpr int kMinAtarNumActions = 6;
// Their names, as EnvSpec::action_names gives them.
inline constexpr const char* kMinAtarActionNames[kMinAtarNumActions] = {"noop",  "left", "up",
                                                                        "right", "down", "fire"};
inline constexpr int kMinAtarSize = 10;  // the board is 10x10

class MinAtarGame {
 public:
  virtual ~MinAtarGame() = default;
  // Channel names in state order (MinAtar's state_shape()[2] entries).
  virtual const std::vector<std::string>& channel_names() const = 0;
  int num_channels() const { return static_cast<int>(channel_names().size()); }
  virtual void Reset(Rng* rng) = 0;
  // Applies `action` (MinAtarAction); returns the reward and sets *terminal when the game is over.
  virtual float Act(int action, Rng* rng, bool* terminal) = 0;
  // state: [10, 10, C] row-major (y, x, channel), already zeroed by the caller.
  virtual void WriteState(uint8_t* state) const = 0;
  // Largest reward one step can give (for EnvSpec.reward_max).
  virtual float max_reward() const = 0;
  // MinAtar's minimal_action_set(): the actions with a distinct effect in this game, in the
  // full set's order (e.g. Breakout: noop, left, right).
  virtual std::vector<int> minimal_actions() const = 0;
};

// The games; `ramping` enables MinAtar's difficulty ramping (on by default in MinAtar).
std::unique_ptr<MinAtarGame> MakeMinAtarBreakout();
std::unique_ptr<MinAtarGame> MakeMinAtarFreeway();
std::unique_ptr<MinAtarGame> MakeMinAtarAsterix(bool ramping = true);
std::unique_ptr<MinAtarGame> MakeMinAtarSeaquest(bool ramping = true);
std::unique_ptr<MinAtarGame> MakeMinAtarSpaceInvaders(bool ramping = true);

// Writes 1 into state[y, x, channel] of a [10, 10, num_channels] state.
inline void SetState(uint8_t* state, int num_channels, int y, int x, int channel) {
  state[(y * kMinAtarSize + x) * num_channels + channel] = 1;
}

}  // namespace dreamfleet::envs
