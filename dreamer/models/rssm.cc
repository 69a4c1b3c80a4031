#include "dreamer/models/rssm.h"

#include "dreamer/distributions.h"
#include "dreamer/models/init.h"

namespace dreamfleet::dreamer {
namespace {

torch::nn::Linear MakeLinear(int64_t in, int64_t out) {
  torch::nn::Linear linear(in, out);
  InitLinear(linear);
  return linear;
}

}  // namespace

RssmImpl::RssmImpl(RssmOptions o) : options_(std::move(o)) {
  const auto& o2 = options_;
  const int64_t h = o2.hidden(), d = o2.deter(), sc = o2.stoch() * o2.classes(), g = o2.blocks();
  TORCH_CHECK(d % g == 0, "Rssm: deter ", d, " not divisible by blocks ", g);
  dynin_deter_ = register_module("dynin_deter", MakeLinear(d, h));
  dynin_stoch_ = register_module("dynin_stoch", MakeLinear(sc, h));
  dynin_action_ = register_module("dynin_action", MakeLinear(o2.num_actions(), h));
  dynin_deter_norm_ = register_module("dynin_deter_norm", Norm(NormOptions(h, o2.norm())));
  dynin_stoch_norm_ = register_module("dynin_stoch_norm", Norm(NormOptions(h, o2.norm())));
  dynin_action_norm_ = register_module("dynin_action_norm", Norm(NormOptions(h, o2.norm())));
  const int64_t block_in = g * (d / g + 3 * h);
  dynhid_ = register_module("dynhid", BlockLinear(BlockLinearOptions(block_in, d, g)));
  dynhid_norm_ = register_module("dynhid_norm", Norm(NormOptions(d, o2.norm())));
  dyngru_ = register_module("dyngru", BlockLinear(BlockLinearOptions(d, 3 * d, g)));
  obs_ = register_module("obs", MakeLinear(d + o2.embed(), h));
  obs_norm_ = register_module("obs_norm", Norm(NormOptions(h, o2.norm())));
  obs_logit_ = register_module("obs_logit", MakeLinear(h, sc));
  prior0_ = register_module("prior0", MakeLinear(d, h));
  prior0_norm_ = register_module("prior0_norm", Norm(NormOptions(h, o2.norm())));
  prior1_ = register_module("prior1", MakeLinear(h, h));
  prior1_norm_ = register_module("prior1_norm", Norm(NormOptions(h, o2.norm())));
  prior_logit_ = register_module("prior_logit", MakeLinear(h, sc));
}

RssmState RssmImpl::Initial(int64_t batch, torch::Device device) const {
  auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(device);
  return {torch::zeros({batch, options_.deter()}, opts),
          torch::zeros({batch, options_.stoch(), options_.classes()}, opts)};
}

torch::Tensor RssmImpl::Feat(const torch::Tensor& deter, const torch::Tensor& stoch) {
  return torch::cat({deter, stoch.flatten(-2)}, -1);
}

torch::Tensor RssmImpl::Core(const torch::Tensor& deter, const torch::Tensor& stoch,
                             const torch::Tensor& action) {
  const int64_t n = deter.size(0), d = options_.deter(), g = options_.blocks();
  auto x0 = torch::silu(dynin_deter_norm_(dynin_deter_(deter)));
  auto x1 = torch::silu(dynin_stoch_norm_(dynin_stoch_(stoch.flatten(1))));
  auto x2 = torch::silu(dynin_action_norm_(dynin_action_(action)));
  auto x = torch::cat({x0, x1, x2}, -1).unsqueeze(1).expand({n, g, -1});  // [N, g, 3H]
  x = torch::cat({deter.view({n, g, d / g}), x}, -1).reshape({n, -1});    // [N, g*(D/g+3H)]
  x = torch::silu(dynhid_norm_(dynhid_(x)));
  // Each block's gates are [reset, candidate, update]: unbind gives them as strided [N, g, D/g]
  // views (no copies; one stack in the backward pass) that the elementwise ops read directly.
  auto gates = dyngru_(x).view({n, g, 3, d / g}).unbind(2);
  auto reset = torch::sigmoid(gates[0]);
  auto cand = torch::tanh(reset * gates[1]);
  auto update = torch::sigmoid(gates[2] - 1.0);
  return (update * cand + (1.0 - update) * deter.reshape({n, g, d / g})).reshape({n, d});
}

torch::Tensor RssmImpl::PosteriorLogit(const torch::Tensor& deter, const torch::Tensor& embed) {
  auto x = torch::silu(obs_norm_(obs_(torch::cat({deter, embed}, -1))));
  auto shape = deter.sizes().vec();
  shape.back() = options_.stoch();
  shape.push_back(options_.classes());
  return UnimixLogits(obs_logit_(x).view(shape), options_.unimix());
}

torch::Tensor RssmImpl::PriorLogit(const torch::Tensor& deter) {
  auto x = torch::silu(prior0_norm_(prior0_(deter)));
  x = torch::silu(prior1_norm_(prior1_(x)));
  auto shape = deter.sizes().vec();
  shape.back() = options_.stoch();
  shape.push_back(options_.classes());
  return UnimixLogits(prior_logit_(x).view(shape), options_.unimix());
}

torch::Tensor RssmImpl::Sample(const torch::Tensor& logit, std::optional<torch::Generator> gen) {
  // logit are log-probs of the mixed distribution already.
  return SampleOneHotStraightThrough(logit.exp(), gen);
}

RssmState RssmImpl::ObsStep(const RssmState& prev, const torch::Tensor& prev_action,
                            const torch::Tensor& embed, const torch::Tensor& is_first,
                            std::optional<torch::Generator> gen, torch::Tensor* post_logit) {
  auto keep = (~is_first).to(torch::kFloat32).unsqueeze(-1);  // [N, 1]
  auto deter = prev.deter * keep;
  auto stoch = prev.stoch * keep.unsqueeze(-1);
  auto action =
      torch::one_hot(prev_action.to(torch::kLong), options_.num_actions()).to(torch::kFloat32) *
      keep;
  deter = Core(deter, stoch, action);
  auto logit = PosteriorLogit(deter, embed);
  if (post_logit != nullptr) *post_logit = logit;
  return {deter, Sample(logit, gen)};
}

RssmSequence RssmImpl::Observe(const torch::Tensor& embed, const torch::Tensor& prev_action,
                               const torch::Tensor& is_first, const RssmState& start,
                               std::optional<torch::Generator> gen) {
  const int64_t t_len = embed.size(1);
  std::vector<torch::Tensor> deters, stochs, logits;
  RssmState state = start;
  for (int64_t t = 0; t < t_len; ++t) {
    torch::Tensor logit;
    state = ObsStep(state, prev_action.select(1, t), embed.select(1, t), is_first.select(1, t), gen,
                    &logit);
    deters.push_back(state.deter);
    stochs.push_back(state.stoch);
    logits.push_back(logit);
  }
  RssmSequence seq;
  seq.deter = torch::stack(deters, 1);
  seq.stoch = torch::stack(stochs, 1);
  seq.post_logit = torch::stack(logits, 1);
  seq.prior_logit = PriorLogit(seq.deter);  // one batched pass over all steps
  seq.last = state;
  return seq;
}

Imagination RssmImpl::Imagine(const RssmState& start, const PolicyFn& policy, int64_t horizon,
                              std::optional<torch::Generator> gen) {
  std::vector<torch::Tensor> deters{start.deter}, stochs{start.stoch}, actions;
  RssmState state = start;
  // A one-hot policy output is used as it is (keeping its gradient); an index is encoded.
  auto as_onehot = [&](const torch::Tensor& action) {
    TORCH_CHECK(!action.is_floating_point() ||
                    (action.dim() == 2 && action.size(1) == options_.num_actions()),
                "Imagine: a one-hot policy output must be [N, ", options_.num_actions(), "], got ",
                action.sizes());
    return action.is_floating_point()
               ? action
               : torch::one_hot(action, options_.num_actions()).to(torch::kFloat32);
  };
  auto as_index = [](const torch::Tensor& action) {
    return action.is_floating_point() ? action.detach().argmax(-1) : action;
  };
  for (int64_t h = 0; h < horizon; ++h) {
    auto action = policy(Feat(state.deter, state.stoch));
    actions.push_back(as_index(action));
    auto deter = Core(state.deter, state.stoch, as_onehot(action));
    state = {deter, Sample(PriorLogit(deter), gen)};
    deters.push_back(state.deter);
    stochs.push_back(state.stoch);
  }
  actions.push_back(as_index(policy(Feat(state.deter, state.stoch))));
  return {torch::stack(deters, 1), torch::stack(stochs, 1), torch::stack(actions, 1)};
}

}  // namespace dreamfleet::dreamer
