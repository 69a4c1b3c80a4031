// Encoder: every observation of one step -> one embedding [N, E] (image CNN features, symlog'd
// vector MLP (or grid CNN) features and text transformer features, concatenated). Shared by the
// world model and the exported Policy.
#pragma once

#include <torch/torch.h>

#include "dreamer/agent_config.h"
#include "dreamer/models/grid_encoder.h"
#include "dreamer/models/image_encoder.h"
#include "dreamer/models/mlp.h"
#include "dreamer/models/text_encoder.h"

namespace dreamfleet::dreamer {

// One step (or a flattened batch of steps) of observations; absent parts are undefined tensors.
struct Observation {
  torch::Tensor image;   // uint8 [N, H, W, C]
  torch::Tensor vector;  // float [N, V]
  torch::Tensor text;    // int [N, L]
};

class EncoderImpl : public torch::nn::Module {
 public:
  explicit EncoderImpl(const AgentConfig& config);
  torch::Tensor forward(const Observation& obs);  // -> [N, out_size()]
  int64_t out_size() const { return out_size_; }

 private:
  int64_t out_size_ = 0;
  ImageEncoder image_{nullptr};
  Mlp vector_{nullptr};
  GridEncoder vector_grid_{nullptr};  // vector_encoder = "grid", in place of vector_
  TextEncoder text_{nullptr};
};
TORCH_MODULE(Encoder);

}  // namespace dreamfleet::dreamer
