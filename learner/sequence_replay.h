// SequenceReplay: the in-memory replay of dreamfleet-train-local. One FIFO ring of steps per env
// stream; Sample() draws B windows of T consecutive steps, uniformly over all complete windows
// (episodes continue across windows; is_first marks resets), into a learner Batch.
// Data flow: env batch row + chosen action -> Add(env, step) ... -> Sample() -> DreamerAgent.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <random>
#include <vector>

#include "learner/agent_config.h"
#include "learner/batch.h"

namespace dreamfleet::learner {

// One step of one env stream, pointing at caller-owned data that Add() copies.
struct ReplayStep {
  const uint8_t* image = nullptr;  // [H, W, C] (when the config has images)
  const float* vector = nullptr;   // [V]
  const int32_t* text = nullptr;   // [L]
  int action = 0;                  // the action taken in this step
  float reward = 0.0f;
  bool is_first = false;
  bool is_last = false;
  bool is_terminal = false;
};

class SequenceReplay {
 public:
  // capacity_per_stream steps are kept per env stream (oldest evicted first).
  SequenceReplay(const AgentConfig& config, int streams, int64_t capacity_per_stream,
                 uint64_t seed);

  void Add(int stream, const ReplayStep& step);
  // True once at least one stream holds `length` steps.
  bool CanSample(int64_t length) const;
  Batch Sample(int64_t batch, int64_t length);
  int64_t size() const;  // steps held over all streams

 private:
  struct Stream {
    std::vector<uint8_t> image;
    std::vector<float> vector;
    std::vector<int32_t> text;
    std::vector<int64_t> action;
    std::vector<float> reward;
    std::vector<uint8_t> is_first, is_last, is_terminal;
    int64_t next = 0;   // ring position of the next write
    int64_t count = 0;  // steps held
  };
  AgentConfig config_;
  int64_t capacity_;
  int64_t image_bytes_;
  std::vector<Stream> streams_;
  std::mt19937_64 rng_;
};

}  // namespace dreamfleet::learner
