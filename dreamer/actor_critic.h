// ActorCritic: the DreamerV3 policy (categorical over discrete actions with 1% unimix) and the
// twohot critic with its slow EMA copy. Loss() takes an imagined rollout (from every posterior
// state of the batch, with the world model's reward and continue predictions) and the replay
// features, and returns:
//   policy  = -w * ((1-rho) logpi(a) * sg(adv) + actent * H[pi]),  adv = (R^lambda - v) / S,
//             S = max(1, P95-P5) (imag_explore: max(adv, 0) on the steps of a held random action)
//   dynamics = -rho * w * R^lambda / sg(S), rho = actor_dynamics: the same return differentiated
//             through the rollout (ActorCriticOutput::dynamics; for the actor's parameters only;
//             over every step, held ones included: a held action's one-hot carries no gradient,
//             so it teaches the policy's actions after the hold). Without a rollout that carries
//             gradient there is no dynamics term and rho is taken as 0.
//   value   =  w * (twohot(R^lambda) + slowreg * twohot(slow value))       (imagined states; not
//             on held random steps: their returns are another policy's, and are left out of the
//             normaliser's P95-P5 too)
//   repval  = (1-last) * (twohot(R_replay) + slowreg * twohot(slow value)) (replayed states,
//             bootstrapped with the imagined returns; the official `repval_loss`; where no
//             imagination started (imag_starts) or an explored one did (imag_explore), with the
//             critic's value of the state)
// as in the official agent (slowtar off, valnorm/advnorm off, contdisc on).
#pragma once

#include <torch/torch.h>

#include <map>
#include <optional>
#include <string>

#include "dreamer/agent_config.h"
#include "dreamer/models/mlp.h"
#include "dreamer/return_normalizer.h"

namespace dreamfleet::dreamer {

// Inputs to the actor-critic losses. Imagined tensors carry no gradient, except with
// actor_dynamics > 0, where feat, reward and cont carry the rollout's (straight-through action and
// latent samples through the world model to the actor); Loss reads them detached for everything
// but the dynamics objective.
struct ImaginedTrajectory {
  torch::Tensor feat;    // [N, H+1, F]
  torch::Tensor action;  // [N, H+1] int64
  torch::Tensor reward;  // [N, H+1] predicted reward on entering each state
  torch::Tensor cont;    // [N, H+1] continue probability (discounted when contdisc)
  // Which posterior state of the batch (flat index b * T + t) each row started from; undefined
  // when the rows are every posterior state in order (N = B * T).
  torch::Tensor start_index;  // [N] int64
  // How many of each row's first actions were one held random action instead of the policy's
  // (imag_explore; 0 = none). Those steps train the actor only where they beat the critic's value
  // (positive advantage) and do not train the critic; the steps after them are the policy's again
  // and train both. The replay value loss does not bootstrap from an explored row's return.
  // Undefined when imag_explore is 0. On the device of the other tensors.
  torch::Tensor held;  // [N] int64
};

struct ReplayContext {
  torch::Tensor feat;         // [B, T, F] posterior features (with gradient if repval_grad)
  torch::Tensor reward;       // [B, T]
  torch::Tensor is_last;      // bool [B, T]
  torch::Tensor is_terminal;  // bool [B, T]
};

struct ActorCriticOutput {
  torch::Tensor loss;                            // scalar, scaled sum
  std::map<std::string, torch::Tensor> losses;   // policy, value, repval (0-dim)
  std::map<std::string, torch::Tensor> metrics;  // entropy, ret, adv_mag, ... (0-dim, detached)
  bool finite = true;                            // false: imagined returns were not finite
  // actor_dynamics > 0 and a trajectory with gradient: -rho * mean(w * R^lambda) / S, with the
  // graph through the world model and the critic. Not part of `loss`: the caller takes its
  // gradient for the actor's parameters only (the world model and critic must not chase it).
  torch::Tensor dynamics;
};

class ActorCriticImpl : public torch::nn::Module {
 public:
  explicit ActorCriticImpl(const AgentConfig& config);

  // Unimixed action log-probs [..., A].
  torch::Tensor PolicyLogits(const torch::Tensor& feat);
  // Samples int64 actions [N] from features [N, F].
  torch::Tensor SampleAction(const torch::Tensor& feat, std::optional<torch::Generator> gen);
  // A float one-hot sample [N, A] whose gradient is the policy's probabilities' (straight-through).
  torch::Tensor SampleOneHot(const torch::Tensor& feat, std::optional<torch::Generator> gen);

  // Updates `retnorm` with the imagined returns (only when they are finite).
  ActorCriticOutput Loss(const ImaginedTrajectory& traj, const ReplayContext& replay,
                         ReturnNormalizer& retnorm);

  // slow <- rate * value + (1 - rate) * slow
  void UpdateSlowValue();

  // Parameters the optimiser trains (the slow critic is excluded).
  std::vector<torch::Tensor> TrainableParameters();

  Mlp actor() const { return actor_; }
  Mlp value() const { return value_; }
  Mlp slow_value() const { return slow_value_; }

 private:
  AgentConfig config_;
  Mlp actor_{nullptr};
  Mlp value_{nullptr};
  Mlp slow_value_{nullptr};
};
TORCH_MODULE(ActorCritic);

// What the replay value loss bootstraps from at each replayed state [B, T]: the imagined return of
// the rollout that started there (imagined_return [N], row i started at flat index start_index[i]
// = b * T + t), and the critic's value [B, T] where none started. An undefined start_index means
// every state started a rollout, in order (N = B * T; value may be undefined).
torch::Tensor ReplayBootstrap(const torch::Tensor& imagined_return,
                              const torch::Tensor& start_index, const torch::Tensor& value,
                              int64_t batch, int64_t length);

// The official replay lambda-return (respects episode ends inside the window):
//   R_t = r_{t+1} + gamma (1-term_{t+1}) [ (1 - l_{t+1}) boot_{t+1} + l_{t+1} R_{t+1} ],
//   l_{t+1} = lambda (1 - last_{t+1}),  R_{T-1} = boot_{T-1}.
// reward, boot [B, T], is_last / is_terminal bool [B, T] -> [B, T-1].
torch::Tensor ReplayLambdaReturn(const torch::Tensor& reward, const torch::Tensor& boot,
                                 const torch::Tensor& is_last, const torch::Tensor& is_terminal,
                                 double gamma, double lambda);

}  // namespace dreamfleet::dreamer
