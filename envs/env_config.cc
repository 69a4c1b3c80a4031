#include "envs/env_config.h"

namespace dreamfleet::envs {

EnvOptions EnvOptionsFromConfig(const services::Config& config, int env_index) {
  EnvOptions options;
  options.name = config.env.name;
  options.base_seed = static_cast<uint64_t>(config.env.base_seed);
  options.env_index = env_index;
  options.image_size = static_cast<int>(config.env.image_size);
  options.grayscale = config.env.grayscale;
  options.action_repeat = static_cast<int>(config.env.action_repeat);
  options.sticky_actions = static_cast<float>(config.env.sticky_actions);
  options.max_episode_steps = static_cast<int>(config.env.max_episode_steps);
  options.rom = config.env.rom;
  options.core = config.env.core;
  options.view = config.env.view;
  options.action_set = config.env.action_set;
  return options;
}

}  // namespace dreamfleet::envs
