#include "learner/models/image_decoder.h"

#include "learner/models/init.h"

namespace dreamfleet::learner {

ImageDecoderImpl::ImageDecoderImpl(ImageDecoderOptions options) : options_(std::move(options)) {
  const auto& mults = options_.mults();
  const int64_t n = mults.size();
  minh_ = options_.height() >> n;
  minw_ = options_.width() >> n;
  transpose_ = options_.mode() == "strided" && options_.upsample() == "transpose";
  const int64_t top = options_.depth() * mults.back();
  space_ = register_module("space", torch::nn::Linear(options_.feat(), top * minh_ * minw_));
  InitLinear(space_);
  space_norm_ = register_module("space_norm", Norm(NormOptions(top, options_.norm()).dim(1)));
  convs_ = register_module("convs", torch::nn::ModuleList());
  norms_ = register_module("norms", torch::nn::ModuleList());
  const int64_t k = options_.mode() == "official" ? 5 : 3;
  int64_t in = top;
  // Stages mirror the encoder: depths mults[n-2], ..., mults[0], then the image channels.
  for (int64_t i = n - 2; i >= -1; --i) {
    const bool last = i < 0;
    const int64_t out = last ? options_.channels() : options_.depth() * mults[i];
    if (transpose_) {
      auto conv = torch::nn::ConvTranspose2d(
          torch::nn::ConvTranspose2dOptions(in, out, 4).stride(2).padding(1));
      InitConv(conv->weight, conv->bias, in * 16);
      convs_->push_back(conv);
    } else {
      auto conv = torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, k).padding(k / 2));
      InitConv(conv->weight, conv->bias, in * k * k);
      convs_->push_back(conv);
    }
    if (!last) norms_->push_back(Norm(NormOptions(out, options_.norm()).dim(1)));
    in = out;
  }
}

torch::Tensor ImageDecoderImpl::forward(const torch::Tensor& feat) {
  const int64_t top = options_.depth() * options_.mults().back();
  auto x = space_->forward(feat).view({feat.size(0), top, minh_, minw_});
  if (options_.channels_last()) x = x.contiguous(torch::MemoryFormat::ChannelsLast);
  x = torch::silu(space_norm_->forward(x));
  for (size_t i = 0; i < convs_->size(); ++i) {
    if (transpose_) {
      x = convs_[i]->as<torch::nn::ConvTranspose2d>()->forward(x);
    } else {
      x = torch::upsample_nearest2d(x, {x.size(2) * 2, x.size(3) * 2});
      x = convs_[i]->as<torch::nn::Conv2d>()->forward(x);
    }
    if (i + 1 < convs_->size()) x = torch::silu(norms_[i]->as<Norm>()->forward(x));
  }
  return torch::sigmoid(x).permute({0, 2, 3, 1});  // [N, H, W, C]
}

}  // namespace dreamfleet::learner
