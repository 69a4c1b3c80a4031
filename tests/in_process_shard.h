// InProcessShard: a real replay shard (ReplayShard + ReplayServiceImpl) served on 127.0.0.1 at a
// free port inside the test process, for the loop tests of the actor and the learner. Its data
// dir is a fresh temp dir (removed on destruction).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "replay_server/replay_service.h"
#include "replay_server/replay_shard.h"
#include "services/config.h"
#include "services/grpc_util.h"
#include "services/metrics.h"

namespace dreamfleet::testing {

class InProcessShard {
 public:
  // The table and limiter settings come from `config.replay` (ShardOptionsFromConfig).
  static absl::StatusOr<std::unique_ptr<InProcessShard>> Start(const services::Config& config);
  ~InProcessShard();

  const std::string& address() const { return address_; }
  replay::ReplayShard* shard() { return shard_.get(); }

 private:
  InProcessShard() = default;
  std::string data_dir_;
  services::Metrics metrics_;
  std::unique_ptr<replay::ReplayShard> shard_;
  std::unique_ptr<replay::ReplayServiceImpl> service_;
  services::StartedServer server_;
  std::string address_;
};

}  // namespace dreamfleet::testing
