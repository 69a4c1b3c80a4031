// Rssm: DreamerV3's recurrent state-space model. The deterministic state `deter` is a block GRU
// (official `_core`: deter, stoch and action each pass Linear -> Norm -> SiLU to `hidden` units,
// are appended to every deter block, then a BlockLinear hidden layer and a BlockLinear GRU with
// update bias -1). The stochastic state is `stoch` categoricals of `classes` classes each, with a
// 1% uniform mix and straight-through one-hot samples. The posterior sees [deter, embed]; the
// prior sees deter only (two hidden layers, official imglayers=2).
//
// Data flow: Observe() scans a [B, T] sequence of embeddings and previous actions (resetting
// state and action to zero where is_first) into posterior samples and both logits; Imagine()
// rolls the prior forward under a policy; ObsStep() is the single step the actors run.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <optional>
#include <string>

#include "dreamer/models/block_linear.h"
#include "dreamer/models/norm.h"

namespace dreamfleet::dreamer {

struct RssmOptions {
  TORCH_ARG(int64_t, embed) = 0;
  TORCH_ARG(int64_t, num_actions) = 0;
  TORCH_ARG(int64_t, deter) = 512;
  TORCH_ARG(int64_t, hidden) = 64;
  TORCH_ARG(int64_t, stoch) = 32;
  TORCH_ARG(int64_t, classes) = 4;
  TORCH_ARG(int64_t, blocks) = 8;
  TORCH_ARG(double, unimix) = 0.01;
  TORCH_ARG(std::string, norm) = "rms";
};

// One latent state (a batch of N).
struct RssmState {
  torch::Tensor deter;  // [N, D]
  torch::Tensor stoch;  // [N, S, C] one-hot sample (straight-through)
};

// The result of Observe over a [B, T] sequence.
struct RssmSequence {
  torch::Tensor deter;        // [B, T, D]
  torch::Tensor stoch;        // [B, T, S, C] posterior samples
  torch::Tensor post_logit;   // [B, T, S, C] unimixed log-probs
  torch::Tensor prior_logit;  // [B, T, S, C] unimixed log-probs
  RssmState last;             // the state after the final step
};

// An imagined rollout of H steps from N start states (H + 1 entries including the start).
struct Imagination {
  torch::Tensor deter;   // [N, H+1, D]
  torch::Tensor stoch;   // [N, H+1, S, C]
  torch::Tensor action;  // [N, H+1] int64, action taken in each state (last one sampled too)
};

class RssmImpl : public torch::nn::Module {
 public:
  explicit RssmImpl(RssmOptions options);

  RssmState Initial(int64_t batch, torch::Device device) const;
  // [deter, flattened stoch]: [..., D] x [..., S, C] -> [..., D + S*C]
  static torch::Tensor Feat(const torch::Tensor& deter, const torch::Tensor& stoch);

  // Block GRU step. deter [N, D], stoch [N, S, C], action one-hot [N, A] -> deter [N, D].
  torch::Tensor Core(const torch::Tensor& deter, const torch::Tensor& stoch,
                     const torch::Tensor& action);
  // Unimixed log-probs [N, S, C].
  torch::Tensor PosteriorLogit(const torch::Tensor& deter, const torch::Tensor& embed);
  torch::Tensor PriorLogit(const torch::Tensor& deter);  // [..., D] -> [..., S, C]
  torch::Tensor Sample(const torch::Tensor& logit, std::optional<torch::Generator> gen);

  // One posterior step: resets where is_first, advances with prev_action (int64 [N]).
  RssmState ObsStep(const RssmState& prev, const torch::Tensor& prev_action,
                    const torch::Tensor& embed, const torch::Tensor& is_first,
                    std::optional<torch::Generator> gen, torch::Tensor* post_logit = nullptr);

  // embed [B, T, E], prev_action int64 [B, T] (the action taken before each step),
  // is_first bool [B, T], start state [B].
  RssmSequence Observe(const torch::Tensor& embed, const torch::Tensor& prev_action,
                       const torch::Tensor& is_first, const RssmState& start,
                       std::optional<torch::Generator> gen);

  // Policy: features [N, F] -> int64 actions [N], or float one-hot actions [N, A] (which may carry
  // a straight-through gradient into the rollout; the action's index is what Imagination stores).
  using PolicyFn = std::function<torch::Tensor(const torch::Tensor& feat)>;
  Imagination Imagine(const RssmState& start, const PolicyFn& policy, int64_t horizon,
                      std::optional<torch::Generator> gen);

  const RssmOptions& options() const { return options_; }

 private:
  RssmOptions options_;
  torch::nn::Linear dynin_deter_{nullptr}, dynin_stoch_{nullptr}, dynin_action_{nullptr};
  Norm dynin_deter_norm_{nullptr}, dynin_stoch_norm_{nullptr}, dynin_action_norm_{nullptr};
  BlockLinear dynhid_{nullptr};
  Norm dynhid_norm_{nullptr};
  BlockLinear dyngru_{nullptr};
  torch::nn::Linear obs_{nullptr};
  Norm obs_norm_{nullptr};
  torch::nn::Linear obs_logit_{nullptr};
  torch::nn::Linear prior0_{nullptr}, prior1_{nullptr};
  Norm prior0_norm_{nullptr}, prior1_norm_{nullptr};
  torch::nn::Linear prior_logit_{nullptr};
};
TORCH_MODULE(Rssm);

}  // namespace dreamfleet::dreamer
