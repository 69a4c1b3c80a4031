#include "actor/chunk_builder.h"

namespace dreamfleet::actor {

ChunkBuilder::ChunkBuilder(std::string stream_id, const envs::EnvSpec& spec, int chunk_steps)
    : stream_id_(std::move(stream_id)), chunk_steps_(chunk_steps), steps_(spec.step_shape()) {
  steps_.Reserve(chunk_steps);
}

void ChunkBuilder::Append(const services::StepRecord& step) { steps_.Append(step); }

replay::StepChunk ChunkBuilder::Take(int64_t weights_version) {
  replay::StepChunk chunk;
  chunk.actor_id = stream_id_;
  chunk.sequence = sequence_++;
  chunk.num_steps = static_cast<uint32_t>(steps_.size());
  chunk.weights_version = weights_version;
  chunk.fields = steps_.ToTensors();
  steps_.Clear();
  return chunk;
}

}  // namespace dreamfleet::actor
