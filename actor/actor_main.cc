// dreamfleet-actor: one actor process (K envs, CPU policy, replay streaming). Prints
// "metrics on HOST:PORT" once its /metrics endpoint is up.
#include <iostream>

#include "absl/strings/str_cat.h"
#include "actor/actor_loop.h"
#include "services/command_line.h"
#include "services/grpc_util.h"
#include "services/logging.h"
#include "services/metrics.h"
#include "services/shutdown.h"
#include "services/thread_env.h"

int main(int argc, char** argv) {
  dreamfleet::services::EnsureThreadEnvironment(argc, argv);
  namespace services = dreamfleet::services;
  services::InstallShutdownHandler();
  int64_t actor_index = 0;
  std::string actor_id;
  services::CommandLine command_line(
      "dreamfleet-actor [--config FILE] [--set section.key=value]... [flags]",
      "Runs actor.envs_per_actor environments with the newest policy weights from the learner "
      "and streams their steps to the replay shards. Until the first weights arrive it acts "
      "uniformly at random (prefill).");
  command_line.AddInt("actor-index", &actor_index,
                      "This actor's index i: env seeds start at env.base_seed + i * "
                      "envs_per_actor; /metrics on actor.metrics_port + i.");
  command_line.AddString("actor-id", &actor_id,
                         "Name of this actor in replay and metrics (default: actor-<index>; "
                         "containers use their hostname).");
  command_line.AddConfigFlags();
  int exit_code = 0;
  if (!services::ParseCommandLineOrExit(command_line, argc, argv, &exit_code)) return exit_code;
  std::optional<services::Config> config = services::LoadConfigOrExit(
      command_line, "dreamfleet-actor", /*validate_cluster=*/true, &exit_code);
  if (!config) return exit_code;
  if (actor_id.empty()) actor_id = absl::StrCat("actor-", actor_index);
  services::SetLogComponent(actor_id);
  services::LogSeverity level;
  if (services::ParseLogSeverity(config->run.log_level, &level)) services::SetLogLevel(level);

  services::Metrics metrics;
  const int metrics_port = config->actor.metrics_port == 0
                               ? 0
                               : static_cast<int>(config->actor.metrics_port + actor_index);
  auto metrics_server =
      services::MetricsServer::Start(config->actor.metrics_host, metrics_port, &metrics);
  if (!metrics_server.ok()) {
    DF_LOG(ERROR) << metrics_server.status();
    return 1;
  }
  std::cout << "metrics on "
            << services::JoinHostPort(config->actor.metrics_host, (*metrics_server)->port())
            << std::endl;

  dreamfleet::actor::ActorOptions options;
  options.config = *config;
  options.actor_index = static_cast<int>(actor_index);
  options.actor_id = actor_id;
  absl::Status status = dreamfleet::actor::RunActor(options, &metrics);
  if (!status.ok()) {
    DF_LOG(ERROR) << status;
    // Exit code 2: the config or its files are wrong; restarting cannot help (the launcher stops).
    return absl::IsInvalidArgument(status) || absl::IsNotFound(status) ? 2 : 1;
  }
  DF_LOG(INFO) << "stopped";
  return 0;
}
