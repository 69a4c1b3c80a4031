// dreamfleet-replay: one replay shard process. Reads the config (--config, --set), restores its
// data directory, serves ReplayService on replay.port + shard index and /metrics, /healthz on
// replay.metrics_port + shard index (0 = any free port). Once serving it prints
//   listening on HOST:PORT
//   metrics on HOST:PORT
// on stdout (tests and launchers read the bound ports from these lines), and writes the gRPC port
// to <data_dir>/port. SIGINT/SIGTERM: stops serving and writes a last checkpoint.
#include <cstdio>
#include <fstream>
#include <iostream>

#include "absl/strings/str_cat.h"
#include "replay_server/replay_service.h"
#include "replay_server/replay_shard.h"
#include "services/command_line.h"
#include "services/grpc_util.h"
#include "services/logging.h"
#include "services/metrics.h"
#include "services/shutdown.h"

namespace dreamfleet::replay {
namespace {

int Run(int argc, char** argv) {
  services::InstallShutdownHandler();
  services::CommandLine command_line("dreamfleet-replay [flags]",
                                     "Runs one replay shard (table, WAL, checkpoints, gRPC).");
  int64_t shard_index = 0;
  command_line.AddInt("shard-index", &shard_index,
                      "This shard's index i: it serves replay.port + i and metrics_port + i.");
  command_line.AddConfigFlags();
  int exit_code = 0;
  if (!services::ParseCommandLineOrExit(command_line, argc, argv, &exit_code)) return exit_code;
  std::optional<services::Config> config = services::LoadConfigOrExit(
      command_line, "dreamfleet-replay", /*validate_cluster=*/false, &exit_code);
  if (!config) return exit_code;
  if (shard_index < 0 || shard_index >= config->replay.shards) {
    std::cerr << "dreamfleet-replay: --shard-index " << shard_index << " is outside [0, "
              << config->replay.shards << ") (replay.shards)\n";
    return 2;
  }
  services::SetLogComponent(absl::StrCat("replay-", shard_index));
  services::LogSeverity level;
  if (services::ParseLogSeverity(config->run.log_level, &level)) services::SetLogLevel(level);

  // The TLS files and tokens first: a mistake there should not cost a restore.
  absl::StatusOr<services::ServerSecurity> security =
      services::PrepareServerSecurity(*config, "replay.host", config->replay.host, "replay shard");
  if (!security.ok()) {
    DF_LOG(ERROR) << security.status();
    return 2;
  }
  services::Metrics metrics;
  ShardOptions options = ShardOptionsFromConfig(*config, static_cast<int>(shard_index));
  absl::StatusOr<std::unique_ptr<ReplayShard>> shard = ReplayShard::Open(options, &metrics);
  if (!shard.ok()) {
    DF_LOG(ERROR) << "cannot open the shard in " << options.data_dir << ": " << shard.status();
    return 1;
  }
  const services::ReplayConfig& r = config->replay;
  const int port = r.port == 0 ? 0 : static_cast<int>(r.port + shard_index);
  const int metrics_port = r.metrics_port == 0 ? 0 : static_cast<int>(r.metrics_port + shard_index);
  const size_t max_message = static_cast<size_t>(r.max_message_mb) << 20;

  ReplayServiceOptions service_options;
  service_options.shard_name = absl::StrCat("shard-", shard_index);
  service_options.max_message_bytes = max_message;
  service_options.max_actor_id_bytes = static_cast<size_t>(r.max_actor_id_bytes);
  service_options.max_streams = r.max_streams;
  service_options.max_streams_per_client = r.max_streams_per_client;
  service_options.authorizer = security->authorizer.get();
  ReplayServiceImpl service(shard->get(), &metrics, service_options);
  // gRPC itself rejects messages above twice the limit; between the two the service answers
  // INVALID_ARGUMENT naming the size.
  const int grpc_limit = static_cast<int>(std::min<size_t>(2 * max_message, (1u << 31) - 1));
  absl::StatusOr<services::StartedServer> server =
      services::StartGrpcServer(r.host, port, {&service}, grpc_limit, security->credentials);
  if (!server.ok()) {
    DF_LOG(ERROR) << server.status();
    return 1;
  }
  absl::StatusOr<std::unique_ptr<services::MetricsServer>> metrics_server =
      services::MetricsServer::Start(r.host, metrics_port, &metrics);
  if (!metrics_server.ok()) {
    DF_LOG(ERROR) << metrics_server.status();
    return 1;
  }
  (*metrics_server)->SetHealthCheck([]() {
    return services::ShutdownRequested() ? absl::UnavailableError("shutting down")
                                         : absl::OkStatus();
  });
  {
    std::ofstream port_file(options.data_dir + "/port");
    port_file << server->port << "\n";
  }
  std::cout << "listening on " << services::JoinHostPort(r.host, server->port) << "\n"
            << "metrics on " << services::JoinHostPort(r.host, (*metrics_server)->port())
            << std::endl;
  DF_LOG(INFO) << "serving table \"" << r.table << "\" from " << options.data_dir << " on port "
               << server->port << " (metrics " << (*metrics_server)->port() << ")";

  services::WaitForShutdown();
  DF_LOG(INFO) << "shutting down";
  (*shard)->Close();  // wakes inserts and samples waiting for the rate limiter
  server->server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  server->server->Wait();
  shard->reset();  // last checkpoint
  return 0;
}

}  // namespace
}  // namespace dreamfleet::replay

int main(int argc, char** argv) { return dreamfleet::replay::Run(argc, argv); }
