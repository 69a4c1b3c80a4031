// Helpers for replay tests: chunks of a tiny signature (image uint8 [H,W,3], action float32 [2],
// reward float32, is_first/is_last/is_terminal bool) with recognisable contents.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dreamfleet/v1/replay.pb.h"

namespace dreamfleet::replay::testing {

struct ChunkSpec {
  std::string actor_id = "actor-0";
  uint64_t sequence = 0;
  uint32_t num_steps = 8;
  int image_size = 4;              // images are [image_size, image_size, 3]
  uint32_t first_step_value = 0;   // image bytes of step k are (first_step_value + k) & 0xff
  std::vector<int> episode_starts; // steps (within the chunk) with is_first = 1
  std::vector<int> episode_ends;   // steps with is_last = 1
  float reward = 1.0f;             // every step's reward, except...
  std::vector<int> reward_steps;   // ...when set: these steps get `reward` and the others 0
};

inline void AddTensor(v1::Chunk* chunk, const std::string& name, v1::DType dtype,
                      std::vector<int64_t> shape, std::string data) {
  v1::NamedTensor* t = chunk->add_data();
  t->set_name(name);
  t->mutable_tensor()->set_dtype(dtype);
  for (int64_t d : shape) t->mutable_tensor()->add_shape(d);
  t->mutable_tensor()->set_data(std::move(data));
}

inline v1::Chunk MakeChunk(const ChunkSpec& spec) {
  v1::Chunk chunk;
  chunk.set_actor_id(spec.actor_id);
  chunk.set_sequence(spec.sequence);
  chunk.set_num_steps(spec.num_steps);
  const int64_t n = spec.num_steps;
  const int64_t image_bytes = int64_t{spec.image_size} * spec.image_size * 3;
  std::string image(n * image_bytes, '\0');
  for (int64_t k = 0; k < n; ++k) {
    for (int64_t i = 0; i < image_bytes; ++i) {
      image[k * image_bytes + i] = static_cast<char>((spec.first_step_value + k) & 0xff);
    }
  }
  AddTensor(&chunk, "image", v1::DTYPE_UINT8, {n, spec.image_size, spec.image_size, 3},
            std::move(image));
  std::vector<float> action(n * 2);
  for (int64_t k = 0; k < n; ++k) action[2 * k] = static_cast<float>(spec.first_step_value + k);
  AddTensor(&chunk, "action", v1::DTYPE_FLOAT32, {n, 2},
            std::string(reinterpret_cast<const char*>(action.data()), action.size() * 4));
  std::vector<float> reward(n, spec.reward_steps.empty() ? spec.reward : 0.0f);
  for (int k : spec.reward_steps) reward[k] = spec.reward;
  AddTensor(&chunk, "reward", v1::DTYPE_FLOAT32, {n},
            std::string(reinterpret_cast<const char*>(reward.data()), reward.size() * 4));
  std::string is_first(n, '\0'), is_last(n, '\0');
  for (int k : spec.episode_starts) is_first[k] = 1;
  for (int k : spec.episode_ends) is_last[k] = 1;
  AddTensor(&chunk, "is_first", v1::DTYPE_BOOL, {n}, is_first);
  AddTensor(&chunk, "is_last", v1::DTYPE_BOOL, {n}, is_last);
  AddTensor(&chunk, "is_terminal", v1::DTYPE_BOOL, {n}, is_last);
  return chunk;
}

inline v1::NamedTensor* FindField(v1::Chunk* chunk, const std::string& name) {
  for (v1::NamedTensor& t : *chunk->mutable_data()) {
    if (t.name() == name) return &t;
  }
  return nullptr;
}

}  // namespace dreamfleet::replay::testing
