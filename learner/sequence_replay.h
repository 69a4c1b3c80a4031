// SequenceReplay: the in-memory replay of the single-process trainer (LocalTrainer). One FIFO ring
// of step records per env stream (services::StepColumns); Sample() draws B windows of T
// consecutive steps, uniformly over all complete windows (episodes continue across windows;
// is_first marks resets), into a dreamer::Batch through the same BatchFromFields as a replay
// shard's samples.
// With the config's replay_context, each step also keeps the latent the actor computed for it
// (deter as float, stoch as its class indices: the one-hot samples exactly, ~2.1 KB a step for
// the `1m` model); Sample() then draws T + 1 steps, the first one only as the batch's context
// (its latent and action), and WriteBack() stores the posterior latents an update computed for
// the T trained steps, so later windows start from latents that follow the model.
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

  // Copies `step` (its observation pointers must match the config's observations). With replay
  // context, `deter` [D] and `stoch` [S, C] (a one-hot sample) are the actor's latent for the step.
  void Add(int stream, const services::StepRecord& step, const float* deter = nullptr,
           const float* stoch = nullptr);
  // True once at least one stream holds a window of `length` steps (+ 1 with replay context).
  bool CanSample(int64_t length) const;
  dreamer::Batch Sample(int64_t batch, int64_t length);
  // Replay context: stores `deter` [B, T, D] and `stoch` [B, T, S, C] (float, CPU) as the latents
  // of the steps the last Sample() returned. False (nothing written) without replay context, when
  // the shapes do not match that sample, or when steps were added since (they may have replaced
  // the sampled ones).
  bool WriteBack(const torch::Tensor& deter, const torch::Tensor& stoch);
  int64_t size() const;  // steps held over all streams
  bool context() const { return context_; }

 private:
  struct Stream {
    explicit Stream(const services::StepShape& shape) : steps(shape) {}
    services::StepColumns steps;
    int64_t next = 0;   // ring position of the next write
    int64_t count = 0;  // steps held
    std::vector<float> deter;     // [ring, D] with replay context
    std::vector<uint8_t> stoch;   // [ring, S] class indices with replay context
  };
  struct Sampled {
    int stream;
    int64_t first;  // ring position of the first trained step
  };
  void SetLatent(Stream& s, int64_t position, const float* deter, const float* stoch);
  int64_t capacity_;
  bool context_;
  int64_t deter_size_, stoch_size_, classes_;
  std::vector<Stream> streams_;
  std::mt19937_64 rng_;
  std::vector<Sampled> last_sample_;
  int64_t last_length_ = 0;
  uint64_t adds_ = 0, adds_at_sample_ = 0;
};

}  // namespace dreamfleet::learner
