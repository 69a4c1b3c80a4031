// EnvOptions: everything needed to build one env instance, whichever env it is. The registry
// (registry.h) builds envs from it; env_config.h fills it from a dreamfleet config.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace dreamfleet::envs {

// Everything needed to build one env instance. Env i of a fleet seeds from base_seed + env_index.
struct EnvOptions {
  std::string name;  // registry name, e.g. "grid_empty_5x5"
  uint64_t base_seed = 0;
  int env_index = 0;
  int image_size = 64;  // observations are image_size x image_size
  bool grayscale = false;
  int action_repeat = 4;         // emulators: frames per agent step
  float sticky_actions = -1.0f;  // probability of repeating the previous action; <0 = env default
  int max_episode_steps = 0;     // 0 = the env's default time limit
  std::string rom;               // emulators: path to the ROM (user-supplied for commercial games)
  std::string core;              // emulators: path to the libretro core .so ("" = default)
  std::string view = "full";     // gridworlds: "full" or "egocentric" (MiniGrid's 7x7 view)
  std::string action_set = "full";  // MinAtar: "full" (6 actions) or "minimal" (the game's own)
};

// The checks every native env makes of its own options: images from 8x8 to 1024x1024 and a
// non-negative time limit (0 = none).
inline absl::Status CheckImageSizeAndTimeLimit(int image_size, int max_steps) {
  if (image_size < 8 || image_size > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("image_size ", image_size, " is outside [8, 1024]"));
  }
  if (max_steps < 0) {
    return absl::InvalidArgumentError(absl::StrCat("max_steps must be >= 0, got ", max_steps));
  }
  return absl::OkStatus();
}

}  // namespace dreamfleet::envs
