#include "dreamer/actor_critic.h"

#include "dreamer/distributions.h"
#include "dreamer/module_options.h"
#include "dreamer/returns.h"

namespace dreamfleet::dreamer {

ActorCriticImpl::ActorCriticImpl(const AgentConfig& c) : config_(c) {
  const int64_t feat = c.feat_size();
  actor_ = register_module("actor", Mlp(PolicyHeadOptions(c)));
  auto value_options =
      MlpOptions(feat, c.units, c.ac_layers).out(c.bins).outscale(0.0).norm(c.norm);
  value_ = register_module("value", Mlp(value_options));
  slow_value_ = register_module("slow_value", Mlp(value_options));
  torch::NoGradGuard no_grad;
  auto src = value_->parameters();
  auto dst = slow_value_->parameters();
  for (size_t i = 0; i < src.size(); ++i) {
    dst[i].copy_(src[i]);
    dst[i].set_requires_grad(false);
  }
}

std::vector<torch::Tensor> ActorCriticImpl::TrainableParameters() {
  auto params = actor_->parameters();
  for (auto& p : value_->parameters()) params.push_back(p);
  return params;
}

torch::Tensor ActorCriticImpl::PolicyLogits(const torch::Tensor& feat) {
  return UnimixLogits(actor_->forward(feat), config_.policy_unimix);
}

torch::Tensor ActorCriticImpl::SampleAction(const torch::Tensor& feat,
                                            std::optional<torch::Generator> gen) {
  auto probs = PolicyLogits(feat).exp();
  return gen ? torch::multinomial(probs, 1, true, *gen).squeeze(-1)
             : torch::multinomial(probs, 1, true).squeeze(-1);
}

torch::Tensor ActorCriticImpl::SampleOneHot(const torch::Tensor& feat,
                                            std::optional<torch::Generator> gen) {
  return SampleOneHotStraightThrough(PolicyLogits(feat).exp(), gen);
}

void ActorCriticImpl::UpdateSlowValue() {
  torch::NoGradGuard no_grad;
  auto src = value_->parameters();
  auto dst = slow_value_->parameters();
  const double rate = config_.slow_rate;
  for (size_t i = 0; i < src.size(); ++i) dst[i].mul_(1.0 - rate).add_(src[i], rate);
}

torch::Tensor ReplayLambdaReturn(const torch::Tensor& reward, const torch::Tensor& boot,
                                 const torch::Tensor& is_last, const torch::Tensor& is_terminal,
                                 double gamma, double lambda) {
  const int64_t t_len = reward.size(1);
  auto live = (~is_terminal).to(torch::kFloat32).narrow(1, 1, t_len - 1) * gamma;
  auto lam = (~is_last).to(torch::kFloat32).narrow(1, 1, t_len - 1) * lambda;
  auto interm = reward.narrow(1, 1, t_len - 1) + (1.0 - lam) * live * boot.narrow(1, 1, t_len - 1);
  std::vector<torch::Tensor> rets(t_len - 1);
  auto next = boot.select(1, t_len - 1);
  for (int64_t t = t_len - 2; t >= 0; --t) {
    next = interm.select(1, t) + live.select(1, t) * lam.select(1, t) * next;
    rets[t] = next;
  }
  return torch::stack(rets, 1);
}

torch::Tensor ReplayBootstrap(const torch::Tensor& imagined_return,
                              const torch::Tensor& start_index, const torch::Tensor& value,
                              int64_t batch, int64_t length) {
  if (!start_index.defined()) return imagined_return.reshape({batch, length});
  auto boot = value.reshape({batch * length}).clone();
  boot.index_copy_(0, start_index, imagined_return);
  return boot.reshape({batch, length});
}

ActorCriticOutput ActorCriticImpl::Loss(const ImaginedTrajectory& traj, const ReplayContext& replay,
                                        ReturnNormalizer& retnorm) {
  const auto& c = config_;
  const double gamma = 1.0 - 1.0 / c.horizon;
  const int64_t h1 = traj.feat.size(1);
  const TwoHotSpace space = TwoHotSpaceNamed(c.twohot);
  ActorCriticOutput out;

  // With actor_dynamics the rollout carries gradient: only the dynamics objective follows it.
  const torch::Tensor feat = traj.feat.detach();
  auto logits = PolicyLogits(feat);      // [N, H+1, A]
  auto vlogits = value_->forward(feat);  // [N, H+1, bins]
  // With contdisc the continue probabilities already include gamma.
  const double disc = c.contdisc ? 1.0 : gamma;
  torch::Tensor val, slowval, weight, ret;
  {
    torch::NoGradGuard no_grad;
    val = TwoHotMean(vlogits, space);
    slowval = TwoHotMean(slow_value_->forward(feat), space);
    weight = torch::cumprod(traj.cont * disc, 1) / disc;
    ret = LambdaReturn(traj.reward.narrow(1, 1, h1 - 1), val, traj.cont.narrow(1, 1, h1 - 1), disc,
                       c.lambda);  // [N, H]
  }
  if (!torch::isfinite(ret).all().item<bool>()) {
    out.finite = false;
    return out;
  }
  // imag_explore: held[N, H] is true on the steps whose action was a held random one.
  torch::Tensor held_steps, held;  // [N] steps held per row on ret's device; [N, H] bool
  if (traj.held.defined()) {
    held_steps = traj.held.to(ret.device());
    held = torch::arange(h1 - 1, held_steps.options()).unsqueeze(0) < held_steps.unsqueeze(1);
  }
  if (!held.defined()) {
    retnorm.Update(ret);
  } else if (auto policy_ret = ret.masked_select(~held); policy_ret.numel() > 0) {
    retnorm.Update(policy_ret);
  }
  auto scale = retnorm.Scale().to(ret.device());
  auto adv = ((ret - val.narrow(1, 0, h1 - 1)) / scale).detach();
  // A held random action is another policy's: the actor imitates it where it beat the critic's
  // value and ignores it elsewhere (self-imitation); the policy's own steps train as usual.
  auto actor_adv = held.defined() ? torch::where(held, adv.clamp_min(0.0), adv) : adv;
  auto head = [&](const torch::Tensor& x) { return x.narrow(1, 0, h1 - 1); };
  auto onehot = torch::one_hot(traj.action, c.num_actions).to(logits.dtype());
  auto logpi = head(CategoricalLogProb(logits, onehot));
  auto ent = head(CategoricalEntropy(logits));
  auto w = head(weight);
  // Without a rollout to differentiate (no graph), REINFORCE keeps the whole objective.
  const bool dynamics =
      c.actor_dynamics > 0 &&
      (traj.feat.requires_grad() || traj.reward.requires_grad() || traj.cont.requires_grad());
  const double reinforce = dynamics ? 1.0 - c.actor_dynamics : 1.0;
  out.losses["policy"] = (w * -(reinforce * logpi * actor_adv + c.actent * ent)).mean();
  if (dynamics) {
    // The same lambda-return, but differentiated through the critic and the world model's heads
    // and dynamics back to every imagined action (the return's forward value equals `ret`).
    auto dyn_val = TwoHotMean(value_->forward(traj.feat), space);
    auto dyn_ret = LambdaReturn(traj.reward.narrow(1, 1, h1 - 1), dyn_val,
                                traj.cont.narrow(1, 1, h1 - 1), disc, c.lambda);
    out.dynamics = -c.actor_dynamics * (w * dyn_ret / scale).mean();
  }
  auto vhead = head(vlogits);
  auto value_terms =
      w * (TwoHotLoss(vhead, ret, space) + c.slowreg * TwoHotLoss(vhead, head(slowval), space));
  if (held.defined()) {
    // The mean over the policy's steps only: a held step's return is another policy's.
    auto policy_steps = (~held).to(value_terms.dtype());
    out.losses["value"] = (value_terms * policy_steps).sum() / policy_steps.sum().clamp_min(1.0);
  } else {
    out.losses["value"] = value_terms.mean();
  }

  // Replay value loss on the posterior states, bootstrapped from the imagined returns.
  const int64_t bs = replay.feat.size(0), t_len = replay.feat.size(1);
  auto rvlogits = value_->forward(replay.feat);  // [B, T, bins]
  torch::Tensor rslow, rret;
  {
    torch::NoGradGuard no_grad;
    rslow = TwoHotMean(slow_value_->forward(replay.feat), space);
    torch::Tensor first_ret = ret.select(1, 0), start_index = traj.start_index;
    if (held.defined()) {
      // Explored rows bootstrap nothing: their starts take the critic's value as unstarted ones.
      if (!start_index.defined())
        start_index = torch::arange(first_ret.size(0), first_ret.options().dtype(torch::kLong));
      auto keep = (held_steps == 0).nonzero().reshape({-1});
      first_ret = first_ret.index_select(0, keep);
      start_index = start_index.index_select(0, keep);
    }
    auto boot = ReplayBootstrap(
        first_ret, start_index,
        start_index.defined() ? TwoHotMean(rvlogits.detach(), space) : torch::Tensor(), bs, t_len);
    rret = ReplayLambdaReturn(replay.reward, boot, replay.is_last, replay.is_terminal, gamma,
                              c.lambda);  // [B, T-1]
  }
  auto rw = (~replay.is_last).to(torch::kFloat32).narrow(1, 0, t_len - 1);
  auto rhead = rvlogits.narrow(1, 0, t_len - 1);
  out.losses["repval"] = (rw * (TwoHotLoss(rhead, rret, space) +
                                c.slowreg * TwoHotLoss(rhead, rslow.narrow(1, 0, t_len - 1), space)))
                             .mean();
  out.loss = c.scale_policy * out.losses["policy"] + c.scale_value * out.losses["value"] +
             c.scale_repval * out.losses["repval"];

  torch::NoGradGuard no_grad;
  out.metrics["entropy"] = ent.mean();
  out.metrics["ret"] = ret.mean();
  out.metrics["adv_mag"] = adv.abs().mean();
  if (held.defined()) {
    out.metrics["explored_rows"] = (held_steps > 0).to(torch::kFloat32).mean();
    // How often a held random action beat the critic's value: what the actor imitates.
    auto held_adv = adv.masked_select(held);
    if (held_adv.numel() > 0)
      out.metrics["explored_beat_value"] = (held_adv > 0).to(torch::kFloat32).mean();
  }
  out.metrics["val"] = val.mean();
  out.metrics["retnorm_scale"] = scale.reshape({});
  return out;
}

}  // namespace dreamfleet::dreamer
