// Collects the steps of one env stream into replay chunks. The actor appends one step record per
// env per tick (services/step_record.h: observation, the reward that led to it, its flags, and
// the action then taken); when chunk_steps steps are in, Take() yields a replay::StepChunk whose
// fields are [n, ...per-step shape] and starts the next one with the following sequence number.
#pragma once

#include <cstdint>
#include <string>

#include "envs/environment.h"
#include "replay_server/sharded_replay_client.h"
#include "services/step_columns.h"

namespace dreamfleet::actor {

class ChunkBuilder {
 public:
  ChunkBuilder(std::string stream_id, const envs::EnvSpec& spec, int chunk_steps);

  // Copies one step in (its observation pointers may be null where the spec has none).
  void Append(const services::StepRecord& step);
  int size() const { return static_cast<int>(steps_.size()); }
  bool full() const { return size() >= chunk_steps_; }
  const std::string& stream_id() const { return stream_id_; }

  // The collected steps as a chunk (may be partial, e.g. at shutdown), then starts a new chunk.
  replay::StepChunk Take(int64_t weights_version);

 private:
  std::string stream_id_;
  int chunk_steps_;
  uint64_t sequence_ = 0;
  services::StepColumns steps_;
};

}  // namespace dreamfleet::actor
