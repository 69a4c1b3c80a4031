// GridDecoder: features [N, F] -> a `vector` observation that is a square grid of cells
// (EnvSpec::vector_grid_channels > 0; entry cell * channels + channel), in symlog space as the MLP
// decoder's. The MLP decoder ends in one linear layer from `units` features to every entry, so
// the grids it can draw span at most `units` dimensions: 8 cars in 8 lanes of 10 cells need 80,
// and the 1m preset has 64 (whether that is what limits the MinAtar models is not settled: on
// Freeway the posterior carried too little for either decoder to draw the cars; BENCHMARKS.md,
// "A/B: the grid decoder"). Here the MLP's
// features go to every cell with a learned embedding of that cell and a nonlinearity of its own
// (a spatial broadcast decoder), giving `depth` map channels per cell; two 3x3 same-padding
// convolutions with the same weights at every cell then draw each cell's channels from it and
// its neighbours, so an object is drawn by the same filters wherever it was seen. Selected by
// AgentConfig::vector_decoder = "grid".
#pragma once

#include <torch/torch.h>

#include <string>

#include "dreamer/models/mlp.h"
#include "dreamer/models/norm.h"

namespace dreamfleet::dreamer {

struct GridDecoderOptions {
  GridDecoderOptions(int64_t feat, int64_t side, int64_t channels)
      : feat_(feat), side_(side), channels_(channels) {}
  TORCH_ARG(int64_t, feat);        // input features
  TORCH_ARG(int64_t, side);        // cells per row and column
  TORCH_ARG(int64_t, channels);    // entries per cell
  TORCH_ARG(int64_t, depth) = 16;  // map channels per cell
  TORCH_ARG(int64_t, units) = 64;
  TORCH_ARG(int64_t, layers) = 3;  // MLP layers before the cells
  TORCH_ARG(std::string, norm) = "rms";
};

class GridDecoderImpl : public torch::nn::Module {
 public:
  explicit GridDecoderImpl(GridDecoderOptions options);
  // [N, feat] -> [N, side * side * channels]
  torch::Tensor forward(const torch::Tensor& feat);
  // The convolutions alone: a map [N, depth, side, side] (row, column) -> [N, side * side *
  // channels].
  torch::Tensor Render(const torch::Tensor& map);

 private:
  GridDecoderOptions options_;
  Mlp mlp_{nullptr};
  torch::nn::Linear to_cells_{nullptr};  // units -> units, added to each cell's embedding
  torch::Tensor cell_embedding_;         // [side * side, units]
  Norm cell_norm_{nullptr};              // over each cell's units
  torch::nn::Linear cell_out_{nullptr};  // units -> depth, the same at every cell
  torch::nn::ModuleList norms_{nullptr};
  torch::nn::ModuleList convs_{nullptr};
};
TORCH_MODULE(GridDecoder);

}  // namespace dreamfleet::dreamer
