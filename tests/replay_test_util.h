// Helpers for the replay integration tests: start a real dreamfleet-replay process on port 0 with
// a temp data dir and read its bound ports; turn test chunks into client StepChunks.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "dreamfleet/v1/replay.grpc.pb.h"
#include "replay_server/sharded_replay_client.h"
#include "replay_server/test_util.h"
#include "services/grpc_util.h"
#include "tests/test_process.h"

namespace dreamfleet::replay::testing {

struct ShardProcess {
  std::unique_ptr<dreamfleet::testing::TestProcess> process;
  std::string data_dir;
  int port = 0;
  int metrics_port = 0;
  std::string address() const { return absl::StrCat("127.0.0.1:", port); }
};

// Starts a shard with `data_dir` and the `--set` overrides in `sets` (on top of port 0, metrics
// port 0, 1 ms fsync interval, min_size_to_sample 1, sequence_length 8).
inline absl::StatusOr<ShardProcess> StartShard(const std::string& data_dir,
                                               const std::vector<std::string>& sets = {},
                                               int port = 0) {
  std::vector<std::string> argv = {dreamfleet::testing::BinaryPath("dreamfleet-replay")};
  std::vector<std::string> all = {absl::StrCat("replay.port=", port),
                                  "replay.metrics_port=0",
                                  "replay.data_dir=" + data_dir,
                                  "replay.wal_fsync_interval_ms=1",
                                  "replay.min_size_to_sample=1",
                                  "replay.samples_per_insert=0",
                                  "replay.sequence_length=8",
                                  "learner.batch_length=8",
                                  "replay.capacity_steps=100000"};
  all.insert(all.end(), sets.begin(), sets.end());
  for (const std::string& set : all) {
    argv.push_back("--set");
    argv.push_back(set);
  }
  ShardProcess shard;
  shard.data_dir = data_dir;
  absl::StatusOr<std::unique_ptr<dreamfleet::testing::TestProcess>> process =
      dreamfleet::testing::TestProcess::Start(argv);
  if (!process.ok()) return process.status();
  shard.process = std::move(*process);
  absl::StatusOr<int> grpc_port = shard.process->WaitForPort("listening on ");
  if (!grpc_port.ok()) return grpc_port.status();
  absl::StatusOr<int> metrics_port = shard.process->WaitForPort("metrics on ");
  if (!metrics_port.ok()) return metrics_port.status();
  shard.port = *grpc_port;
  shard.metrics_port = *metrics_port;
  return shard;
}

inline StepChunk ToStepChunk(const v1::Chunk& chunk) {
  StepChunk out;
  out.actor_id = chunk.actor_id();
  out.sequence = chunk.sequence();
  out.num_steps = chunk.num_steps();
  out.weights_version = chunk.weights_version();
  for (const v1::NamedTensor& t : chunk.data()) {
    services::NamedTensor tensor;
    tensor.name = t.name();
    tensor.dtype = t.tensor().dtype();
    tensor.shape.assign(t.tensor().shape().begin(), t.tensor().shape().end());
    tensor.data = t.tensor().data();
    out.fields.push_back(std::move(tensor));
  }
  return out;
}

inline std::unique_ptr<v1::ReplayService::Stub> NewStub(const std::string& address) {
  return v1::ReplayService::NewStub(services::CreateChannel(address));
}

}  // namespace dreamfleet::replay::testing
