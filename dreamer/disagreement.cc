#include "dreamer/disagreement.h"

#include <string>

#include "dreamer/models/init.h"

namespace dreamfleet::dreamer {
namespace {
constexpr double kNormEps = 1e-4;  // as dreamer/models/norm.h
}  // namespace

DisagreementImpl::DisagreementImpl(const AgentConfig& c)
    : num_actions_(c.num_actions),
      models_(c.disag_models),
      units_(c.units),
      layer_norm_(c.norm == "layer") {
  // Each member starts from its own random weights (the output layer too: a zero-initialised one
  // would make every member agree until trained), drawn as the official `trunc_normal_in`.
  auto weight = [&](const std::string& name, std::vector<int64_t> shape, int64_t fan_in) {
    auto w = register_parameter(name, torch::empty(shape));
    TruncNormalInit(w, fan_in);
    return w;
  };
  const int64_t k = models_, u = units_, in = c.feat_size() + c.num_actions;
  for (int i = 0; i < c.enc_layers; ++i) {
    const std::string n = std::to_string(i);
    weights_.push_back(i == 0 ? weight("weight0", {in, k * u}, in)
                              : weight("weight" + n, {k, u, u}, u));
    biases_.push_back(register_parameter("bias" + n, torch::zeros({k, 1, u})));
    scales_.push_back(register_parameter("scale" + n, torch::ones({k, 1, u})));
    if (layer_norm_) shifts_.push_back(register_parameter("shift" + n, torch::zeros({k, 1, u})));
  }
  const int64_t hidden = c.enc_layers > 0 ? u : in;
  const int64_t out = static_cast<int64_t>(c.stoch) * c.classes;
  out_weight_ = weight("out_weight", {k, hidden, out}, hidden);
  out_bias_ = register_parameter("out_bias", torch::zeros({k, 1, out}));
}

torch::Tensor DisagreementImpl::Predict(const torch::Tensor& feat, const torch::Tensor& action) {
  auto onehot = torch::one_hot(action, num_actions_).to(feat.dtype());
  auto x = torch::cat({feat, onehot}, -1);  // [N, in]
  const int64_t n = x.size(0);
  torch::Tensor h;
  for (size_t i = 0; i < weights_.size(); ++i) {
    if (i == 0) {
      // All members' first layers in one product: [N, in] x [in, K*U] -> [K, N, U].
      h = torch::mm(x, weights_[0]).view({n, models_, units_}).transpose(0, 1).contiguous() +
          biases_[0];
    } else {
      h = torch::baddbmm(biases_[i], h, weights_[i]);
    }
    if (layer_norm_) {
      h = torch::layer_norm(h, {units_}, {}, {}, kNormEps) * scales_[i] + shifts_[i];
    } else {
      h = h * torch::rsqrt(h.pow(2).mean(-1, /*keepdim=*/true) + kNormEps) * scales_[i];
    }
    h = torch::silu(h);
  }
  if (weights_.empty()) h = x.unsqueeze(0).expand({models_, n, x.size(1)});
  return torch::baddbmm(out_bias_, h, out_weight_);  // [K, N, S*C]
}

torch::Tensor DisagreementImpl::Spread(const torch::Tensor& preds) {
  // Population standard deviation across members, mean over the predicted entries.
  auto centred = preds - preds.mean(0, /*keepdim=*/true);
  return centred.pow(2).mean(0).sqrt().mean(-1);
}

DisagreementFit DisagreementImpl::Fit(const torch::Tensor& feat, const torch::Tensor& action,
                                      const torch::Tensor& stoch, const torch::Tensor& is_first) {
  const int64_t b = feat.size(0), t_len = feat.size(1);
  auto inputs = feat.detach().narrow(1, 0, t_len - 1).reshape({b * (t_len - 1), feat.size(2)});
  auto acts = action.narrow(1, 0, t_len - 1).reshape({b * (t_len - 1)});
  auto target = stoch.detach().narrow(1, 1, t_len - 1).reshape({b * (t_len - 1), -1});
  DisagreementFit fit;
  fit.keep = (~is_first.narrow(1, 1, t_len - 1)).to(feat.dtype());  // [B, T-1]
  auto preds = Predict(inputs, acts);                               // [K, N, S*C]
  auto keep = fit.keep.reshape({1, b * (t_len - 1), 1});
  auto count = fit.keep.sum().clamp_min(1.0) * target.size(-1) * static_cast<double>(models_);
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
