#include "dreamer/policy.h"

#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "dreamer/distributions.h"
#include "dreamer/module_options.h"

namespace dreamfleet::dreamer {
namespace {

std::string ShapeString(const torch::Tensor& t) {
  return absl::StrCat("[", absl::StrJoin(t.sizes(), ","), "]");
}

}  // namespace

PolicyImpl::PolicyImpl(const AgentConfig& c) : config_(c) {
  encoder_ = register_module("encoder", Encoder(c));
  rssm_ = register_module("rssm", Rssm(RssmOptionsFor(c, encoder_->out_size())));
  actor_ = register_module("actor", Mlp(PolicyHeadOptions(c)));
}

PolicyImpl::PolicyImpl(const AgentConfig& c, Encoder encoder, Rssm rssm, Mlp actor) : config_(c) {
  encoder_ = register_module("encoder", std::move(encoder));
  rssm_ = register_module("rssm", std::move(rssm));
  actor_ = register_module("actor", std::move(actor));
}

PolicyState PolicyImpl::Initial(int64_t envs) const {
  auto device = actor_->parameters().front().device();
  auto s = rssm_->Initial(envs, device);
  return {s.deter, s.stoch,
          torch::zeros({envs}, torch::TensorOptions().dtype(torch::kLong).device(device))};
}

torch::Tensor PolicyImpl::Act(const Observation& obs, const torch::Tensor& is_first,
                              PolicyState* state, std::optional<torch::Generator> gen,
                              bool greedy) {
  torch::NoGradGuard no_grad;
  auto device = actor_->parameters().front().device();
  Observation o;
  if (obs.image.defined()) o.image = obs.image.to(device);
  if (obs.vector.defined()) o.vector = obs.vector.to(device);
  if (obs.text.defined()) o.text = obs.text.to(device);
  auto embed = encoder_->forward(o);
  auto first = is_first.to(device, torch::kBool);
  auto next = rssm_->ObsStep({state->deter, state->stoch}, state->prev_action, embed, first, gen);
  auto probs =
      UnimixLogits(actor_->forward(RssmImpl::Feat(next.deter, next.stoch)), config_.policy_unimix)
          .exp();
  auto action = greedy ? probs.argmax(-1)
                : gen  ? torch::multinomial(probs, 1, true, *gen).squeeze(-1)
                       : torch::multinomial(probs, 1, true).squeeze(-1);
  state->deter = next.deter;
  state->stoch = next.stoch;
  state->prev_action = action;
  return action;
}

Observation WrapEnvObservations(const envs::EnvSpec& spec, int64_t batch, const uint8_t* image,
                                const float* vector, const int32_t* text) {
  Observation obs;
  if (spec.image_bytes() > 0) {
    obs.image = torch::from_blob(const_cast<uint8_t*>(image),
                                 {batch, spec.image_height, spec.image_width, spec.image_channels},
                                 torch::kUInt8);
  }
  if (spec.vector_size > 0) {
    obs.vector =
        torch::from_blob(const_cast<float*>(vector), {batch, spec.vector_size}, torch::kFloat);
  }
  if (spec.text_length > 0) {
    obs.text =
        torch::from_blob(const_cast<int32_t*>(text), {batch, spec.text_length}, torch::kInt32);
  }
  return obs;
}

absl::Status ActOnObservations(Policy& policy, const envs::EnvSpec& spec, int64_t batch,
                               const uint8_t* image, const float* vector, const int32_t* text,
                               const uint8_t* is_first, PolicyState* state,
                               torch::Generator& generator, std::vector<int>* actions, bool greedy,
                               HeldRandomActions* explore) {
  const int64_t k = batch;
  if (state->deter.defined() && state->deter.size(0) != k) {
    return absl::InvalidArgumentError(
        absl::StrCat("policy state is for ", state->deter.size(0), " envs, the env batch has ", k));
  }
  if (explore != nullptr && explore->num_envs() != k) {
    return absl::InvalidArgumentError(
        absl::StrCat("exploration is for ", explore->num_envs(), " envs, the env batch has ", k));
  }
  try {
    // Inference mode, not just no-grad: no version counters or autograd metadata on the ~100
    // small tensors of a policy step.
    c10::InferenceMode inference;
    const Observation obs = WrapEnvObservations(spec, k, image, vector, text);
    torch::Tensor first =
        torch::from_blob(const_cast<uint8_t*>(is_first), {k}, torch::kByte).to(torch::kBool);
    // A generator drives sampling only on its own device: a policy on a GPU samples from the
    // device's default generator (a CPU one would be refused), as DreamerAgent::Gen does.
    std::optional<torch::Generator> gen;
    const auto parameters = policy->parameters();
    if (parameters.empty() || parameters.front().device() == generator.device()) gen = generator;
    torch::Tensor action = policy->Act(obs, first, state, gen, greedy);
    action = action.to(torch::kCPU).to(torch::kLong).contiguous();
    actions->resize(k);
    const int64_t* data = action.data_ptr<int64_t>();
    for (int64_t i = 0; i < k; ++i) (*actions)[i] = static_cast<int>(data[i]);
    if (explore != nullptr && explore->Apply(is_first, spec.num_actions, actions) > 0) {
      // The next step's prior follows the action the env takes, not the one the policy sampled.
      std::vector<int64_t> taken(actions->begin(), actions->end());
      state->prev_action = torch::tensor(taken, torch::kLong).to(state->prev_action.device());
    }
    return absl::OkStatus();
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("policy step failed: ", e.what_without_backtrace()));
  }
}

absl::Status ActOnEnvs(Policy& policy, const envs::VectorEnv& envs, PolicyState* state,
                       torch::Generator& generator, std::vector<int>* actions, bool greedy,
                       HeldRandomActions* explore) {
  return ActOnObservations(policy, envs.spec(), envs.num_envs(), envs.image(), envs.vector(),
                           envs.text(), envs.is_first(), state, generator, actions, greedy,
                           explore);
}

NamedTensors ExportPolicyWeights(Policy& policy) {
  torch::NoGradGuard no_grad;
  NamedTensors out;
  for (const auto& item : policy->named_parameters()) {
    out.emplace_back(item.key(), item.value().detach().to(torch::kCPU).contiguous().clone());
  }
  for (const auto& item : policy->named_buffers()) {
    out.emplace_back(item.key(), item.value().detach().to(torch::kCPU).contiguous().clone());
  }
  return out;
}

absl::Status ImportPolicyWeights(const NamedTensors& weights, Policy& policy) {
  std::map<std::string, torch::Tensor> targets;
  for (const auto& item : policy->named_parameters()) targets[item.key()] = item.value();
  for (const auto& item : policy->named_buffers()) targets[item.key()] = item.value();
  std::map<std::string, const torch::Tensor*> given;
  for (const auto& [name, tensor] : weights) {
    auto it = targets.find(name);
    if (it == targets.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("policy weights: unknown tensor \"", name, "\" (config mismatch?)"));
    }
    if (it->second.sizes() != tensor.sizes()) {
      return absl::InvalidArgumentError(
          absl::StrCat("policy weights: tensor \"", name, "\" has shape ", ShapeString(tensor),
                       " but the policy expects ", ShapeString(it->second)));
    }
    if (!given.emplace(name, &tensor).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("policy weights: tensor \"", name, "\" given twice"));
    }
  }
  for (const auto& [name, tensor] : targets) {
    if (!given.count(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("policy weights: missing tensor \"", name, "\""));
    }
  }
  torch::NoGradGuard no_grad;
  for (const auto& [name, tensor] : given) targets[name].copy_(*tensor);
  return absl::OkStatus();
}

}  // namespace dreamfleet::dreamer
