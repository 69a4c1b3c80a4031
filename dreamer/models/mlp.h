// Mlp: `layers` x (Linear -> Norm -> SiLU), optionally followed by an output Linear whose
// initial weights are scaled by `outscale` (0 = zero-initialised, as the official reward and value
// heads). Used for the vector encoder/decoder, the reward/continue heads, the actor and the critic.
#pragma once

#include <torch/torch.h>

#include <string>

#include "dreamer/models/norm.h"

namespace dreamfleet::dreamer {

struct MlpOptions {
  MlpOptions(int64_t in, int64_t units, int64_t layers) : in_(in), units_(units), layers_(layers) {}
  TORCH_ARG(int64_t, in);
  TORCH_ARG(int64_t, units);
  TORCH_ARG(int64_t, layers);
  TORCH_ARG(int64_t, out) = 0;  // 0 = no output layer (returns the hidden features)
  TORCH_ARG(double, outscale) = 1.0;
  TORCH_ARG(std::string, norm) = "rms";
};

class MlpImpl : public torch::nn::Module {
 public:
  explicit MlpImpl(MlpOptions options);
  // [..., in] -> [..., out] (or [..., units] without an output layer).
  torch::Tensor forward(torch::Tensor x);
  int64_t out_size() const;

 private:
  MlpOptions options_;
  torch::nn::ModuleList linears_{nullptr};
  torch::nn::ModuleList norms_{nullptr};
  torch::nn::Linear out_{nullptr};
};
TORCH_MODULE(Mlp);

}  // namespace dreamfleet::dreamer
