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
#pragma once

#include <torch/torch.h>

#include <vector>

#include "dreamer/agent_config.h"
#include "dreamer/models/mlp.h"

namespace dreamfleet::dreamer {

class DisagreementImpl : public torch::nn::Module {
 public:
  // config.disag_models members, each an MLP of config.units x config.enc_layers.
  explicit DisagreementImpl(const AgentConfig& config);

  // Mean squared error of the members' predictions (averaged over members, so its size does not
  // depend on the ensemble's) over the transitions t -> t+1 of a replayed
  // window: feat [B, T, F] and stoch [B, T, S, C] (the posterior; read detached), action int64
  // [B, T] (taken in step t). Transitions into an episode's first step are left out.
  torch::Tensor Loss(const torch::Tensor& feat, const torch::Tensor& action,
                     const torch::Tensor& stoch, const torch::Tensor& is_first);

  // The members' disagreement about the transition from each state: feat [..., F] and action
  // int64 [...] -> [...] (standard deviation across members, mean over the predicted entries).
  torch::Tensor Disagree(const torch::Tensor& feat, const torch::Tensor& action);

  int64_t size() const { return static_cast<int64_t>(members_.size()); }

 private:
  std::vector<torch::Tensor> Predict(const torch::Tensor& feat, const torch::Tensor& action);

  int64_t num_actions_ = 0;
  std::vector<Mlp> members_;
};
TORCH_MODULE(Disagreement);

// scale * (disag - mean) / mean with mean = `mean` (a 0-dim tensor; floored at 1e-8).
torch::Tensor IntrinsicReward(const torch::Tensor& disag, const torch::Tensor& mean, double scale);

}  // namespace dreamfleet::dreamer
