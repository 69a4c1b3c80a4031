#include "dreamer/disagreement.h"

#include <string>

namespace dreamfleet::dreamer {
namespace {
constexpr double kNormEps = 1e-4;  // NormOptions' default, as the members' own Norm layers

// The members' tensors stacked along a new first dimension: [K, ...].
torch::Tensor Stack(const std::vector<torch::Tensor>& per_member) {
  return torch::stack(per_member, 0);
}
}  // namespace

DisagreementImpl::DisagreementImpl(const AgentConfig& c)
    : num_actions_(c.num_actions), units_(c.units), layer_norm_(c.norm == "layer") {
  // Each member starts from its own random weights (the output layer too: a zero-initialised one
  // would make every member agree until trained).
  auto options = MlpOptions(c.feat_size() + c.num_actions, c.units, c.enc_layers)
                     .out(static_cast<int64_t>(c.stoch) * c.classes)
                     .outscale(1.0)
                     .norm(c.norm);
  hidden_.resize(c.enc_layers);
  for (int k = 0; k < c.disag_models; ++k) {
    members_.push_back(register_module("member" + std::to_string(k), Mlp(options)));
    // Handles to the member's parameters (they stay valid when the module moves to a device or a
    // checkpoint is restored: both write into the same tensors).
    auto params = members_.back()->named_parameters();
    for (int i = 0; i < c.enc_layers; ++i) {
      const std::string n = std::to_string(i);
      hidden_[i].weight.push_back(params["linears." + n + ".weight"]);
      hidden_[i].bias.push_back(params["linears." + n + ".bias"]);
      hidden_[i].scale.push_back(params["norms." + n + ".scale"]);
      if (layer_norm_) hidden_[i].shift.push_back(params["norms." + n + ".shift"]);
    }
    out_.weight.push_back(params["out.weight"]);
    out_.bias.push_back(params["out.bias"]);
  }
}

torch::Tensor DisagreementImpl::Predict(const torch::Tensor& feat, const torch::Tensor& action) {
  auto onehot = torch::one_hot(action, num_actions_).to(feat.dtype());
  auto x = torch::cat({feat, onehot}, -1);  // [N, in]
  const int64_t n = x.size(0), k = size();
  torch::Tensor h;
  for (size_t i = 0; i < hidden_.size(); ++i) {
    const Layer& layer = hidden_[i];
    if (i == 0) {
      // All members' first layers in one product: [N, in] x [in, K*U] -> [K, N, U].
      h = torch::addmm(torch::cat(layer.bias), x, torch::cat(layer.weight).t())
              .view({n, k, units_})
              .transpose(0, 1)
              .contiguous();
    } else {
      h = torch::baddbmm(Stack(layer.bias).unsqueeze(1), h, Stack(layer.weight).transpose(1, 2));
    }
    auto scale = Stack(layer.scale).unsqueeze(1);  // [K, 1, U]
    if (layer_norm_) {
      h = torch::layer_norm(h, {units_}, {}, {}, kNormEps) * scale +
          Stack(layer.shift).unsqueeze(1);
    } else {
      h = h * torch::rsqrt(h.pow(2).mean(-1, /*keepdim=*/true) + kNormEps) * scale;
    }
    h = torch::silu(h);
  }
  if (hidden_.empty()) h = x.unsqueeze(0).expand({k, n, x.size(1)});
  return torch::baddbmm(Stack(out_.bias).unsqueeze(1), h,
                        Stack(out_.weight).transpose(1, 2));  // [K, N, S*C]
}

torch::Tensor DisagreementImpl::Spread(const torch::Tensor& preds) {
  // Population standard deviation across members, mean over the predicted entries.
  auto centred = preds - preds.mean(0, /*keepdim=*/true);
  return centred.pow(2).mean(0).sqrt().mean(-1);
}

DisagreementFit DisagreementImpl::Fit(const torch::Tensor& feat, const torch::Tensor& action,
                                      const torch::Tensor& stoch, const torch::Tensor& is_first) {
  const int64_t b = feat.size(0), t_len = feat.size(1), n = b * (t_len - 1);
  auto inputs = feat.detach().narrow(1, 0, t_len - 1).reshape({n, feat.size(2)});
  auto acts = action.narrow(1, 0, t_len - 1).reshape({n});
  auto target = stoch.detach().narrow(1, 1, t_len - 1).reshape({n, -1});  // [N, S*C]
  DisagreementFit fit;
  fit.keep = (~is_first.narrow(1, 1, t_len - 1)).to(feat.dtype());  // [B, T-1]
  auto preds = Predict(inputs, acts);                               // [K, N, S*C]
  auto keep = fit.keep.reshape({1, n, 1});
  auto count = fit.keep.sum().clamp_min(1.0) * target.size(-1) * static_cast<double>(size());
  fit.loss = ((preds - target).pow(2) * keep).sum() / count;  // the members' mean
  fit.disag = Spread(preds.detach()).view({b, t_len - 1});
  return fit;
}

torch::Tensor DisagreementImpl::Disagree(const torch::Tensor& feat, const torch::Tensor& action) {
  auto lead = feat.sizes().vec();
  lead.pop_back();
  auto d = Spread(Predict(feat.reshape({-1, feat.size(-1)}), action.reshape({-1})));
  return d.view(lead);
}

torch::Tensor IntrinsicReward(const torch::Tensor& disag, const torch::Tensor& mean, double scale) {
  auto m = mean.clamp_min(1e-8);
  return scale * (disag - m) / m;
}

}  // namespace dreamfleet::dreamer
