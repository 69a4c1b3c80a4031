#include "learner/agent_source.h"

#include <filesystem>
#include <iostream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "dreamer/agent_config.h"
#include "envs/env_config.h"
#include "services/status_macros.h"

namespace dreamfleet::learner {

namespace fs = std::filesystem;

absl::StatusOr<AgentSource> ResolveAgentSource(const std::string& run_dir,
                                               const std::string& checkpoint_dir, bool best,
                                               const std::string& config_path, bool has_config) {
  if (best && (run_dir.empty() || !checkpoint_dir.empty())) {
    return absl::InvalidArgumentError("--best takes the best agent of --run, without --checkpoint");
  }
  if (run_dir.empty() && checkpoint_dir.empty()) {
    return absl::InvalidArgumentError("say which agent: --run RUN_DIR or --checkpoint DIR");
  }
  if (run_dir.empty() && !has_config) {
    return absl::InvalidArgumentError(
        "with --checkpoint, name the config the agent was trained with (--config FILE and/or "
        "--set section.key=value)");
  }
  AgentSource source{config_path, checkpoint_dir};
  if (run_dir.empty()) return source;
  if (!fs::is_directory(run_dir)) {
    return absl::InvalidArgumentError(absl::StrCat("--run ", run_dir, " is not a directory"));
  }
  if (source.config_path.empty()) {
    source.config_path = run_dir + "/config.yaml";
    if (!fs::exists(source.config_path)) {
      return absl::InvalidArgumentError(
          absl::StrCat(source.config_path, " is missing; name the run's config with --config"));
    }
  }
  if (source.checkpoint_dir.empty() && best) {
    source.checkpoint_dir = run_dir + "/best";
    if (!fs::is_directory(source.checkpoint_dir)) {
      return absl::NotFoundError(
          absl::StrCat(run_dir,
                       " has no best/ agent: bench_learning keeps one when it evaluates "
                       "(--eval-every > 0), dreamfleet up with learner.eval_every_updates > 0; "
                       "for dreamfleet-train-local --best-dir DIR, pass "
                       "--checkpoint DIR --config FILE"));
    }
  } else if (source.checkpoint_dir.empty()) {
    source.checkpoint_dir =
        fs::is_directory(run_dir + "/checkpoint") ? run_dir + "/checkpoint" : run_dir + "/learner";
  }
  return source;
}

void AgentFlags::Register(services::CommandLine* command_line) {
  command_line->AddConfigFlags();
  command_line->AddString("run", &run_dir, "run directory (config.yaml + checkpoint/ or learner/)");
  command_line->AddString("checkpoint", &checkpoint_dir, "checkpoint directory (\"\" = --run's)");
  command_line->AddBool("best", &best,
                        "--run's best agent (<run>/best, kept by the greedy evaluations) instead "
                        "of its latest");
}

std::optional<ResolvedAgent> ResolveAgentOrExit(const services::CommandLine& command_line,
                                                const AgentFlags& flags, const std::string& program,
                                                int* exit_code) {
  absl::StatusOr<AgentSource> source = ResolveAgentSource(
      flags.run_dir, flags.checkpoint_dir, flags.best, command_line.config_path(),
      !command_line.config_path().empty() || !command_line.overrides().empty());
  if (!source.ok()) {
    std::cerr << program << ": " << source.status().message() << "\n";
    *exit_code = absl::IsInvalidArgument(source.status()) ? 2 : 1;
    return std::nullopt;
  }
  absl::StatusOr<services::Config> config =
      services::LoadConfig(source->config_path, command_line.overrides());
  if (!config.ok()) {
    std::cerr << program << ": " << config.status() << "\n";
    *exit_code = 2;
    return std::nullopt;
  }
  return ResolvedAgent{*std::move(config), source->checkpoint_dir};
}

absl::StatusOr<std::unique_ptr<envs::VectorEnv>> MakeAgentEnv(const services::Config& config,
                                                              uint64_t seed, int env_index) {
  envs::EnvOptions env_options = envs::EnvOptionsFromConfig(config, 0);
  env_options.base_seed = seed;
  env_options.env_index = env_index;
  return envs::VectorEnv::Create(env_options, 1);
}

absl::StatusOr<LoadedAgent> LoadAgent(const services::Config& config,
                                      const std::string& checkpoint_dir, uint64_t seed,
                                      int env_index) {
  if (checkpoint_dir.empty()) return absl::InvalidArgumentError("no checkpoint directory");
  LoadedAgent loaded;
  ASSIGN_OR_RETURN(loaded.envs, MakeAgentEnv(config, seed, env_index));
  ASSIGN_OR_RETURN(dreamer::AgentConfig agent_config,
                   dreamer::AgentConfigFromConfig(config, loaded.envs->spec()));
  ASSIGN_OR_RETURN(loaded.agent, DreamerAgent::Create(agent_config));
  if (absl::Status restored = loaded.agent->Restore(checkpoint_dir); !restored.ok()) {
    if (absl::IsNotFound(restored)) {
      return absl::NotFoundError(
          absl::StrCat("no checkpoint in ", checkpoint_dir, ": ", restored.message()));
    }
    return restored;
  }
  return loaded;
}

}  // namespace dreamfleet::learner
