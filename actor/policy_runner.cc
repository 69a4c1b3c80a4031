#include "actor/policy_runner.h"

#include <torch/torch.h>

#include "absl/strings/str_cat.h"
#include "learner/agent_config.h"
#include "learner/compute_threads.h"
#include "learner/policy.h"
#include "learner/weights_convert.h"

namespace dreamfleet::actor {

struct PolicyRunner::Impl {
  int num_envs = 0;
  torch::Generator generator;
  std::string model_config;
  learner::Policy policy{nullptr};
  learner::PolicyState state;
  int64_t version = 0;
};

PolicyRunner::PolicyRunner(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
PolicyRunner::~PolicyRunner() = default;

absl::StatusOr<std::unique_ptr<PolicyRunner>> PolicyRunner::Create(int num_envs, int threads,
                                                                   uint64_t seed) {
  if (num_envs <= 0) return absl::InvalidArgumentError("PolicyRunner needs at least one env");
  learner::SetComputeThreads(threads);
  auto impl = std::make_unique<Impl>();
  impl->num_envs = num_envs;
  impl->generator = at::detail::createCPUGenerator(seed);
  return std::unique_ptr<PolicyRunner>(new PolicyRunner(std::move(impl)));
}

absl::Status PolicyRunner::Load(const services::WeightsVersion& weights) {
  try {
    absl::StatusOr<learner::NamedTensors> tensors = learner::FromWeightsVersion(weights);
    if (!tensors.ok()) return tensors.status();
    if (!impl_->policy || weights.model_config != impl_->model_config) {
      absl::StatusOr<learner::AgentConfig> config = learner::AgentConfig::Parse(weights.model_config);
      if (!config.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("weights version ", weights.version, ": bad model config: ",
                         config.status().message()));
      }
      learner::Policy policy(*config);
      policy->eval();
      if (absl::Status status = learner::ImportPolicyWeights(*tensors, policy); !status.ok()) {
        return status;
      }
      impl_->policy = policy;
      impl_->model_config = weights.model_config;
      impl_->state = impl_->policy->Initial(impl_->num_envs);
    } else if (absl::Status status = learner::ImportPolicyWeights(*tensors, impl_->policy);
               !status.ok()) {
      return status;
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

absl::Status PolicyRunner::Act(const VectorEnv& envs, std::vector<int>* actions) {
  if (!impl_->policy) return absl::FailedPreconditionError("no weights loaded yet");
  const EnvSpec& spec = envs.spec();
  const int64_t k = envs.num_envs();
  if (k != impl_->num_envs) {
    return absl::InvalidArgumentError(
        absl::StrCat("policy runner built for ", impl_->num_envs, " envs, got ", k));
  }
  try {
    // Inference mode, not just no-grad: no version counters or autograd metadata on the ~100
    // small tensors of a policy step.
    c10::InferenceMode inference;
    // The env batch outlives this call: wrap it without copying.
    const learner::Observation obs =
        learner::WrapEnvObservations(spec, k, envs.image(), envs.vector(), envs.text());
    torch::Tensor is_first =
        torch::from_blob(const_cast<uint8_t*>(envs.is_first()), {k}, torch::kByte).to(torch::kBool);
    torch::Tensor action = impl_->policy->Act(obs, is_first, &impl_->state, impl_->generator);
    action = action.to(torch::kCPU).to(torch::kLong).contiguous();
    actions->resize(k);
    const int64_t* data = action.data_ptr<int64_t>();
    for (int64_t i = 0; i < k; ++i) (*actions)[i] = static_cast<int>(data[i]);
    return absl::OkStatus();
  } catch (const c10::Error& e) {
    return absl::InternalError(absl::StrCat("policy step failed: ", e.what_without_backtrace()));
  }
}

}  // namespace dreamfleet::actor
