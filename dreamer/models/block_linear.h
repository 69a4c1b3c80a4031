// BlockLinear: a block-diagonal linear layer (the official `BlockLinear` of the block GRU): the
// input [..., blocks * in/blocks] is split into `blocks` groups, each mapped by its own
// [in/blocks, out/blocks] matrix. `blocks` times fewer weights and FLOPs than a dense layer.
#pragma once

#include <torch/torch.h>

namespace dreamfleet::dreamer {

struct BlockLinearOptions {
  BlockLinearOptions(int64_t in, int64_t out, int64_t blocks)
      : in_(in), out_(out), blocks_(blocks) {}
  TORCH_ARG(int64_t, in);
  TORCH_ARG(int64_t, out);
  TORCH_ARG(int64_t, blocks);
};

class BlockLinearImpl : public torch::nn::Module {
 public:
  explicit BlockLinearImpl(BlockLinearOptions options);
  // [N, in] -> [N, out]
  torch::Tensor forward(const torch::Tensor& x);

 private:
  BlockLinearOptions options_;
  torch::Tensor weight_;  // [blocks, in/blocks, out/blocks]
  torch::Tensor bias_;    // [out]
};
TORCH_MODULE(BlockLinear);

}  // namespace dreamfleet::dreamer
