// Builds environments by name. Every env of dreamfleet is registered in registry.cc (one place),
// so adding a game changes no core code.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "actor/envs/environment.h"

namespace dreamfleet::actor {

// Everything needed to build one env instance. Env i of a fleet seeds from base_seed + env_index.
struct EnvOptions {
  std::string name;               // registry name, e.g. "grid_empty_5x5"
  uint64_t base_seed = 0;
  int env_index = 0;
  int image_size = 64;            // observations are image_size x image_size
  bool grayscale = false;
  int action_repeat = 4;          // emulators: frames per agent step
  float sticky_actions = -1.0f;   // probability of repeating the previous action; <0 = env default
  int max_episode_steps = 0;      // 0 = the env's default time limit
  std::string rom;                // emulators: path to the ROM (user-supplied for commercial games)
  std::string core;               // emulators: path to the libretro core .so ("" = default)
  std::string view = "full";      // gridworlds: "full" or "egocentric" (MiniGrid's 7x7 view)
};

using EnvFactory =
    std::function<absl::StatusOr<std::unique_ptr<Environment>>(const EnvOptions&)>;

// Builds the env named options.name; NOT_FOUND lists the known names.
absl::StatusOr<std::unique_ptr<Environment>> MakeEnvironment(const EnvOptions& options);

// Every registered name, sorted, with a one-line description each.
std::vector<std::pair<std::string, std::string>> ListEnvironments();

}  // namespace dreamfleet::actor
