#include "dreamer/models/grid_decoder.h"

#include "dreamer/models/init.h"
#include "dreamer/models/norm.h"

namespace dreamfleet::dreamer {
namespace {
constexpr int64_t kKernel = 3;
}  // namespace

GridDecoderImpl::GridDecoderImpl(GridDecoderOptions options) : options_(std::move(options)) {
  const int64_t cells = options_.side() * options_.side(), units = options_.units();
  const int64_t depth = options_.depth();
  mlp_ = register_module(
      "mlp", Mlp(MlpOptions(options_.feat(), units, options_.layers()).norm(options_.norm())));
  to_cells_ = register_module(
      "to_cells", torch::nn::Linear(torch::nn::LinearOptions(mlp_->out_size(), units).bias(false)));
  InitLinear(to_cells_);
  // Random cell embeddings as large as the features they are added to: the cells start apart.
  cell_embedding_ = register_parameter("cell_embedding", torch::randn({cells, units}));
  cell_norm_ = register_module("cell_norm", Norm(NormOptions(units, options_.norm())));
  cell_out_ = register_module("cell_out", torch::nn::Linear(units, depth));
  InitLinear(cell_out_);
  norms_ = register_module("norms", torch::nn::ModuleList());
  convs_ = register_module("convs", torch::nn::ModuleList());
  // map -> norm, SiLU -> conv (depth) -> norm, SiLU -> conv (channels): the cells' entries.
  for (int64_t i = 0; i < 2; ++i) {
    norms_->push_back(Norm(NormOptions(depth, options_.norm()).dim(1)));
    const int64_t out = i == 0 ? depth : options_.channels();
    auto conv =
        torch::nn::Conv2d(torch::nn::Conv2dOptions(depth, out, kKernel).padding(kKernel / 2));
    InitConv(conv->weight, conv->bias, depth * kKernel * kKernel);
    convs_->push_back(conv);
  }
}

torch::Tensor GridDecoderImpl::forward(const torch::Tensor& feat) {
  const int64_t s = options_.side();
  // Every cell: the features plus its embedding, normalised and through SiLU on their own, so
  // what a cell draws is a nonlinear function of the features of its own.
  auto x = to_cells_->forward(mlp_->forward(feat)).unsqueeze(1) + cell_embedding_;  // [N, S*S, U]
  x = cell_out_->forward(torch::silu(cell_norm_->forward(x)));                      // [N, S*S, D]
  return Render(x.view({-1, s, s, options_.depth()}).permute({0, 3, 1, 2}));
}

torch::Tensor GridDecoderImpl::Render(const torch::Tensor& map) {
  const int64_t s = options_.side();
  auto x = map;
  for (size_t i = 0; i < convs_->size(); ++i) {
    x = torch::silu(norms_[i]->as<Norm>()->forward(x));
    x = convs_[i]->as<torch::nn::Conv2d>()->forward(x);
  }
  // NCHW back to the channel-last entry order (row * side + column) * channels + channel.
  return x.permute({0, 2, 3, 1}).reshape({-1, s * s * options_.channels()});
}

}  // namespace dreamfleet::dreamer
