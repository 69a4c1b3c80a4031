// Leaf math of DreamerV3's distributions: symlog/symexp squashing, the twohot
// encoding over 255 symlog-spaced bins used by the reward head and critic,
// categoricals with a 1% uniform mix and straight-through samples for the RSSM
// latents and the actor, and the KL-balanced dyn/rep losses with free bits.
//
// Data flow: network logits -> these functions -> scalar losses / samples used
// by world_model and actor_critic. All functions are pure, differentiable where
// it makes sense, device- and dtype-agnostic (they follow their inputs), and
// never reduce over batch dimensions (the caller averages).
#ifndef DREAMFLEET_LEARNER_DISTRIBUTIONS_H_
#define DREAMFLEET_LEARNER_DISTRIBUTIONS_H_

#include <torch/torch.h>

#include <optional>
#include <string>

namespace dreamfleet::dreamer {

// Twohot bins: kTwoHotBins points at symexp(linspace(kTwoHotLow, kTwoHotHigh)) in raw terms,
// i.e. uniform in symlog space. Two ways to use them (AgentConfig::twohot):
//  - kSymlog (the DreamerV3 paper; the jaxutils DiscDist of the paper-era official code): twohot
//    of symlog(target) interpolated between symlog-space bins, decoded as
//    symexp(sum(probs * symlog_bins)).
//  - kRaw (today's danijar/dreamerv3): the same bins in raw space, twohot interpolated linearly
//    in raw space, decoded as sum(probs * raw_bins). Under uncertainty it keeps the expectation
//    of the predicted distribution, where kSymlog's symexp of a symlog mean under-weights rare
//    large values (p * 0.9 decodes to ~0.64 p; p * 10 to ~2.4 p).
// Bins are built symmetric (the middle one is exactly 0) and expectations are summed
// symmetrically from the middle out, as the official code does, so uniform probabilities decode to
// exactly 0 in both spaces.
enum class TwoHotSpace { kSymlog, kRaw };

inline constexpr int64_t kTwoHotBins = 255;
inline constexpr double kTwoHotLow = -20.0;
inline constexpr double kTwoHotHigh = 20.0;

// sign(x) * log(1 + |x|).
torch::Tensor Symlog(const torch::Tensor& x);
// sign(x) * (exp(|x|) - 1); the inverse of Symlog.
torch::Tensor Symexp(const torch::Tensor& x);

// The bin positions (in symlog space) as a [kTwoHotBins] tensor.
torch::Tensor TwoHotBins(const torch::TensorOptions& options = {});
// The bin positions in raw space: Symexp(TwoHotBins()).
torch::Tensor TwoHotRawBins(const torch::TensorOptions& options = {});

// Twohot encoding of values that are ALREADY in symlog space: [...] -> [..., 255].
// Each value puts weight on the two neighbouring bins, linearly by distance, so
// that sum(weights * bins) == value. Values at or beyond the outer bins put all
// weight on the edge bin. Not differentiable (targets only). Output is float32
// (float64 for double input).
torch::Tensor TwoHotEncodeSymlog(const torch::Tensor& symlog_values);

// Twohot encoding of raw values. kSymlog: TwoHotEncodeSymlog(Symlog(values)); kRaw: weights
// linear in raw space between the two raw bins around each value, so that
// sum(weights * raw_bins) == value. Values at or beyond the outer bins put all weight on the edge
// bin. [...] -> [..., 255].
torch::Tensor TwoHotEncode(const torch::Tensor& values, TwoHotSpace space = TwoHotSpace::kSymlog);

// Decodes a probability vector over the bins. kSymlog: Symexp(sum(probs * bins)); kRaw:
// sum(probs * raw_bins). [..., 255] -> [...]. TwoHotDecode(TwoHotEncode(v, s), s) == v up to
// float error.
torch::Tensor TwoHotDecode(const torch::Tensor& probs, TwoHotSpace space = TwoHotSpace::kSymlog);

// Mean of a twohot head: TwoHotDecode(softmax(logits)). [..., 255] -> [...].
// Differentiable in `logits`.
torch::Tensor TwoHotMean(const torch::Tensor& logits, TwoHotSpace space = TwoHotSpace::kSymlog);

// Negative log-likelihood of raw `target` values under a twohot head:
// -sum(TwoHotEncode(target, space) * log_softmax(logits), -1).
// logits [..., 255], target [...] -> [...]. The target is detached.
torch::Tensor TwoHotLoss(const torch::Tensor& logits, const torch::Tensor& target,
                         TwoHotSpace space = TwoHotSpace::kSymlog);

// "symlog" -> kSymlog, "raw" -> kRaw; anything else is a programming error (AgentConfig
// validates the name).
TwoHotSpace TwoHotSpaceNamed(const std::string& name);

// ---- Categoricals (the class dimension is always the last one) ----

// (1 - unimix) * softmax(logits) + unimix / K over the last dim. [..., K].
torch::Tensor UnimixProbs(const torch::Tensor& logits, double unimix = 0.01);
// log(UnimixProbs(logits, unimix)): logits of the mixed distribution. [..., K].
torch::Tensor UnimixLogits(const torch::Tensor& logits, double unimix = 0.01);

// Draws one class per row of `probs` [..., K] (rows need not be normalised
// exactly but must be non-negative) and returns one_hot(sample) + probs -
// probs.detach(): forward value is exactly one-hot (in probs' dtype), the
// gradient flows to `probs` unchanged. With `generator` the draw is
// reproducible.
torch::Tensor SampleOneHotStraightThrough(const torch::Tensor& probs,
                                          std::optional<torch::Generator> generator = std::nullopt);

// Entropy of the categorical(s) given by `logits` over the last dim: [..., K] -> [...].
torch::Tensor CategoricalEntropy(const torch::Tensor& logits);

// log p(onehot) = sum(onehot * log_softmax(logits), -1): [..., K] x [..., K] -> [...].
// `onehot` may be a straight-through sample (gradient flows into it too).
torch::Tensor CategoricalLogProb(const torch::Tensor& logits, const torch::Tensor& onehot);

// KL(lhs || rhs) for a latent of V independent categoricals with K classes,
// summed over the variables: [..., V, K] x [..., V, K] -> [...].
// Inputs are (possibly unnormalised) logits; pass UnimixLogits(...) to get the
// KL of the mixed distributions as DreamerV3 does.
torch::Tensor CategoricalKL(const torch::Tensor& lhs_logits, const torch::Tensor& rhs_logits);

// DreamerV3's KL balancing with free bits, elementwise over [...]:
//   dyn = max(free_nats, KL(sg(post) || prior))   -- trains the prior only
//   rep = max(free_nats, KL(post || sg(prior)))   -- trains the posterior only
// Below free_nats the loss is exactly free_nats with zero gradient.
// post_logits, prior_logits: [..., V, K] -> dyn, rep: [...]. The world model
// weights them (0.5 dyn + 0.1 rep) and averages.
struct DynRepLoss {
  torch::Tensor dyn;  // [...]
  torch::Tensor rep;  // [...]
};
DynRepLoss DynRepLosses(const torch::Tensor& post_logits, const torch::Tensor& prior_logits,
                        double free_nats = 1.0);

}  // namespace dreamfleet::dreamer

#endif  // DREAMFLEET_LEARNER_DISTRIBUTIONS_H_
