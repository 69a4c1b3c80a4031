// The environment plug-in interface. Data flow: the caller owns one StepBuffer per env (often a row
// of a VectorEnv batch); Reset(seed) and Step(action) write the observation, reward and flags into
// it. An env is described by its EnvSpec and built by name through the registry (registry.h).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "services/step_record.h"

namespace dreamfleet::envs {

// What an env observes and how it is acted upon. Sizes are fixed for the env's lifetime.
struct EnvSpec {
  std::string name;
  int image_height = 64;
  int image_width = 64;
  int image_channels = 3;  // 3 (RGB) or 1 (grayscale)
  int vector_size = 0;     // 0 = no `vector` observation (float32)
  // > 0 when the vector is a square grid of cells with this many channels each, channel-last
  // (entry cell * channels + channel): how reports draw it. 0: a plain vector.
  int vector_grid_channels = 0;
  int text_length = 0;     // 0 = no `text` observation (int32 tokens)
  int text_vocab = 0;      // tokens are in [0, text_vocab)
  int num_actions = 0;     // discrete actions [0, num_actions)
  std::vector<std::string> action_names;
  float reward_min = -1.0f;
  float reward_max = 1.0f;
  int max_episode_steps = 0;  // time limit in agent steps (0 = none)

  int64_t image_bytes() const {
    return static_cast<int64_t>(image_height) * image_width * image_channels;
  }
  // The observation sizes of this env's step records (services/step_record.h).
  services::StepShape step_shape() const {
    return {image_height, image_width, image_channels, vector_size, text_length};
  }
};

// One step's output, written by the env into caller-owned memory. DreamerV3 semantics:
// is_first on the observation returned by Reset (reward 0); is_last on the final step of an
// episode; is_terminal only when the episode ended by the env's own rules (not a time limit).
struct StepBuffer {
  uint8_t* image = nullptr;  // [H, W, C]
  float* vector = nullptr;   // [vector_size] or null
  int32_t* text = nullptr;   // [text_length] or null
  float reward = 0.0f;
  bool is_first = false;
  bool is_last = false;
  bool is_terminal = false;
  bool success = false;  // the episode reached its goal (for success-rate metrics)
};

class Environment {
 public:
  virtual ~Environment() = default;
  virtual const EnvSpec& spec() const = 0;
  // Starts a new episode seeded by `seed`, writes its first observation (is_first).
  virtual absl::Status Reset(uint64_t seed, StepBuffer* out) = 0;
  // Applies `action` in [0, num_actions) and writes the resulting step.
  virtual absl::Status Step(int action, StepBuffer* out) = 0;
  // A picture of the current state for people (episode GIFs), whatever the observation is:
  // [*height, *width, 3] RGB into *rgb. UNIMPLEMENTED for envs without one (envs that observe an
  // image can show that instead).
  virtual absl::Status RenderRgb(std::vector<uint8_t>* rgb, int* height, int* width) {
    (void)rgb, (void)height, (void)width;
    return absl::UnimplementedError(absl::StrCat("env ", spec().name, " cannot render a picture"));
  }
};

}  // namespace dreamfleet::envs
