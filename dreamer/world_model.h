// WorldModel: encoder -> RSSM -> decoder, reward head (twohot over 255 symlog bins, zero-init
// output) and continue head (Bernoulli). Loss() computes DreamerV3's world-model loss on a batch:
//   rec (image MSE summed over pixels; vector symlog-MSE, or Bernoulli cross-entropy for
//   vector_loss "binary") + rew + con
//   + scale_dyn * max(1, KL(sg(post) || prior)) + scale_rep * max(1, KL(post || sg(prior)))
// each averaged over [B, T], and returns the posterior features the actor-critic starts from.
#pragma once

#include <torch/torch.h>

#include <map>
#include <optional>
#include <string>

#include "dreamer/agent_config.h"
#include "dreamer/batch.h"
#include "dreamer/models/encoder.h"
#include "dreamer/models/grid_decoder.h"
#include "dreamer/models/image_decoder.h"
#include "dreamer/models/mlp.h"
#include "dreamer/models/rssm.h"

namespace dreamfleet::dreamer {

struct WorldModelOutput {
  torch::Tensor loss;                            // scalar: the scaled sum
  std::map<std::string, torch::Tensor> losses;   // unscaled 0-dim means: image, vector, rew, con,
                                                 // dyn, rep
  std::map<std::string, torch::Tensor> metrics;  // 0-dim: prior_ent, post_ent
  RssmSequence seq;                              // posterior sequence
  torch::Tensor feat;                            // [B, T, F] posterior features (with gradient)
  torch::Tensor sequence_loss;                   // [B] detached prediction loss per sequence
                                                 // (replay priorities)
};

// The class-balanced weight of each channel's occupied cells in 0/1 grids [..., cells * channels]
// laid out channel-last (cell-major, as the grid envs flatten them; AgentConfig::vector_balance):
// (1 - p_c) / p_c, p_c the share of channel c's entries that are 1 in `grids`, the weight clipped
// to [1, 100]. Returns [channels].
torch::Tensor BalancedChannelWeight(const torch::Tensor& grids, int64_t channels);

// The same weights spread over the entries of `target` [..., cells * channels]: [cells *
// channels], the pos_weight of a Bernoulli cross-entropy on those entries.
torch::Tensor BalancedPositiveWeight(const torch::Tensor& target, int64_t channels);

// What a model trained with vector_balance decodes, mapped back to probabilities. Weighting the
// occupied cells of a channel by w moves the decoder's optimum for a cell occupied with chance q
// to w q / (w q + 1 - q), so an unsure model paints each channel's objects at 0.5 or more wherever
// they might be; this inverts it, q = p / (p + w (1 - p)), with `channel_weight` [channels] from
// BalancedChannelWeight of grids of the same env (as training computes it from its batch).
// `decoded` is [..., cells * channels].
torch::Tensor UnbalancedProbability(const torch::Tensor& decoded,
                                    const torch::Tensor& channel_weight);

// What the world model predicts for a [B, T] window when it observes only the first `context`
// steps and imagines the rest from the window's own actions (the official "openloop" report).
// Steps before `context` are reconstructions of observed steps; the rest are open-loop.
struct OpenLoopPrediction {
  torch::Tensor image;   // uint8 [B, T, H, W, C] (undefined without images)
  torch::Tensor vector;  // float [B, T, V] in the observation's own (raw) space
  torch::Tensor reward;  // float [B, T]
  torch::Tensor cont;    // float [B, T]: the continue head's probability that the episode goes on
};

class WorldModelImpl : public torch::nn::Module {
 public:
  explicit WorldModelImpl(const AgentConfig& config);

  WorldModelOutput Loss(const Batch& batch, std::optional<torch::Generator> gen);

  torch::Tensor RewardMean(const torch::Tensor& feat);    // [..., F] -> [...]
  torch::Tensor ContinueProb(const torch::Tensor& feat);  // [..., F] -> [...]

  // Observes batch steps [0, context) and imagines [context, T) from batch.action; no gradient.
  // 1 <= context < T. Resets inside the window are not modelled (the imagination runs on).
  // Without decode_observations, image and vector stay undefined (only the heads run).
  OpenLoopPrediction OpenLoop(const Batch& batch, int64_t context,
                              std::optional<torch::Generator> gen, bool decode_observations = true);

  // The posterior of the batch's first `steps` steps, observed from the initial state (reset at
  // step 0 and wherever is_first), or, given `resume` (the state after the step before, with
  // `resume_action` [B] taken there), carrying on from it; no gradient.
  RssmSequence Posterior(const Batch& batch, int64_t steps, std::optional<torch::Generator> gen,
                         const std::optional<RssmState>& resume = std::nullopt,
                         const torch::Tensor& resume_action = {});

  // From start states [N], the prior rolled forward under `actions` int64 [N, H]: states
  // [N, H + 1] (entry 0: the start; entry h + 1 follows action h; the Imagination's action
  // [N, H] repeats action H - 1); no gradient.
  Imagination ImagineActions(const RssmState& start, const torch::Tensor& actions,
                             std::optional<torch::Generator> gen);

  // [N, F] -> the decoder's output for the vector observation [N, V], by whichever decoder the
  // model has: symlog space, or logits for vector_loss "binary" (with gradient).
  torch::Tensor DecodeVector(const torch::Tensor& flat);

  // Decoders and heads on features [N, L, F]: fields [N, L, ...]; without decode_observations
  // only the heads run (image and vector stay undefined); no gradient.
  OpenLoopPrediction Predict(const torch::Tensor& feat, bool decode_observations);

  Encoder encoder() const { return encoder_; }
  Rssm rssm() const { return rssm_; }
  const AgentConfig& config() const { return config_; }

 private:
  AgentConfig config_;
  Encoder encoder_{nullptr};
  Rssm rssm_{nullptr};
  ImageDecoder image_decoder_{nullptr};
  Mlp vector_decoder_{nullptr};
  GridDecoder vector_grid_decoder_{nullptr};  // instead of vector_decoder_ (vector_decoder grid)
  Mlp reward_{nullptr};
  Mlp cont_{nullptr};
};
TORCH_MODULE(WorldModel);

}  // namespace dreamfleet::dreamer
