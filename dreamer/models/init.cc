#include "dreamer/models/init.h"

#include <cmath>

namespace dreamfleet::dreamer {

void TruncNormalInit(torch::Tensor weight, int64_t fan_in, double outscale) {
  torch::NoGradGuard no_grad;
  if (outscale == 0.0) {
    weight.zero_();
    return;
  }
  // Rejection-free truncation: resample outliers until all lie in [-2, 2].
  auto w = torch::randn(weight.sizes(), torch::kFloat32);
  auto bad = w.abs() > 2.0;
  while (bad.any().item<bool>()) {
    w = torch::where(bad, torch::randn(weight.sizes(), torch::kFloat32), w);
    bad = w.abs() > 2.0;
  }
  w.mul_(1.1368 / std::sqrt(static_cast<double>(fan_in)) * outscale);
  weight.copy_(w);
}

void InitLinear(torch::nn::Linear& linear, double outscale) {
  TruncNormalInit(linear->weight, linear->weight.size(1), outscale);
  if (linear->bias.defined()) {
    torch::NoGradGuard no_grad;
    linear->bias.zero_();
  }
}

void InitConv(torch::Tensor weight, torch::Tensor bias, int64_t fan_in, double outscale) {
  TruncNormalInit(weight, fan_in, outscale);
  if (bias.defined()) {
    torch::NoGradGuard no_grad;
    bias.zero_();
  }
}

}  // namespace dreamfleet::dreamer
