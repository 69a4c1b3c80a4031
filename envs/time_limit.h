// Adds a time limit to any Environment that has none of its own (e.g. an emulator): after
// max_steps agent steps the step is marked is_last (not is_terminal). Data flow: Reset/Step pass
// through to the wrapped env, which writes straight into the caller's StepBuffer.
#pragma once

#include <memory>
#include <utility>

#include "envs/environment.h"
#include "services/status_macros.h"

namespace dreamfleet::envs {

class TimeLimit : public Environment {
 public:
  // max_steps <= 0 leaves episodes unlimited.
  TimeLimit(std::unique_ptr<Environment> env, int max_steps)
      : env_(std::move(env)), spec_(env_->spec()), max_steps_(max_steps) {
    if (max_steps_ > 0) spec_.max_episode_steps = max_steps_;
  }

  const EnvSpec& spec() const override { return spec_; }
  Environment* wrapped() { return env_.get(); }

  absl::Status Reset(uint64_t seed, StepBuffer* out) override {
    steps_ = 0;
    return env_->Reset(seed, out);
  }

  absl::Status Step(int action, StepBuffer* out) override {
    RETURN_IF_ERROR(env_->Step(action, out));
    ++steps_;
    if (max_steps_ > 0 && steps_ >= max_steps_) out->is_last = true;
    return absl::OkStatus();
  }

 private:
  std::unique_ptr<Environment> env_;
  EnvSpec spec_;
  int max_steps_;
  int steps_ = 0;
};

}  // namespace dreamfleet::envs
