// GridEncoder: a `vector` observation that is a square grid of cells (EnvSpec::vector_grid_channels
// > 0: MinAtar's channel grid, the gridworld's symbolic view; entry cell * channels + channel)
// -> flat features [N, out_size()]. Two 3x3 same-padding convolutions (channel Norm, SiLU) look at
// every cell and its neighbours with the same weights, so "the player stands on an enemy" or "gold
// beside the player" is one learned filter wherever it happens, as MinAtar's own baselines see the
// grid; then the vector MLP reads the flattened map. Inputs are the symlog'd vector, as the MLP
// encoder's. Selected by AgentConfig::vector_encoder = "grid".
#pragma once

#include <torch/torch.h>

#include <string>

#include "dreamer/models/mlp.h"

namespace dreamfleet::dreamer {

struct GridEncoderOptions {
  GridEncoderOptions(int64_t side, int64_t channels) : side_(side), channels_(channels) {}
  TORCH_ARG(int64_t, side);        // cells per row and column
  TORCH_ARG(int64_t, channels);    // entries per cell
  TORCH_ARG(int64_t, depth) = 16;  // convolution channels
  TORCH_ARG(int64_t, units) = 64;
  TORCH_ARG(int64_t, layers) = 3;  // MLP layers after the convolutions
  TORCH_ARG(std::string, norm) = "rms";
};

class GridEncoderImpl : public torch::nn::Module {
 public:
  explicit GridEncoderImpl(GridEncoderOptions options);
  // float [N, side * side * channels] -> [N, out_size()]
  torch::Tensor forward(const torch::Tensor& vector);
  // The convolutions' output map [N, depth, side, side] (row, column), before the MLP.
  torch::Tensor Map(const torch::Tensor& vector);
  int64_t out_size() const { return mlp_->out_size(); }

 private:
  GridEncoderOptions options_;
  torch::nn::ModuleList convs_{nullptr};
  torch::nn::ModuleList norms_{nullptr};
  Mlp mlp_{nullptr};
};
TORCH_MODULE(GridEncoder);

}  // namespace dreamfleet::dreamer
