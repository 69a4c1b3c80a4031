// Policy: the part of the agent the actors run — encoder, RSSM posterior step and actor head —
// as one module. In the learner it shares its submodules with the agent (no copy); an actor
// process builds an identical Policy from the same AgentConfig and loads the weights the learner
// exports as named tensors (ExportPolicyWeights -> wire -> ImportPolicyWeights). Act() is one
// batched step for K envs, sampling actions as DreamerV3 does during env interaction.
#pragma once

#include <torch/torch.h>

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "dreamer/agent_config.h"
#include "dreamer/exploration.h"
#include "dreamer/models/encoder.h"
#include "dreamer/models/mlp.h"
#include "dreamer/models/rssm.h"
#include "envs/vector_env.h"

namespace dreamfleet::dreamer {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// Recurrent state of K envs between Act() calls.
struct PolicyState {
  torch::Tensor deter;        // [K, D]
  torch::Tensor stoch;        // [K, S, C]
  torch::Tensor prev_action;  // int64 [K]
};

class PolicyImpl : public torch::nn::Module {
 public:
  // A fresh policy (actor processes); weights come from ImportPolicyWeights.
  explicit PolicyImpl(const AgentConfig& config);
  // A view of the learner's own modules.
  PolicyImpl(const AgentConfig& config, Encoder encoder, Rssm rssm, Mlp actor);

  PolicyState Initial(int64_t envs) const;
  // obs: K envs' current observations; is_first bool [K] (true after a reset, also on the first
  // call). Returns int64 actions [K], sampled from the policy or, when `greedy`, its most likely
  // action (evaluation), and writes the new state into *state.
  torch::Tensor Act(const Observation& obs, const torch::Tensor& is_first, PolicyState* state,
                    std::optional<torch::Generator> gen = std::nullopt, bool greedy = false);

  const AgentConfig& config() const { return config_; }

 private:
  AgentConfig config_;
  Encoder encoder_{nullptr};
  Rssm rssm_{nullptr};
  Mlp actor_{nullptr};
};
TORCH_MODULE(Policy);

// The observations of `batch` envs of `spec`, laid out env after env in the given buffers (those
// of an envs::VectorEnv), as tensors that wrap the buffers without copying: the buffers must
// outlive the Observation. Buffers of observations the spec does not have are ignored.
Observation WrapEnvObservations(const envs::EnvSpec& spec, int64_t batch, const uint8_t* image,
                                const float* vector, const int32_t* text);

// One env-interaction step of `policy` for `batch` envs of `spec`: their current observations in
// the given buffers (laid out as WrapEnvObservations reads them) and their is_first flags (1 after
// a reset and on the first call) in `is_first`; the recurrent state in *state (defined, for
// `batch` envs) carries over between calls. Samples one action per env into *actions (the most
// likely one when `greedy`). In inference mode, without copying the observations. With `explore`
// (enabled), the envs holding a random action take it instead, and the recurrent state records the
// action actually taken.
absl::Status ActOnObservations(Policy& policy, const envs::EnvSpec& spec, int64_t batch,
                               const uint8_t* image, const float* vector, const int32_t* text,
                               const uint8_t* is_first, PolicyState* state,
                               torch::Generator& generator, std::vector<int>* actions,
                               bool greedy = false, HeldRandomActions* explore = nullptr);

// ActOnObservations on the K envs of `envs` (their current observations and is_first flags): the
// one policy step of the actor processes and the single-process trainer.
absl::Status ActOnEnvs(Policy& policy, const envs::VectorEnv& envs, PolicyState* state,
                       torch::Generator& generator, std::vector<int>* actions, bool greedy = false,
                       HeldRandomActions* explore = nullptr);

// Every parameter and buffer of `policy` by name, cloned to contiguous CPU float tensors.
NamedTensors ExportPolicyWeights(Policy& policy);
// Copies `weights` into `policy`. Fails (and changes nothing) unless the names are exactly the
// policy's and every shape matches; the message names the first offending tensor.
absl::Status ImportPolicyWeights(const NamedTensors& weights, Policy& policy);

}  // namespace dreamfleet::dreamer
