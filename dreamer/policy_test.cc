// Policy weights: mismatched weights are rejected with clear errors; env observations are wrapped
// without copies. (That exported weights act identically: learner/policy_export_test.cc.)
#include "dreamer/policy.h"

#include <gtest/gtest.h>

#include "dreamer/batch.h"
#include "dreamer/exploration.h"
#include "dreamer/test_util.h"

namespace dreamfleet::dreamer {
namespace {

using testing::DebugConfig;

TEST(PolicyTest, ImportRejectsMismatchedWeights) {
  auto c = DebugConfig();
  Policy a(c);
  auto weights = ExportPolicyWeights(a);

  auto wrong_shape = weights;
  wrong_shape[0].second = torch::zeros({1, 2, 3});
  auto s = ImportPolicyWeights(wrong_shape, a);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find(weights[0].first), std::string::npos) << s;
  EXPECT_NE(s.message().find("shape"), std::string::npos) << s;

  auto missing = weights;
  missing.pop_back();
  s = ImportPolicyWeights(missing, a);
  EXPECT_NE(s.message().find("missing"), std::string::npos) << s;

  auto unknown = weights;
  unknown.emplace_back("decoder.weight", torch::zeros({1}));
  s = ImportPolicyWeights(unknown, a);
  EXPECT_NE(s.message().find("unknown"), std::string::npos) << s;

  auto bigger = c;
  bigger.units = 32;
  Policy b(bigger);
  EXPECT_FALSE(ImportPolicyWeights(weights, b).ok());
}

TEST(PolicyTest, GreedyActsTheMostLikelyActionAndSamplingDoesNot) {
  auto c = DebugConfig(false, true);
  Policy policy(c);
  {
    // The policy head's last layer outputs its bias only: action 1 most likely (about 50%).
    torch::NoGradGuard no_grad;
    torch::Tensor weight, bias;
    for (const auto& p : policy->named_parameters()) {
      if (p.key().rfind("actor.", 0) == 0 && p.value().size(0) == c.num_actions) {
        (p.value().dim() == 2 ? weight : bias) = p.value();
      }
    }
    ASSERT_TRUE(weight.defined() && bias.defined()) << "no output layer of num_actions rows";
    weight.zero_();
    bias.copy_(torch::tensor({0.0f, 1.0f, 0.0f}));
  }
  constexpr int64_t kEnvs = 64;
  Observation obs;
  obs.vector = torch::randn({kEnvs, c.vector_size});
  const torch::Tensor first = torch::ones({kEnvs}, torch::kBool);
  torch::Generator gen = at::detail::createCPUGenerator(5);
  PolicyState state = policy->Initial(kEnvs);
  torch::Tensor greedy = policy->Act(obs, first, &state, gen, /*greedy=*/true);
  EXPECT_TRUE(torch::equal(greedy, torch::ones({kEnvs}, torch::kLong))) << greedy;
  EXPECT_TRUE(torch::equal(state.prev_action, greedy));  // the next step sees the greedy action
  state = policy->Initial(kEnvs);
  torch::Tensor sampled = policy->Act(obs, first, &state, gen);
  const int64_t ones = sampled.eq(1).sum().item<int64_t>();
  EXPECT_GT(ones, 0);
  EXPECT_LT(ones, kEnvs) << "64 samples at p ~ 0.5 were all the most likely action";
}

TEST(PolicyTest, ActOnEnvsTakesTheHeldRandomActionAndFeedsItBack) {
  envs::EnvOptions env;
  env.name = "minatar_breakout";
  env.view = "symbolic";
  env.action_set = "minimal";
  constexpr int kEnvs = 4;
  absl::StatusOr<std::unique_ptr<envs::VectorEnv>> made = envs::VectorEnv::Create(env, kEnvs);
  ASSERT_TRUE(made.ok()) << made.status();
  envs::VectorEnv& vec = **made;
  ASSERT_TRUE(vec.Reset().ok());
  auto c = DebugConfig(false, true);
  c.vector_size = vec.spec().vector_size;
  c.num_actions = vec.spec().num_actions;
  Policy policy(c);
  torch::Generator gen = at::detail::createCPUGenerator(5);
  PolicyState state = policy->Initial(kEnvs);
  // Greedy, so the policy's own choice is known: with exploration some steps take another
  // action, and the recurrent state always holds the action taken.
  HeldRandomActions explore(kEnvs, {0.3, 3}, 8);
  std::vector<int> actions;
  int64_t off_policy = 0;
  for (int t = 0; t < 50; ++t) {
    std::vector<int> chosen;
    // The policy's own choice from the same state and the same latent sample.
    PolicyState copy{state.deter.clone(), state.stoch.clone(), state.prev_action.clone()};
    // A copy through the state, not Generator::clone(): LibTorch 1.13's clone leaks the copy
    // (the sanitizer build's LeakSanitizer reports it).
    torch::Generator same = at::detail::createCPUGenerator();
    same.set_state(gen.get_state());
    ASSERT_TRUE(ActOnEnvs(policy, vec, &copy, same, &chosen, /*greedy=*/true).ok());
    ASSERT_TRUE(ActOnEnvs(policy, vec, &state, gen, &actions, /*greedy=*/true, &explore).ok());
    ASSERT_EQ(actions.size(), static_cast<size_t>(kEnvs));
    for (int i = 0; i < kEnvs; ++i) {
      EXPECT_EQ(state.prev_action[i].item<int64_t>(), actions[i]) << "step " << t << " env " << i;
      off_policy += actions[i] != chosen[i];
    }
    ASSERT_TRUE(vec.Step(actions).ok());
  }
  EXPECT_GT(explore.explored_steps(), 0);
  EXPECT_GT(off_policy, 0) << "no held random action differed from the policy's";
  EXPECT_LE(off_policy, explore.explored_steps());
}

TEST(PolicyTest, WrapEnvObservationsSharesTheEnvBuffersAndSkipsAbsentOnes) {
  envs::EnvSpec spec;
  spec.image_height = spec.image_width = 2;
  spec.image_channels = 3;
  spec.vector_size = 4;
  std::vector<uint8_t> image(3 * 12, 7);
  std::vector<float> vector(3 * 4, 0.5f);
  Observation obs = WrapEnvObservations(spec, 3, image.data(), vector.data(), nullptr);
  EXPECT_EQ(obs.image.sizes().vec(), (std::vector<int64_t>{3, 2, 2, 3}));
  EXPECT_EQ(obs.image.scalar_type(), torch::kUInt8);
  EXPECT_EQ(obs.image.data_ptr<uint8_t>(), image.data());  // wrapped, not copied
  EXPECT_EQ(obs.vector.sizes().vec(), (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(obs.vector.data_ptr<float>(), vector.data());
  EXPECT_FALSE(obs.text.defined());

  spec.image_height = spec.image_width = spec.image_channels = 0;  // a symbolic gridworld
  obs = WrapEnvObservations(spec, 3, nullptr, vector.data(), nullptr);
  EXPECT_FALSE(obs.image.defined());
  EXPECT_TRUE(obs.vector.defined());
}

}  // namespace
}  // namespace dreamfleet::dreamer
