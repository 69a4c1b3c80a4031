// Weight initialisation shared by every layer: the official `trunc_normal_in` (truncated normal on
// [-2, 2] scaled by 1.1368 / sqrt(fan_in), times an output scale) with zero biases.
#pragma once

#include <torch/torch.h>

namespace dreamfleet::dreamer {

// Fills `weight` in place; outscale 0 gives zeros (the reward and value heads start at zero).
void TruncNormalInit(torch::Tensor weight, int64_t fan_in, double outscale = 1.0);

// Initialises a Linear layer (weight [out, in]) and zeroes its bias.
void InitLinear(torch::nn::Linear& linear, double outscale = 1.0);

// Initialises a Conv2d / ConvTranspose2d: fan_in = in_channels * k * k (as the official Conv2D).
void InitConv(torch::Tensor weight, torch::Tensor bias, int64_t fan_in, double outscale = 1.0);

}  // namespace dreamfleet::dreamer
