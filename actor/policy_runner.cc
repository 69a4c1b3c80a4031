#include "actor/policy_runner.h"

#include <torch/torch.h>

#include <optional>

#include "absl/strings/str_cat.h"
#include "dreamer/agent_config.h"
#include "dreamer/compute_threads.h"
#include "dreamer/policy.h"
#include "dreamer/tensor_convert.h"
#include "services/status_macros.h"

namespace dreamfleet::actor {

struct PolicyRunner::Impl {
  int num_envs = 0;
  torch::Generator generator;
  std::optional<dreamer::HeldRandomActions> explore;
  std::string model_config;
  dreamer::Policy policy{nullptr};
  dreamer::PolicyState state;
  int64_t version = 0;
};

PolicyRunner::PolicyRunner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PolicyRunner::~PolicyRunner() = default;

absl::StatusOr<std::unique_ptr<PolicyRunner>> PolicyRunner::Create(
    int num_envs, int threads, uint64_t seed, const dreamer::ExplorationOptions& explore) {
  if (num_envs <= 0) return absl::InvalidArgumentError("PolicyRunner needs at least one env");
  RETURN_IF_ERROR(dreamer::HeldRandomActions::Validate(explore));
  dreamer::SetComputeThreads(threads);
  auto impl = std::make_unique<Impl>();
  impl->num_envs = num_envs;
  impl->generator = at::detail::createCPUGenerator(seed);
  impl->explore.emplace(num_envs, explore, seed ^ 0x9e3779b97f4a7c15ull);
  return std::unique_ptr<PolicyRunner>(new PolicyRunner(std::move(impl)));
}

absl::Status PolicyRunner::Load(const broadcast::WeightsVersion& weights) {
  try {
    ASSIGN_OR_RETURN(dreamer::NamedTensors tensors, dreamer::FromNamedTensors(weights.tensors));
    if (!impl_->policy || weights.model_config != impl_->model_config) {
      absl::StatusOr<dreamer::AgentConfig> config =
          dreamer::AgentConfig::Parse(weights.model_config);
      if (!config.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("weights version ", weights.version, ": bad model config: ",
                         config.status().message()));
      }
      dreamer::Policy policy(*config);
      policy->eval();
      RETURN_IF_ERROR(dreamer::ImportPolicyWeights(tensors, policy));
      impl_->policy = policy;
      impl_->model_config = weights.model_config;
      impl_->state = impl_->policy->Initial(impl_->num_envs);
    } else {
      RETURN_IF_ERROR(dreamer::ImportPolicyWeights(tensors, impl_->policy));
    }
    impl_->version = weights.version;
    return absl::OkStatus();
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("loading weights version ", weights.version, ": ",
                                            e.what_without_backtrace()));
  }
}

bool PolicyRunner::ready() const { return static_cast<bool>(impl_->policy); }
int64_t PolicyRunner::version() const { return impl_->version; }

absl::Status PolicyRunner::Act(const envs::VectorEnv& envs, std::vector<int>* actions) {
  if (!impl_->policy) return absl::FailedPreconditionError("no weights loaded yet");
  if (envs.num_envs() != impl_->num_envs) {
    return absl::InvalidArgumentError(
        absl::StrCat("policy runner built for ", impl_->num_envs, " envs, got ", envs.num_envs()));
  }
  return dreamer::ActOnEnvs(impl_->policy, envs, &impl_->state, impl_->generator, actions,
                            /*greedy=*/false, &*impl_->explore);
}

int64_t PolicyRunner::explored_steps() const { return impl_->explore->explored_steps(); }

}  // namespace dreamfleet::actor
