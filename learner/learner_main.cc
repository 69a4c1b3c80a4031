// dreamfleet-learner: trains DreamerV3 from the replay shards and broadcasts policy weights.
// Prints "listening on HOST:PORT" (ParameterService) and "metrics on HOST:PORT" once serving.
// SIGINT/SIGTERM: checkpoint, then exit.
#include <iostream>
#include <string>

#include "broadcast/parameter_service.h"
#include "learner/learner_loop.h"
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
  services::CommandLine command_line(
      "dreamfleet-learner [--config FILE] [--set section.key=value]...",
      "Trains the DreamerV3 world model and actor-critic on batches sampled from every replay "
      "shard, publishes policy weights to the actors, and checkpoints into <run.dir>/learner "
      "(resuming from the latest checkpoint there).");
  command_line.AddConfigFlags();
  std::string init_from;
  command_line.AddString("init-from", &init_from,
                         "start from the agent in this checkpoint directory (e.g. <run.dir>/best, "
                         "as `dreamfleet up --resume best` does) when <run.dir>/learner holds no "
                         "checkpoint yet; a restart after the first checkpoint carries on from "
                         "that (\"\" = start fresh)");
  int exit_code = 0;
  if (!services::ParseCommandLineOrExit(command_line, argc, argv, &exit_code)) return exit_code;
  std::optional<services::Config> config = services::LoadConfigOrExit(
      command_line, "dreamfleet-learner", /*validate_cluster=*/true, &exit_code);
  if (!config) return exit_code;
  services::SetLogComponent("learner");
  services::LogSeverity level;
  if (services::ParseLogSeverity(config->run.log_level, &level)) services::SetLogLevel(level);

  absl::StatusOr<services::ServerSecurity> security =
      services::PrepareServerSecurity(*config, "learner.host", config->learner.host, "learner");
  if (!security.ok()) {
    DF_LOG(ERROR) << security.status();
    return 2;
  }
  services::Metrics metrics;
  dreamfleet::broadcast::ParameterServiceImpl::Options options;
  options.metrics = &metrics;
  options.authorizer = security->authorizer.get();
  dreamfleet::broadcast::ParameterServiceImpl service(options);
  const int max_message = static_cast<int>(config->replay.max_message_mb) << 20;
  auto server =
      services::StartGrpcServer(config->learner.host, static_cast<int>(config->learner.port),
                                {&service}, max_message, security->credentials);
  if (!server.ok()) {
    DF_LOG(ERROR) << server.status();
    return 1;
  }
  auto metrics_server = services::MetricsServer::Start(
      config->learner.host, static_cast<int>(config->learner.metrics_port), &metrics);
  if (!metrics_server.ok()) {
    DF_LOG(ERROR) << metrics_server.status();
    return 1;
  }
  std::cout << "listening on " << services::JoinHostPort(config->learner.host, server->port)
            << "\nmetrics on "
            << services::JoinHostPort(config->learner.host, (*metrics_server)->port())
            << std::endl;

  absl::Status status = dreamfleet::learner::RunLearner(*config, &service, &metrics, init_from);
  service.Shutdown();
  server->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  server->server->Wait();
  if (!status.ok()) {
    DF_LOG(ERROR) << status;
    // Exit code 2: the config or its files are wrong; restarting cannot help (the launcher stops).
    return absl::IsInvalidArgument(status) || absl::IsNotFound(status) ? 2 : 1;
  }
  DF_LOG(INFO) << "stopped";
  return 0;
}
