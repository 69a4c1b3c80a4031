// Maps the `env` section of a dreamfleet config onto EnvOptions (used by actors, the learner, which
// reads the env's spec to size its model, and the trainers).
#pragma once

#include "envs/env_options.h"
#include "services/config.h"

namespace dreamfleet::envs {

// Options for env number `env_index` of the fleet (it seeds from env.base_seed + env_index).
EnvOptions EnvOptionsFromConfig(const services::Config& config, int env_index);

}  // namespace dreamfleet::envs
