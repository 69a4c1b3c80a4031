#include "dreamer/models/encoder.h"

#include "dreamer/distributions.h"
#include "dreamer/module_options.h"

namespace dreamfleet::dreamer {

EncoderImpl::EncoderImpl(const AgentConfig& c) {
  if (c.image_channels > 0) {
    image_ = register_module("image", ImageEncoder(CnnOptionsFor(c)));
    out_size_ += image_->out_size();
  }
  if (c.vector_size > 0 && c.vector_encoder == "grid") {
    vector_grid_ = register_module("vector_grid", GridEncoder(GridEncoderOptionsFor(c)));
    out_size_ += vector_grid_->out_size();
  } else if (c.vector_size > 0) {
    vector_ = register_module("vector",
                              Mlp(MlpOptions(c.vector_size, c.units, c.enc_layers).norm(c.norm)));
    out_size_ += vector_->out_size();
  }
  if (c.text_length > 0) {
    text_ = register_module(
        "text", TextEncoder(TextEncoderOptions(c.text_vocab, c.text_length, c.units).norm(c.norm)));
    out_size_ += c.units;
  }
}

torch::Tensor EncoderImpl::forward(const Observation& obs) {
  std::vector<torch::Tensor> parts;
  if (image_) parts.push_back(image_->forward(obs.image));
  if (vector_ || vector_grid_) {
    const torch::Tensor vector = Symlog(obs.vector.to(torch::kFloat32));
    parts.push_back(vector_ ? vector_->forward(vector) : vector_grid_->forward(vector));
  }
  if (text_) parts.push_back(text_->forward(obs.text));
  return parts.size() == 1 ? parts[0] : torch::cat(parts, -1);
}

}  // namespace dreamfleet::dreamer
