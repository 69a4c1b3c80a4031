#include "dreamer/models/image_encoder.h"

#include "dreamer/models/init.h"
#include "dreamer/models/norm.h"

namespace dreamfleet::dreamer {

ImageEncoderImpl::ImageEncoderImpl(CnnOptions options) : options_(std::move(options)) {
  convs_ = register_module("convs", torch::nn::ModuleList());
  norms_ = register_module("norms", torch::nn::ModuleList());
  const bool strided = options_.mode() == "strided";
  int64_t in = options_.channels();
  for (int mult : options_.mults()) {
    const int64_t out = options_.depth() * mult;
    const int64_t k = strided ? 4 : 5;
    auto conv = torch::nn::Conv2d(
        torch::nn::Conv2dOptions(in, out, k).stride(strided ? 2 : 1).padding(strided ? 1 : 2));
    InitConv(conv->weight, conv->bias, in * k * k);
    convs_->push_back(conv);
    norms_->push_back(Norm(NormOptions(out, options_.norm()).dim(1)));
    in = out;
  }
}

int64_t ImageEncoderImpl::out_size() const {
  const int64_t n = options_.mults().size();
  return (options_.height() >> n) * (options_.width() >> n) * options_.depth() *
         options_.mults().back();
}

torch::Tensor ImageEncoderImpl::forward(const torch::Tensor& image) {
  const bool strided = options_.mode() == "strided";
  // [N, C, H, W] view of the NHWC input; channels-last keeps the NHWC bytes as they are.
  auto x = image.to(torch::kFloat32).permute({0, 3, 1, 2}).div(255.0).sub(0.5);
  x = options_.channels_last() ? x.contiguous(torch::MemoryFormat::ChannelsLast) : x.contiguous();
  for (size_t i = 0; i < convs_->size(); ++i) {
    x = convs_[i]->as<torch::nn::Conv2d>()->forward(x);
    if (!strided) x = torch::max_pool2d(x, 2);
    x = torch::silu(norms_[i]->as<Norm>()->forward(x));
  }
  return x.flatten(1);
}

}  // namespace dreamfleet::dreamer
