// The `dreamfleet` command: one binary, subcommands for running, inspecting and configuring a
// cluster.
#include <iostream>
#include <string>

#include "deploy/launcher.h"
#include "deploy/plot_command.h"
#include "google/protobuf/stubs/common.h"
#include "grpcpp/grpcpp.h"
#include "services/command_line.h"
#include "services/config.h"
#ifdef DREAMFLEET_HAVE_REPLAY_CLI
#include "replay_server/replay_cli.h"
#endif

namespace {

constexpr char kUsage[] = R"(Usage: dreamfleet <command> [flags]

dreamfleet trains DreamerV3 agents with many actor processes, sharded replay and one learner.

Commands:
  up              Run a local cluster from one config (default: the embedded default config).
  status          Show the learner, replay shards and actors of a running cluster.
  replay          Query a replay shard: replay info|episodes|export --address HOST:PORT.
  plot RUN_DIR    Draw a run's learning curve (its progress.csv) as RUN_DIR/curve.png.
  play            Play episodes with a trained agent into a GIF: play --run RUN_DIR.
  report          What an agent's world model imagines: report openloop|foresight --run RUN_DIR.
  config print    Print the merged config (--config FILE, --set section.key=value, --docs).
  version         Print the version and the library versions it was built with.

Run `dreamfleet <command> --help` for the flags of a command.
)";

int ConfigCommand(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) != "print") {
    if (argc >= 2 && (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h")) {
      std::cout << "Usage: dreamfleet config print [--config FILE] [--set section.key=value]... "
                   "[--docs]\n";
      return 0;
    }
    std::cerr << "error: expected `dreamfleet config print`\n";
    return 2;
  }
  bool docs = false;
  dreamfleet::services::CommandLine command_line(
      "dreamfleet config print [--config FILE] [--set section.key=value]... [--docs]",
      "Prints the config every process would run with: the file (or the embedded default) with "
      "every --set applied, validated, every key shown.");
  command_line.AddConfigFlags();
  command_line.AddBool("docs", &docs, "Print each key's documentation as a comment above it.");
  int exit_code = 0;
  if (!dreamfleet::services::ParseCommandLineOrExit(command_line, argc, argv, &exit_code, 2)) {
    return exit_code;
  }
  std::optional<dreamfleet::services::Config> config = dreamfleet::services::LoadConfigOrExit(
      command_line, "error", /*validate_cluster=*/false, &exit_code);
  if (!config) return exit_code;
  std::cout << dreamfleet::services::ConfigToYaml(*config, docs);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h" ||
      std::string(argv[1]) == "help") {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  if (command == "version" || command == "--version") {
    std::cout << "dreamfleet " << DREAMFLEET_VERSION << " (gRPC " << grpc::Version()
              << ", protobuf " << google::protobuf::internal::VersionString(GOOGLE_PROTOBUF_VERSION)
              << ")\n";
    return 0;
  }
  if (command == "config") return ConfigCommand(argc - 1, argv + 1);
  if (command == "up") return dreamfleet::deploy::RunUp(argc - 1, argv + 1);
  if (command == "status") return dreamfleet::deploy::RunStatus(argc - 1, argv + 1);
  if (command == "play") return dreamfleet::deploy::RunPlay(argc - 1, argv + 1);
  if (command == "report") return dreamfleet::deploy::RunReport(argc - 1, argv + 1);
  if (command == "plot") return dreamfleet::deploy::RunPlot(argc - 1, argv + 1, std::cout, std::cerr);
  if (command == "replay") {
#ifdef DREAMFLEET_HAVE_REPLAY_CLI
    return dreamfleet::replay::RunReplayCli(argc - 1, argv + 1);
#else
    std::cerr << "error: this build has no replay server (configure with -DDREAMFLEET_BUILD_REPLAY=ON)\n";
    return 2;
#endif
  }
  std::cerr << "error: unknown command \"" << command << "\"\n\n" << kUsage;
  return 2;
}
