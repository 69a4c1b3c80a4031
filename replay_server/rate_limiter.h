// Samples-per-insert rate limiter (Reverb's SampleToInsertRatio, DreamerV3's train_ratio). Counts
// are in steps: an insert of a chunk adds its steps, a B x T batch adds B*T replayed steps. With
// ratio r, tolerance e and minimum size m, the "error" is inserted*r - sampled. Inserts may go on
// while inserted < m or error <= r*m + e; samples may go on once inserted >= m and
// error >= r*m - e. A ratio of 0 turns the ratio off (only the minimum size holds back samples).
// Not thread-safe: the Table calls it under its own mutex and waits on its conditions.
#pragma once

#include <cstdint>

#include "dreamfleet/v1/replay.pb.h"

namespace dreamfleet::replay {

struct RateLimiterOptions {
  double samples_per_insert = 0;
  double tolerance = 0;
  uint64_t min_size_to_sample = 1;
};

class RateLimiter {
 public:
  explicit RateLimiter(RateLimiterOptions options) : options_(options) {}

  bool CanInsert(uint64_t steps) const;
  bool CanSample(uint64_t steps) const;
  void Inserted(uint64_t steps) { inserted_ += steps; }
  void Sampled(uint64_t steps) { sampled_ += steps; }
  // Restores lifetime counters (checkpoint restore).
  void Restore(uint64_t inserted, uint64_t sampled) {
    inserted_ = inserted;
    sampled_ = sampled;
  }

  uint64_t inserted() const { return inserted_; }
  uint64_t sampled() const { return sampled_; }
  const RateLimiterOptions& options() const { return options_; }
  // Fills everything but the wait-time fields.
  void FillInfo(uint64_t insert_probe_steps, uint64_t sample_probe_steps,
                v1::RateLimiterInfo* info) const;

 private:
  RateLimiterOptions options_;
  uint64_t inserted_ = 0;
  uint64_t sampled_ = 0;
};

}  // namespace dreamfleet::replay
