#include "dreamer/world_model.h"

#include <algorithm>

#include "dreamer/distributions.h"
#include "dreamer/module_options.h"

namespace dreamfleet::dreamer {
namespace {

// The observations of a batch's first `steps` steps, flattened to [B * steps, ...] for the encoder.
Observation FlatObservation(const Batch& b, int64_t steps, const AgentConfig& c) {
  const int64_t n = b.action.size(0) * steps;
  Observation obs;
  if (b.image.defined()) {
    obs.image = b.image.narrow(1, 0, steps).reshape({n, c.image_height, c.image_width, -1});
  }
  if (b.vector.defined()) obs.vector = b.vector.narrow(1, 0, steps).reshape({n, -1});
  if (b.text.defined()) obs.text = b.text.narrow(1, 0, steps).reshape({n, -1});
  return obs;
}

}  // namespace

WorldModelImpl::WorldModelImpl(const AgentConfig& c) : config_(c) {
  encoder_ = register_module("encoder", Encoder(c));
  rssm_ = register_module("rssm", Rssm(RssmOptionsFor(c, encoder_->out_size())));
  const int64_t feat = c.feat_size();
  if (c.image_channels > 0) {
    image_decoder_ = register_module(
        "image_decoder",
        ImageDecoder(
            ImageDecoderOptions().feat(feat).cnn(CnnOptionsFor(c)).upsample(c.decoder_upsample)));
  }
  if (c.vector_size > 0 && c.vector_decoder == "grid") {
    vector_grid_decoder_ =
        register_module("vector_grid_decoder", GridDecoder(GridDecoderOptionsFor(c, feat)));
  } else if (c.vector_size > 0) {
    vector_decoder_ = register_module(
        "vector_decoder",
        Mlp(MlpOptions(feat, c.units, c.enc_layers).out(c.vector_size).norm(c.norm)));
  }
  reward_ = register_module(
      "reward",
      Mlp(MlpOptions(feat, c.units, c.head_layers).out(c.bins).outscale(0.0).norm(c.norm)));
  cont_ =
      register_module("cont", Mlp(MlpOptions(feat, c.units, c.head_layers).out(1).norm(c.norm)));
}

torch::Tensor BalancedChannelWeight(const torch::Tensor& grids, int64_t channels) {
  torch::NoGradGuard no_grad;
  auto share = grids.to(torch::kFloat32)
                   .reshape({-1, channels})
                   .mean(std::vector<int64_t>{0});  // [channels]
  // An empty channel (share 0: 1 / 0 = inf) has no occupied entry to weigh; it gets the cap.
  return ((1.0 - share) / share).clamp(1.0, 100.0);
}

torch::Tensor BalancedPositiveWeight(const torch::Tensor& target, int64_t channels) {
  return BalancedChannelWeight(target, channels).repeat({target.size(-1) / channels});
}

torch::Tensor UnbalancedProbability(const torch::Tensor& decoded,
                                    const torch::Tensor& channel_weight) {
  torch::NoGradGuard no_grad;
  const int64_t channels = channel_weight.size(0);
  const auto weight = channel_weight.repeat({decoded.size(-1) / channels}).to(decoded.device());
  return decoded / (decoded + weight * (1.0 - decoded));
}

torch::Tensor WorldModelImpl::DecodeVector(const torch::Tensor& flat) {
  return vector_grid_decoder_ ? vector_grid_decoder_->forward(flat)
                              : vector_decoder_->forward(flat);
}

torch::Tensor WorldModelImpl::RewardMean(const torch::Tensor& feat) {
  return TwoHotMean(reward_->forward(feat), TwoHotSpaceNamed(config_.twohot));
}

torch::Tensor WorldModelImpl::ContinueProb(const torch::Tensor& feat) {
  return torch::sigmoid(cont_->forward(feat).squeeze(-1));
}

WorldModelOutput WorldModelImpl::Loss(const Batch& b, std::optional<torch::Generator> gen) {
  const auto& c = config_;
  const int64_t bs = b.action.size(0), t = b.action.size(1), n = bs * t;
  const auto device = b.action.device();
  WorldModelOutput out;

  const Observation obs = FlatObservation(b, t, c);
  auto embed = encoder_->forward(obs).view({bs, t, -1});

  // The RSSM is driven by the previous action. Without replay context every window starts from
  // the initial state; with it, from the latent and action stored with the step before the window
  // (a window whose first step is_first still resets to the initial state).
  torch::Tensor first_prev_action, reset = b.is_first.clone();
  RssmState start = rssm_->Initial(bs, device);
  if (b.context_deter.defined()) {
    first_prev_action = b.context_action.unsqueeze(1).to(b.action.dtype());
    start = {b.context_deter.to(start.deter.dtype()), b.context_stoch.to(start.stoch.dtype())};
  } else {
    first_prev_action = torch::zeros({bs, 1}, b.action.options());
    reset.select(1, 0).fill_(true);
  }
  auto prev_action = torch::cat({first_prev_action, b.action.narrow(1, 0, t - 1)}, 1);
  out.seq = rssm_->Observe(embed, prev_action, reset, start, gen);
  out.feat = RssmImpl::Feat(out.seq.deter, out.seq.stoch);  // [B, T, F]
  auto flat = out.feat.reshape({n, -1});

  auto kl = DynRepLosses(out.seq.post_logit, out.seq.prior_logit, c.free_nats);
  out.losses["dyn"] = kl.dyn.mean();
  out.losses["rep"] = kl.rep.mean();

  auto total = c.scale_dyn * out.losses["dyn"] + c.scale_rep * out.losses["rep"];
  if (image_decoder_) {
    auto pred = image_decoder_->forward(flat);  // [N, H, W, C] in [0, 1]
    auto target = obs.image.to(torch::kFloat32).div(255.0);
    out.losses["image"] = (pred - target).square().sum({1, 2, 3}).mean();
    total = total + c.scale_rec * out.losses["image"];
  }
  if (vector_decoder_ || vector_grid_decoder_) {
    auto pred = DecodeVector(flat);
    auto target = obs.vector.to(torch::kFloat32);
    if (c.vector_loss == "binary") {
      // Targets in [0, 1]: ValidateBatch refuses others.
      torch::Tensor pos_weight;  // undefined: every entry weighs 1
      if (c.vector_balance) pos_weight = BalancedPositiveWeight(target, c.vector_grid_channels);
      out.losses["vector"] = torch::binary_cross_entropy_with_logits(
                                 pred, target, /*weight=*/{}, pos_weight, at::Reduction::None)
                                 .sum(-1)
                                 .mean();
    } else {
      out.losses["vector"] = (pred - Symlog(target)).square().sum(-1).mean();
    }
    total = total + c.scale_rec * out.losses["vector"];
  }
  auto reward_loss =
      TwoHotLoss(reward_->forward(out.feat), b.reward, TwoHotSpaceNamed(c.twohot));  // [B, T]
  out.losses["rew"] = reward_loss.mean();
  {
    // Prioritized replay: how badly the model predicts each sequence (reward and KL terms, the
    // ones that stay comparable across observation types).
    torch::NoGradGuard no_grad;
    auto kl_per_step = (kl.dyn + kl.rep).reshape({bs, t, -1}).sum(-1);
    out.sequence_loss = (reward_loss.detach().reshape({bs, t}) + kl_per_step).mean(1);
  }
  auto con_target = (~b.is_terminal).to(torch::kFloat32);
  if (c.contdisc) con_target = con_target * (1.0 - 1.0 / c.horizon);
  out.losses["con"] =
      torch::binary_cross_entropy_with_logits(cont_->forward(out.feat).squeeze(-1), con_target);
  total = total + c.scale_rew * out.losses["rew"] + c.scale_con * out.losses["con"];
  out.loss = total;

  {
    torch::NoGradGuard no_grad;
    out.metrics["prior_ent"] = CategoricalEntropy(out.seq.prior_logit).sum(-1).mean();
    out.metrics["post_ent"] = CategoricalEntropy(out.seq.post_logit).sum(-1).mean();
  }
  return out;
}

OpenLoopPrediction WorldModelImpl::OpenLoop(const Batch& b, int64_t context,
                                            std::optional<torch::Generator> gen,
                                            bool decode_observations) {
  torch::NoGradGuard no_grad;
  const int64_t t = b.action.size(1);
  TORCH_CHECK(context >= 1 && context < t, "open-loop context ", context, " must be in [1, ", t,
              ")");
  RssmSequence seq = Posterior(b, context, gen);
  // Imagined step h + 1 follows the action the window took at step context - 1 + h.
  Imagination imagined =
      ImagineActions(seq.last, b.action.narrow(1, context - 1, t - context), gen);
  auto deter = torch::cat({seq.deter, imagined.deter.narrow(1, 1, t - context)}, 1);
  auto stoch = torch::cat({seq.stoch, imagined.stoch.narrow(1, 1, t - context)}, 1);
  return Predict(RssmImpl::Feat(deter, stoch), decode_observations);
}

RssmSequence WorldModelImpl::Posterior(const Batch& b, int64_t steps,
                                       std::optional<torch::Generator> gen,
                                       const std::optional<RssmState>& resume,
                                       const torch::Tensor& resume_action) {
  torch::NoGradGuard no_grad;
  const int64_t bs = b.action.size(0);
  TORCH_CHECK(steps >= 1 && steps <= b.action.size(1), "posterior steps ", steps,
              " must be in [1, ", b.action.size(1), "]");
  TORCH_CHECK(!resume || (resume_action.defined() && resume_action.numel() == bs),
              "Posterior: resuming needs the action taken in the step before, one per sequence");
  const auto device = b.action.device();
  auto embed = encoder_->forward(FlatObservation(b, steps, config_)).view({bs, steps, -1});
  auto first_prev_action = resume ? resume_action.reshape({bs, 1}).to(b.action.dtype())
                                  : torch::zeros({bs, 1}, b.action.options());
  auto prev_action = torch::cat({first_prev_action, b.action.narrow(1, 0, steps - 1)}, 1);
  auto reset = b.is_first.defined()
                   ? b.is_first.narrow(1, 0, steps).to(torch::kBool).clone()
                   : torch::zeros({bs, steps}, torch::dtype(torch::kBool).device(device));
  if (!resume) reset.select(1, 0).fill_(true);
  return rssm_->Observe(embed, prev_action, reset, resume ? *resume : rssm_->Initial(bs, device),
                        gen);
}

Imagination WorldModelImpl::ImagineActions(const RssmState& start, const torch::Tensor& actions,
                                           std::optional<torch::Generator> gen) {
  torch::NoGradGuard no_grad;
  const int64_t horizon = actions.size(1);
  TORCH_CHECK(actions.dim() == 2 && horizon >= 1 && actions.size(0) == start.deter.size(0),
              "ImagineActions: actions must be [", start.deter.size(0), ", H >= 1], got ",
              actions.sizes());
  int64_t h = 0;
  return rssm_->Imagine(
      start,
      [&](const torch::Tensor&) {
        // Imagine also asks for an action in the final state, which is not followed.
        return actions.select(1, std::min(h++, horizon - 1));
      },
      horizon, gen);
}

OpenLoopPrediction WorldModelImpl::Predict(const torch::Tensor& feat, bool decode_observations) {
  torch::NoGradGuard no_grad;
  const auto& c = config_;
  const int64_t n = feat.size(0), l = feat.size(1);
  auto flat = feat.reshape({n * l, -1});
  OpenLoopPrediction out;
  if (image_decoder_ && decode_observations) {
    out.image = image_decoder_->forward(flat)
                    .clamp(0.0, 1.0)
                    .mul(255.0)
                    .round()
                    .to(torch::kUInt8)
                    .reshape({n, l, c.image_height, c.image_width, -1});
  }
  if ((vector_decoder_ || vector_grid_decoder_) && decode_observations) {
    auto decoded = DecodeVector(flat);
    out.vector =
        (c.vector_loss == "binary" ? torch::sigmoid(decoded) : Symexp(decoded)).reshape({n, l, -1});
  }
  out.reward = RewardMean(feat);
  out.cont = ContinueProb(feat);
  return out;
}

}  // namespace dreamfleet::dreamer
