// Collects the steps of one env stream into replay chunks. The actor appends one step per env per
// tick (observation, the reward that led to it, its flags, and the action then taken: DreamerV3's
// step layout); when chunk_steps steps are in, Take() yields a replay::StepChunk whose fields are
// [n, ...per-step shape] and starts the next one with the following sequence number.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "actor/envs/environment.h"
#include "replay_server/sharded_replay_client.h"

namespace dreamfleet::actor {

class ChunkBuilder {
 public:
  ChunkBuilder(std::string stream_id, const EnvSpec& spec, int chunk_steps);

  // Copies one step in. `vector`/`text` may be null when the spec has none.
  void Append(const uint8_t* image, const float* vector, const int32_t* text, int32_t action,
              float reward, bool is_first, bool is_last, bool is_terminal);
  int size() const { return size_; }
  bool full() const { return size_ >= chunk_steps_; }
  const std::string& stream_id() const { return stream_id_; }

  // The collected steps as a chunk (may be partial, e.g. at shutdown), then starts a new chunk.
  replay::StepChunk Take(int64_t weights_version);

 private:
  std::string stream_id_;
  EnvSpec spec_;
  int chunk_steps_;
  uint64_t sequence_ = 0;
  int size_ = 0;
  std::vector<uint8_t> image_;
  std::vector<float> vector_;
  std::vector<int32_t> text_;
  std::vector<int32_t> action_;
  std::vector<float> reward_;
  std::vector<uint8_t> is_first_, is_last_, is_terminal_;
};

}  // namespace dreamfleet::actor
