#include "tests/in_process_shard.h"

#include <chrono>
#include <filesystem>

#include "services/status_macros.h"
#include "tests/test_process.h"

namespace dreamfleet::testing {

absl::StatusOr<std::unique_ptr<InProcessShard>> InProcessShard::Start(
    const services::Config& config) {
  std::unique_ptr<InProcessShard> s(new InProcessShard());
  s->data_dir_ = MakeTempDir("in_process_shard_");
  replay::ShardOptions options = replay::ShardOptionsFromConfig(config, 0);
  options.data_dir = s->data_dir_;
  ASSIGN_OR_RETURN(s->shard_, replay::ReplayShard::Open(options, &s->metrics_));
  s->service_ = std::make_unique<replay::ReplayServiceImpl>(s->shard_.get(), &s->metrics_,
                                                            replay::ReplayServiceOptions());
  ASSIGN_OR_RETURN(s->server_, services::StartGrpcServer("127.0.0.1", 0, {s->service_.get()}));
  s->address_ = services::JoinHostPort("127.0.0.1", s->server_.port);
  return s;
}

InProcessShard::~InProcessShard() {
  if (shard_) shard_->Close();  // wakes blocked inserts and samples
  if (server_.server) {
    server_.server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    server_.server->Wait();
  }
  shard_.reset();
  std::error_code ignored;
  std::filesystem::remove_all(data_dir_, ignored);
}

}  // namespace dreamfleet::testing
