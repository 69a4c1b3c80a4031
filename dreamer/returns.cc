// TD(lambda) returns; conventions and formula in returns.h.
#include "dreamer/returns.h"

#include <vector>

namespace dreamfleet::dreamer {

torch::Tensor LambdaReturn(const torch::Tensor& rewards, const torch::Tensor& values,
                           const torch::Tensor& continues, double gamma, double lambda) {
  TORCH_CHECK(rewards.dim() == 2, "LambdaReturn rewards must be [B, H], got ", rewards.sizes());
  const int64_t batch = rewards.size(0);
  const int64_t horizon = rewards.size(1);
  TORCH_CHECK(continues.sizes() == rewards.sizes(), "LambdaReturn continues ", continues.sizes(),
              " must match rewards ", rewards.sizes());
  TORCH_CHECK(values.dim() == 2 && values.size(0) == batch && values.size(1) == horizon + 1,
              "LambdaReturn values must be [B, H+1] = [", batch, ", ", horizon + 1, "], got ",
              values.sizes());
  torch::Tensor discount = continues * gamma;  // [B, H]
  // The part of each step that does not depend on the next return.
  torch::Tensor interm = rewards + discount * (1.0 - lambda) * values.narrow(1, 1, horizon);
  std::vector<torch::Tensor> returns(horizon);
  torch::Tensor next = values.select(1, horizon);  // R_H = v_H, [B]
  for (int64_t t = horizon - 1; t >= 0; --t) {
    next = interm.select(1, t) + discount.select(1, t) * lambda * next;
    returns[t] = next;
  }
  if (horizon == 0) return rewards.new_zeros({batch, 0});
  return torch::stack(returns, 1);
}

}  // namespace dreamfleet::dreamer
