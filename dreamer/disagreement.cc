#include "dreamer/disagreement.h"

#include <string>

namespace dreamfleet::dreamer {

DisagreementImpl::DisagreementImpl(const AgentConfig& c) : num_actions_(c.num_actions) {
  // Each member starts from its own random weights (the output layer too: a zero-initialised one
  // would make every member agree until trained).
  auto options = MlpOptions(c.feat_size() + c.num_actions, c.units, c.enc_layers)
                     .out(static_cast<int64_t>(c.stoch) * c.classes)
                     .outscale(1.0)
                     .norm(c.norm);
  for (int i = 0; i < c.disag_models; ++i) {
    members_.push_back(register_module("member" + std::to_string(i), Mlp(options)));
  }
}

std::vector<torch::Tensor> DisagreementImpl::Predict(const torch::Tensor& feat,
                                                     const torch::Tensor& action) {
  auto onehot = torch::one_hot(action, num_actions_).to(feat.dtype());
  auto input = torch::cat({feat, onehot}, -1);
  std::vector<torch::Tensor> preds;
  preds.reserve(members_.size());
  for (auto& member : members_) preds.push_back(member->forward(input));
  return preds;
}

torch::Tensor DisagreementImpl::Loss(const torch::Tensor& feat, const torch::Tensor& action,
                                     const torch::Tensor& stoch, const torch::Tensor& is_first) {
  const int64_t t_len = feat.size(1);
  auto inputs = feat.detach().narrow(1, 0, t_len - 1);
  auto target = stoch.detach().narrow(1, 1, t_len - 1).flatten(2);   // [B, T-1, S*C]
  auto keep = (~is_first.narrow(1, 1, t_len - 1)).to(feat.dtype());  // [B, T-1]
  auto count = keep.sum().clamp_min(1.0) * target.size(-1);
  torch::Tensor loss;
  for (const auto& pred : Predict(inputs, action.narrow(1, 0, t_len - 1))) {
    auto sq = ((pred - target).pow(2) * keep.unsqueeze(-1)).sum() / count;
    loss = loss.defined() ? loss + sq : sq;
  }
  return loss / static_cast<double>(members_.size());  // the members' mean
}

torch::Tensor DisagreementImpl::Disagree(const torch::Tensor& feat, const torch::Tensor& action) {
  auto preds = torch::stack(Predict(feat, action), 0);  // [K, ..., S*C]
  auto centred = preds - preds.mean(0, /*keepdim=*/true);
  return centred.pow(2).mean(0).sqrt().mean(-1);  // population standard deviation over members
}

torch::Tensor IntrinsicReward(const torch::Tensor& disag, const torch::Tensor& mean, double scale) {
  auto m = mean.clamp_min(1e-8);
  return scale * (disag - m) / m;
}

}  // namespace dreamfleet::dreamer
