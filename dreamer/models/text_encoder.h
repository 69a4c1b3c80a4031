// TextEncoder: int tokens [N, L] in [0, vocab) -> features [N, units]. Token + learned position
// embeddings, one transformer encoder layer (post-norm, as LibTorch 1.13 builds it), mean pool,
// Norm + SiLU. Deliberately small: text observations (e.g. game dialogue) are short and their
// embedding joins the image features.
#pragma once

#include <torch/torch.h>

#include <string>

#include "dreamer/models/norm.h"

namespace dreamfleet::dreamer {

struct TextEncoderOptions {
  TextEncoderOptions(int64_t vocab, int64_t length, int64_t units)
      : vocab_(vocab), length_(length), units_(units) {}
  TORCH_ARG(int64_t, vocab);
  TORCH_ARG(int64_t, length);
  TORCH_ARG(int64_t, units);
  TORCH_ARG(int64_t, heads) = 2;
  TORCH_ARG(std::string, norm) = "rms";
};

class TextEncoderImpl : public torch::nn::Module {
 public:
  explicit TextEncoderImpl(TextEncoderOptions options);
  torch::Tensor forward(const torch::Tensor& tokens);  // [N, L] -> [N, units]

 private:
  TextEncoderOptions options_;
  torch::nn::Embedding token_{nullptr};
  torch::Tensor position_;  // [L, units]
  torch::nn::TransformerEncoderLayer layer_{nullptr};
  Norm out_norm_{nullptr};
};
TORCH_MODULE(TextEncoder);

}  // namespace dreamfleet::dreamer
