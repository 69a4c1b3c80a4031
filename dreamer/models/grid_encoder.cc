#include "dreamer/models/grid_encoder.h"

#include "dreamer/models/init.h"
#include "dreamer/models/norm.h"

namespace dreamfleet::dreamer {
namespace {
constexpr int64_t kConvs = 2;
constexpr int64_t kKernel = 3;
}  // namespace

GridEncoderImpl::GridEncoderImpl(GridEncoderOptions options) : options_(std::move(options)) {
  convs_ = register_module("convs", torch::nn::ModuleList());
  norms_ = register_module("norms", torch::nn::ModuleList());
  int64_t in = options_.channels();
  for (int64_t i = 0; i < kConvs; ++i) {
    auto conv = torch::nn::Conv2d(
        torch::nn::Conv2dOptions(in, options_.depth(), kKernel).padding(kKernel / 2));
    InitConv(conv->weight, conv->bias, in * kKernel * kKernel);
    convs_->push_back(conv);
    norms_->push_back(Norm(NormOptions(options_.depth(), options_.norm()).dim(1)));
    in = options_.depth();
  }
  const int64_t flat = options_.depth() * options_.side() * options_.side();
  mlp_ = register_module(
      "mlp", Mlp(MlpOptions(flat, options_.units(), options_.layers()).norm(options_.norm())));
}

torch::Tensor GridEncoderImpl::Map(const torch::Tensor& vector) {
  const int64_t s = options_.side();
  // Entry (row * side + column) * channels + channel: a channel-last grid, viewed as NCHW.
  auto x = vector.reshape({-1, s, s, options_.channels()}).permute({0, 3, 1, 2}).contiguous();
  for (size_t i = 0; i < convs_->size(); ++i) {
    x = convs_[i]->as<torch::nn::Conv2d>()->forward(x);
    x = torch::silu(norms_[i]->as<Norm>()->forward(x));
  }
  return x;
}

torch::Tensor GridEncoderImpl::forward(const torch::Tensor& vector) {
  return mlp_->forward(Map(vector).flatten(1));
}

}  // namespace dreamfleet::dreamer
