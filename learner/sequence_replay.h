// SequenceReplay: the in-memory replay of the single-process trainer (LocalTrainer). One FIFO ring
// of step records per env stream (services::StepColumns); Sample() draws B windows of T
// consecutive steps, uniformly over all complete windows (episodes continue across windows;
// is_first marks resets), into a dreamer::Batch through the same BatchFromFields as a replay
// shard's samples.
// Data flow: env batch row + chosen action -> Add(env, step) ... -> Sample() -> DreamerAgent.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "dreamer/agent_config.h"
#include "dreamer/batch.h"
#include "services/step_columns.h"

namespace dreamfleet::learner {

class SequenceReplay {
 public:
  // capacity_per_stream steps are kept per env stream (oldest evicted first).
  SequenceReplay(const dreamer::AgentConfig& config, int streams, int64_t capacity_per_stream,
                 uint64_t seed);

  // Copies `step` (its observation pointers must match the config's observations).
  void Add(int stream, const services::StepRecord& step);
  // True once at least one stream holds `length` steps.
  bool CanSample(int64_t length) const;
  dreamer::Batch Sample(int64_t batch, int64_t length);
  int64_t size() const;  // steps held over all streams

 private:
  struct Stream {
    explicit Stream(const services::StepShape& shape) : steps(shape) {}
    services::StepColumns steps;
    int64_t next = 0;   // ring position of the next write
    int64_t count = 0;  // steps held
  };
  int64_t capacity_;
  std::vector<Stream> streams_;
  std::mt19937_64 rng_;
};

}  // namespace dreamfleet::learner
