// Backend of `dreamfleet replay ...`: queries replay shards over gRPC and prints for humans (a
// table, the default) or scripts (--json).
//   dreamfleet replay info     [--address HOST:PORT] [--json]
//   dreamfleet replay episodes [--address HOST:PORT] [--actor ID] [--min-return X] [--max-return X]
//                              [--page-size N] [--page-token T | --all] [--json]
//   dreamfleet replay export   --episode ID --out FILE.gif|FILE.png [--address HOST:PORT]
//                              [--field image] [--fps 15] [--per-row 16]
// Without --address every shard of the config (--config/--set, replay.addresses or host:port+i)
// is queried (info, episodes) or the first one is used (export). `export` also writes FILE.json
// with the episode info and every non-image field per step (rewards, actions, flags).
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace dreamfleet::replay {

// argv[0] = "replay", argv[1] = the subcommand. Returns the process exit code (0 ok, 1 failed,
// 2 usage error).
int RunReplayCli(int argc, char** argv);
// The same with explicit streams (tests).
int RunReplayCommand(const std::vector<std::string>& args, std::ostream& out, std::ostream& err);

}  // namespace dreamfleet::replay
