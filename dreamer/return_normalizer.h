// Return normalisation for the DreamerV3 actor: tracks the 5th and 95th
// percentiles of lambda-returns with an exponential moving average and divides
// advantages by S = max(1, p95 - p5), so that large returns are scaled down
// while small returns are never scaled up. Data flow: actor_critic hands every
// batch of imagined returns to Update(), then uses Scale() (or Normalize()) on
// returns and values; the state travels in checkpoints through Save()/Load().
#ifndef DREAMFLEET_LEARNER_RETURN_NORMALIZER_H_
#define DREAMFLEET_LEARNER_RETURN_NORMALIZER_H_

#include <torch/torch.h>

#include <map>
#include <string>

#include "absl/status/status.h"

namespace dreamfleet::dreamer {

struct ReturnNormalizerOptions {
  double decay = 0.99;            // EMA decay per Update() (official rate 0.01).
  double low_percentile = 5.0;    // In [0, 100].
  double high_percentile = 95.0;  // In [0, 100], > low_percentile.
  double min_scale = 1.0;         // Floor of the scale (official "limit").
  // Divide the EMAs by (1 - decay^updates) as the official Normalize can; off
  // by default, matching the official retnorm config (see the .cc).
  bool debias = false;
};

// Not thread-safe; owned by the actor-critic trainer.
class ReturnNormalizer {
 public:
  explicit ReturnNormalizer(ReturnNormalizerOptions options = {},
                            torch::Device device = torch::kCPU);

  // Folds the percentiles of `returns` (any shape, at least one element;
  // detached and computed in float32) into the EMAs.
  void Update(const torch::Tensor& returns);

  // Current (debiased if enabled) low percentile estimate; 0-dim float32.
  torch::Tensor Offset() const;
  // max(min_scale, high - low); 0-dim float32. Before any Update it is min_scale.
  torch::Tensor Scale() const;
  // (x - Offset()) / Scale(), in x's dtype and device.
  torch::Tensor Normalize(const torch::Tensor& x) const;

  int64_t updates() const { return updates_; }
  const ReturnNormalizerOptions& options() const { return options_; }

  // State as named tensors {"low", "high", "corr", "updates"} (CPU copies), for
  // checkpoints; Load() restores it bit-for-bit onto this object's device and
  // fails with a message naming the missing or malformed key.
  std::map<std::string, torch::Tensor> Save() const;
  absl::Status Load(const std::map<std::string, torch::Tensor>& state);

 private:
  torch::Tensor Correction() const;

  ReturnNormalizerOptions options_;
  torch::Device device_;
  torch::Tensor low_;   // 0-dim float32 EMA of the low percentile.
  torch::Tensor high_;  // 0-dim float32 EMA of the high percentile.
  torch::Tensor corr_;  // 0-dim float32 EMA of 1 (debiasing), 1 - decay^updates.
  int64_t updates_ = 0;
};

}  // namespace dreamfleet::dreamer

#endif  // DREAMFLEET_LEARNER_RETURN_NORMALIZER_H_
