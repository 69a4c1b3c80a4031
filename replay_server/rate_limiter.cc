#include "replay_server/rate_limiter.h"

namespace dreamfleet::replay {

bool RateLimiter::CanInsert(uint64_t steps) const {
  if (options_.samples_per_insert <= 0) return true;
  if (inserted_ + steps <= options_.min_size_to_sample) return true;
  const double r = options_.samples_per_insert;
  const double error = static_cast<double>(inserted_ + steps) * r - static_cast<double>(sampled_);
  const double max_error = r * static_cast<double>(options_.min_size_to_sample) + options_.tolerance;
  return error <= max_error;
}

bool RateLimiter::CanSample(uint64_t steps) const {
  if (inserted_ < options_.min_size_to_sample) return false;
  if (options_.samples_per_insert <= 0) return true;
  const double r = options_.samples_per_insert;
  const double error = static_cast<double>(inserted_) * r - static_cast<double>(sampled_ + steps);
  const double min_error = r * static_cast<double>(options_.min_size_to_sample) - options_.tolerance;
  return error >= min_error;
}

void RateLimiter::FillInfo(uint64_t insert_probe_steps, uint64_t sample_probe_steps,
                           v1::RateLimiterInfo* info) const {
  info->set_samples_per_insert(options_.samples_per_insert);
  info->set_tolerance(options_.tolerance);
  info->set_min_size_to_sample(options_.min_size_to_sample);
  info->set_inserts_blocked(!CanInsert(insert_probe_steps));
  info->set_samples_blocked(!CanSample(sample_probe_steps));
}

}  // namespace dreamfleet::replay
