// Where a trained agent comes from, for the programs that load one (dreamfleet play, dreamfleet
// report): a run directory or a checkpoint directory and its config, resolved to a config file
// and a checkpoint; then the env and the agent restored from it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "envs/vector_env.h"
#include "learner/dreamer_agent.h"
#include "services/command_line.h"
#include "services/config.h"

namespace dreamfleet::learner {

struct AgentSource {
  std::string config_path;  // "" = the embedded default config (with --set overrides)
  std::string checkpoint_dir;
};

// --run RUN_DIR [--best] or --checkpoint DIR with --config/--set (`has_config`). A run directory
// has a config.yaml and a checkpoint/ (bench_learning, train-local) or learner/ (dreamfleet up);
// --best takes its best/ instead. INVALID_ARGUMENT (a usage error) or NOT_FOUND (a missing part
// of the run), each naming what to pass instead.
absl::StatusOr<AgentSource> ResolveAgentSource(const std::string& run_dir,
                                               const std::string& checkpoint_dir, bool best,
                                               const std::string& config_path, bool has_config);

// The flags that name an agent in `dreamfleet play` and `dreamfleet report`: --config/--set (the
// config flags), --run, --checkpoint and --best.
struct AgentFlags {
  std::string run_dir;
  std::string checkpoint_dir;
  bool best = false;
  void Register(services::CommandLine* command_line);
};

struct ResolvedAgent {
  services::Config config;
  std::string checkpoint_dir;
};

// `flags` (after parsing) resolved with ResolveAgentSource, and the agent's config loaded. On
// failure writes "<program>: <why>" to stderr, sets *exit_code (2 for a usage error or a bad
// config, 1 for a missing part of the run) and returns nullopt.
std::optional<ResolvedAgent> ResolveAgentOrExit(const services::CommandLine& command_line,
                                                const AgentFlags& flags, const std::string& program,
                                                int* exit_code);

// One env of `config`, seeded `seed`, at env index `env_index` (an index no training env uses, so
// its episodes are its own and never feed replay).
absl::StatusOr<std::unique_ptr<envs::VectorEnv>> MakeAgentEnv(const services::Config& config,
                                                              uint64_t seed, int env_index);

struct LoadedAgent {
  std::unique_ptr<envs::VectorEnv> envs;  // one env
  std::unique_ptr<DreamerAgent> agent;
};

// One env of `config` (seeded `seed`, at env index `env_index`, an index no training env uses)
// and the agent in `checkpoint_dir`. NOT_FOUND without a checkpoint; FAILED_PRECONDITION when it
// does not fit the config (another model size, env or two-hot space).
absl::StatusOr<LoadedAgent> LoadAgent(const services::Config& config,
                                      const std::string& checkpoint_dir, uint64_t seed,
                                      int env_index);

}  // namespace dreamfleet::learner
