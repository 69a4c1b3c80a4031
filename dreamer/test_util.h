// Small helpers shared by the learner unit tests: a debug-sized config with images, vectors and
// text, and parameter snapshots.
#pragma once

#include <torch/torch.h>

#include <map>
#include <string>

#include "dreamer/agent_config.h"

namespace dreamfleet::dreamer::testing {

// The debug preset on a side x side grid of `channels`-channel cells (a vector observation only),
// 3 actions: what the grid encoder's and decoder's tests build on.
inline AgentConfig GridDebugConfig(int side, int channels) {
  AgentConfig c;
  (void)ApplyPreset("debug", &c);
  c.image_channels = 0;
  c.num_actions = 3;
  c.vector_size = side * side * channels;
  c.vector_grid_channels = channels;
  return c;
}

inline AgentConfig DebugConfig(bool image = true, bool vector = true, bool text = false) {
  AgentConfig c;
  (void)ApplyPreset("debug", &c);
  c.image_height = 16;
  c.image_width = 16;
  c.image_channels = image ? 3 : 0;
  c.cnn_mults = {2, 3};
  c.vector_size = vector ? 5 : 0;
  c.text_length = text ? 6 : 0;
  c.text_vocab = text ? 11 : 0;
  c.num_actions = 3;
  c.imag_horizon = 4;
  c.batch_size = 3;
  c.batch_length = 6;
  c.warmup = 0;
  c.lr = 1e-3f;
  c.threads = 1;
  return c;
}

inline std::map<std::string, torch::Tensor> Snapshot(const torch::nn::Module& module) {
  std::map<std::string, torch::Tensor> out;
  for (const auto& p : module.named_parameters()) out[p.key()] = p.value().detach().clone();
  for (const auto& b : module.named_buffers()) out[b.key()] = b.value().detach().clone();
  return out;
}

}  // namespace dreamfleet::dreamer::testing
