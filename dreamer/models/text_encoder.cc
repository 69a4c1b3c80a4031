#include "dreamer/models/text_encoder.h"

#include "dreamer/models/init.h"

namespace dreamfleet::dreamer {

TextEncoderImpl::TextEncoderImpl(TextEncoderOptions options) : options_(std::move(options)) {
  const int64_t d = options_.units();
  token_ = register_module("token", torch::nn::Embedding(options_.vocab(), d));
  TruncNormalInit(token_->weight, d);
  position_ = register_parameter("position", torch::empty({options_.length(), d}));
  TruncNormalInit(position_, d);
  const int64_t heads = d % options_.heads() == 0 ? options_.heads() : 1;
  layer_ = register_module(
      "layer",
      torch::nn::TransformerEncoderLayer(
          torch::nn::TransformerEncoderLayerOptions(d, heads).dim_feedforward(2 * d).dropout(0.0)));
  out_norm_ = register_module("out_norm", Norm(NormOptions(d, options_.norm())));
}

torch::Tensor TextEncoderImpl::forward(const torch::Tensor& tokens) {
  auto x = token_->forward(tokens.to(torch::kLong).clamp(0, options_.vocab() - 1)) + position_;
  x = layer_->forward(x.transpose(0, 1)).transpose(0, 1);  // the layer wants [L, N, E]
  return torch::silu(out_norm_->forward(x.mean(1)));
}

}  // namespace dreamfleet::dreamer
