// Builds environments by name. Every env of dreamfleet is registered in registry.cc (one place),
// so adding a game changes no core code.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "envs/env_options.h"
#include "envs/environment.h"

namespace dreamfleet::envs {

using EnvFactory = std::function<absl::StatusOr<std::unique_ptr<Environment>>(const EnvOptions&)>;
using EnvSpecFunction = std::function<absl::StatusOr<EnvSpec>(const EnvOptions&)>;

// Builds the env named options.name; NOT_FOUND lists the known names.
absl::StatusOr<std::unique_ptr<Environment>> MakeEnvironment(const EnvOptions& options);

// The spec of the env `options` would build, without starting an emulator (the learner sizes its
// model from it, and may run where the ROM is not). Native envs are cheap to build and are built;
// emulator envs compute their spec from their settings and check every option that needs no ROM
// file or core. Errors as MakeEnvironment for unknown names and bad options.
absl::StatusOr<EnvSpec> LookupEnvSpec(const EnvOptions& options);

// Every registered name, sorted, with a one-line description each.
std::vector<std::pair<std::string, std::string>> ListEnvironments();

}  // namespace dreamfleet::envs
