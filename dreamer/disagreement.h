// Disagreement: Plan2Explore's ensemble (Sekar et al., 2020) for exploration by the world model's
// own uncertainty. `disag_models` MLPs each predict the next posterior's stochastic state (its
// S x C one-hot sample, flattened) from a state's features and the one-hot action taken in it.
// They learn the same targets from the same replayed transitions and differ only in their random
// initial weights, so where the data has taught them they agree, and where a transition is new
// they disagree: the standard deviation across members, averaged over the outputs, is the
// transition's novelty. The learner adds it to the imagined and replayed rewards as
//   r_intr = disag_scale * (d - mean(d)) / mean(d)   (mean over the update's imagined steps, and
//                                                    over its replayed ones for those)
// (IntrinsicReward), zero on average, so it pulls the actor towards what the model does not know
// yet without rewarding or punishing the length of an episode. Learner-only: actors never run it.
//
// The members run as one batched network: the first layer of all of them is a single matrix
// product (their weights side by side), the later ones one batched product each, so the ensemble
// costs a handful of large operations rather than members x layers small ones. Each member keeps
// its own parameter tensors (an Mlp each), so the optimiser clips each member's gradients on
// their own, as for separate networks.
#pragma once

#include <torch/torch.h>

#include <vector>

#include "dreamer/agent_config.h"
#include "dreamer/models/mlp.h"

namespace dreamfleet::dreamer {

// One training pass over a replayed window (DisagreementImpl::Fit).
struct DisagreementFit {
  // The members' mean squared error (averaged over members, so its size does not depend on the
  // ensemble's), with its graph into the members' weights.
  torch::Tensor loss;
  // [B, T-1]: the members' disagreement about each transition t -> t+1 (detached; computed by the
  // same forward pass as the loss, so with the weights before this update's step).
  torch::Tensor disag;
  // [B, T-1]: 1 where the transition stays inside an episode (the ones learned), 0 into an
  // episode's first step.
  torch::Tensor keep;
};

class DisagreementImpl : public torch::nn::Module {
 public:
  // config.disag_models members, each an MLP of config.enc_layers x config.units (Linear, Norm,
  // SiLU) and a Linear output of stoch x classes.
  explicit DisagreementImpl(const AgentConfig& config);

  // Fits the transitions t -> t+1 of a replayed window: feat [B, T, F] and stoch [B, T, S, C]
  // (the posterior; both read detached), action int64 [B, T] (taken in step t). Transitions into
  // an episode's first step are left out.
  DisagreementFit Fit(const torch::Tensor& feat, const torch::Tensor& action,
                      const torch::Tensor& stoch, const torch::Tensor& is_first);

  // The members' disagreement about the transition from each state: feat [..., F] and action
  // int64 [...] -> [...] (standard deviation across members, mean over the predicted entries).
  torch::Tensor Disagree(const torch::Tensor& feat, const torch::Tensor& action);

  int64_t size() const { return static_cast<int64_t>(members_.size()); }
  // Member k as a network of its own (its parameters are the ensemble's).
  Mlp member(int64_t k) const { return members_.at(k); }

 private:
  // One layer's parameters, one tensor per member.
  struct Layer {
    std::vector<torch::Tensor> weight, bias, scale, shift;  // Linear [out, in], [out]; Norm [out]
  };

  // feat [N, F], action [N] -> the members' predictions [K, N, S*C].
  torch::Tensor Predict(const torch::Tensor& feat, const torch::Tensor& action);
  static torch::Tensor Spread(const torch::Tensor& preds);  // [K, N, O] -> [N]

  int64_t num_actions_ = 0;
  int64_t units_ = 0;
  bool layer_norm_ = false;
  std::vector<Mlp> members_;
  std::vector<Layer> hidden_;  // enc_layers x (Linear -> Norm -> SiLU)
  Layer out_;                  // the output Linear
};
TORCH_MODULE(Disagreement);

// scale * (disag - mean) / mean with mean = `mean` (a 0-dim tensor; floored at 1e-8).
torch::Tensor IntrinsicReward(const torch::Tensor& disag, const torch::Tensor& mean, double scale);

}  // namespace dreamfleet::dreamer
