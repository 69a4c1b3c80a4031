// Runs K environments into one preallocated batch buffer, envpool-style. Data flow: the actor
// passes K actions to Step(); each env writes its row of the batch (image [K, H, W, C] uint8,
// reward [K] float, flags [K] uint8, optional vector [K, V] and text [K, L]); finished episodes
// are reported as EpisodeStats for metrics.
//
// DreamerV3's auto-reset: after a step with is_last, the next Step() ignores that env's action and
// resets it, writing an is_first observation (reward 0) in its row. An env that was never reset is
// reset by its first Step() the same way, so Reset() is optional. Episode seeds come from a
// per-env stream seeded by EnvSeed(base_seed, env_index): the whole batch is a deterministic
// function of base_seed and the actions, whatever num_threads is.
//
// num_threads > 1 steps contiguous blocks of envs on worker threads owned by the VectorEnv (the
// calling thread takes the first block); envs must then be safe to step on different threads,
// one env per thread at a time (true of the native envs and of libretro_core's private cores).
#pragma once

#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "envs/environment.h"
#include "envs/registry.h"
#include "envs/rng.h"

namespace dreamfleet::envs {

// One finished episode of one env.
struct EpisodeStats {
  int env = 0;                  // row in the batch
  int64_t episode = 0;          // per-env episode counter, from 0
  double episode_return = 0.0;  // sum of rewards
  int64_t length = 0;           // agent steps (the is_first observation is not a step)
  bool success = false;         // any step of the episode reported success
  bool terminal = false;        // ended by the env's rules (false: time limit)
};

class VectorEnv {
 public:
  // Builds num_envs envs from the registry; env i gets env_index = options.env_index + i.
  static absl::StatusOr<std::unique_ptr<VectorEnv>> Create(const EnvOptions& options, int num_envs,
                                                           int num_threads = 1);
  // Takes already-built envs (all with the same observation spec); env i seeds from
  // EnvSeed(base_seed, first_env_index + i).
  static absl::StatusOr<std::unique_ptr<VectorEnv>> Create(
      std::vector<std::unique_ptr<Environment>> envs, uint64_t base_seed, int first_env_index,
      int num_threads = 1);

  ~VectorEnv();  // joins the worker threads
  VectorEnv(const VectorEnv&) = delete;
  VectorEnv& operator=(const VectorEnv&) = delete;

  const EnvSpec& spec() const { return spec_; }
  int num_envs() const { return static_cast<int>(envs_.size()); }
  int num_threads() const { return static_cast<int>(workers_.size()) + 1; }
  Environment* env(int i) { return envs_[i].get(); }

  // Resets every env (each writes an is_first row). Optional: Step resets envs that need it.
  absl::Status Reset();
  // Steps every env with actions[i] (ignored for envs that reset this call). Not thread-safe:
  // one caller at a time.
  absl::Status Step(absl::Span<const int> actions);

  // The batch written by the latest Reset/Step.
  const uint8_t* image() const { return image_.data(); }              // [K, H, W, C]
  const float* reward() const { return reward_.data(); }              // [K]
  const uint8_t* is_first() const { return is_first_.data(); }        // [K]
  const uint8_t* is_last() const { return is_last_.data(); }          // [K]
  const uint8_t* is_terminal() const { return is_terminal_.data(); }  // [K]
  // Env i's current row of the batch with `action`, the action about to be taken in it, as a
  // step record (its observation pointers stay valid until the next Step or Reset).
  services::StepRecord Record(int i, int action) const;
  const uint8_t* success() const { return success_.data(); }          // [K]
  const float* vector() const { return vector_.empty() ? nullptr : vector_.data(); }  // [K, V]
  const int32_t* text() const { return text_.empty() ? nullptr : text_.data(); }      // [K, L]

  // Episodes that ended in the latest Step (in env order).
  const std::vector<EpisodeStats>& finished_episodes() const { return finished_; }
  int64_t total_steps() const { return total_steps_; }  // agent steps, resets not counted
  int64_t total_episodes() const { return total_episodes_; }

 private:
  struct Slot {
    Rng seeds;  // yields one Reset seed per episode
    bool needs_reset = true;
    int64_t episode = -1;
    double episode_return = 0.0;
    int64_t length = 0;
    bool success = false;
    // Written by the thread that stepped this env, read by Step() after all threads finish.
    absl::Status status;
    bool stepped = false;   // took an agent step (not a reset) in the latest Step()
    bool finished = false;  // its episode ended in the latest Step()
  };

  VectorEnv(std::vector<std::unique_ptr<Environment>> envs, uint64_t base_seed, int first_env_index,
            int num_threads);
  StepBuffer Row(int i);
  absl::Status ResetOne(int i);
  void StepOne(int i, int action);
  void StepBlock(int block, absl::Span<const int> actions);
  void WorkerLoop(int block);

  std::vector<std::unique_ptr<Environment>> envs_;
  EnvSpec spec_;
  std::vector<Slot> slots_;
  std::vector<uint8_t> image_;
  std::vector<float> reward_;
  std::vector<uint8_t> is_first_, is_last_, is_terminal_, success_;
  std::vector<float> vector_;
  std::vector<int32_t> text_;
  std::vector<EpisodeStats> finished_;
  int64_t total_steps_ = 0;
  int64_t total_episodes_ = 0;

  // Worker pool: Step() publishes actions and bumps generation_; worker b steps block b + 1.
  absl::Mutex mu_;
  int64_t generation_ ABSL_GUARDED_BY(mu_) = 0;
  int pending_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  absl::Span<const int> actions_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> workers_;
};

}  // namespace dreamfleet::envs
