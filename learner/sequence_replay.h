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
// Prioritised (priority_exponent > 0): a window is drawn with probability proportional to
// priority^exponent of its first step; SetPriorities() gives the windows of the last Sample()
// their losses (the agent's per-sequence reward + KL loss), and a new step starts at the moving
// average of the last ~100 priorities set (1 before any), so windows the model predicts badly come
// back more often without new data being starved or flooding the batch. 0: uniform, as above.
// Rewarded share (rewarded_share > 0): each window of a batch is, with that probability, drawn
// around a rewarded step instead (a step with a finite nonzero reward, uniformly over those held,
// the window's start uniform over the windows whose trained steps hold it), so a reward that random
// play meets once in thousands of steps reaches the reward head in most batches rather than one in
// ten (sparse-reward games: MinAtar Freeway's crossings). While few are held the same steps recur
// in every batch (after a first reward, about share x B windows hold that one step). Without a
// rewarded step held that fits a window (a stream shorter than a window; with replay context, a
// reward on the oldest held step, whose context is gone) the window is drawn as above. Data
// flow: env batch row + chosen action -> Add(env, step) ... -> Sample() -> DreamerAgent
// [-> SetPriorities(the update's per-sequence losses)].
#pragma once

#include <cstdint>
#include <deque>
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
                 uint64_t seed, double priority_exponent = 0.0, double rewarded_share = 0.0);

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
  // Prioritised sampling: `losses` [B] of the windows the last Sample() returned become their
  // first steps' priorities (a window whose loss is not finite keeps its priority). False
  // (nothing set) when sampling is uniform, the count does not match that sample, or steps were
  // added since.
  bool SetPriorities(const std::vector<double>& losses);
  int64_t size() const;  // steps held over all streams
  int64_t capacity_per_stream() const { return capacity_; }
  int64_t rewarded_steps() const;  // steps held with a finite nonzero reward, over all streams
  int64_t rewarded_draws() const { return rewarded_draws_; }  // windows drawn around one so far
  bool context() const { return context_; }
  bool prioritized() const { return exponent_ > 0.0; }
  // The sampling weight (priority^exponent) of stream `stream`'s step at ring position `position`.
  double weight(int stream, int64_t position) const;

 private:
  struct Stream {
    explicit Stream(const services::StepShape& shape) : steps(shape) {}
    services::StepColumns steps;
    int64_t next = 0;   // ring position of the next write
    int64_t count = 0;  // steps held
    int64_t written = 0;  // steps ever written: step number n sits at ring position n % capacity
    std::deque<int64_t> rewarded;  // step numbers of the held steps with reward != 0, oldest first
    std::vector<float> deter;     // [ring, D] with replay context
    std::vector<uint8_t> stoch;   // [ring, S] class indices with replay context
  };
  struct Sampled {
    int stream;
    int64_t first;  // ring position of the first trained step
    int64_t start;  // ring position of the window's first step (the context, if any)
  };
  void SetLatent(Stream& s, int64_t position, const float* deter, const float* stoch);
  // Fenwick tree over all streams' ring positions (index stream * capacity + position) holding
  // each step's sampling weight; only used when prioritised.
  void SetWeight(int64_t index, double weight);
  int64_t FindByWeight(double u) const;  // the index where the running weight sum passes u
  // A window of `window` steps whose trained steps (all but the first `ctx`) hold a rewarded step:
  // sets *stream and *start (a ring position) and returns true, or false when none fits.
  bool DrawRewarded(int64_t window, int64_t ctx, int* stream, int64_t* start);
  double exponent_;
  double rewarded_share_;
  int64_t rewarded_draws_ = 0;
  std::vector<double> weights_;  // per index, the leaf values of the tree
  std::vector<double> tree_;     // 1-based Fenwick sums
  double total_weight_ = 0;
  double mean_priority_ = 1.0;  // moving average of the priorities set; a new step's priority
  int64_t priorities_set_ = 0;
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
