#include "learner/models/norm.h"

namespace dreamfleet::learner {

NormImpl::NormImpl(NormOptions options) : options_(std::move(options)) {
  scale_ = register_parameter("scale", torch::ones({options_.size()}));
  if (options_.kind() == "layer") {
    shift_ = register_parameter("shift", torch::zeros({options_.size()}));
  }
}

torch::Tensor NormImpl::forward(const torch::Tensor& x) {
  const int64_t dim = options_.dim() < 0 ? x.dim() + options_.dim() : options_.dim();
  std::vector<int64_t> shape(x.dim() - dim, 1);
  shape[0] = options_.size();
  if (options_.kind() == "layer" && dim == x.dim() - 1) {
    return torch::layer_norm(x, {options_.size()}, scale_, shift_, options_.eps());
  }
  torch::Tensor y;
  if (options_.kind() == "layer") {
    auto mean = x.mean({dim}, /*keepdim=*/true);
    auto var = (x - mean).square().mean({dim}, true);
    y = (x - mean) * torch::rsqrt(var + options_.eps()) * scale_.view(shape) + shift_.view(shape);
  } else {
    auto mean2 = x.square().mean({dim}, true);
    y = x * torch::rsqrt(mean2 + options_.eps()) * scale_.view(shape);
  }
  return y;
}

}  // namespace dreamfleet::learner
