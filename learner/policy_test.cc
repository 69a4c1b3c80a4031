// Policy export: the learner's policy weights load into a fresh Policy in "another process"
// and act identically under a fixed seed; mismatched weights are rejected with clear errors.
#include "learner/policy.h"

#include <gtest/gtest.h>

#include "learner/batch.h"
#include "learner/dreamer_agent.h"
#include "learner/learner_test_util.h"

namespace dreamfleet::learner {
namespace {

using testing::DebugConfig;

TEST(PolicyTest, ExportedWeightsActIdenticallyInAFreshPolicy) {
  auto c = DebugConfig(true, true, true);
  auto agent = DreamerAgent::Create(c);
  ASSERT_TRUE(agent.ok());
  ASSERT_TRUE((*agent)->Train(RandomBatch(c, 3, 6, 1)).ok());
  auto weights = (*agent)->ExportPolicy();
  ASSERT_FALSE(weights.empty());

  torch::manual_seed(1234);  // the fresh policy starts from different random weights
  Policy fresh(c);
  ASSERT_TRUE(ImportPolicyWeights(weights, fresh).ok());

  auto learner_policy = (*agent)->policy();
  const int64_t k = 4;
  auto sa = learner_policy->Initial(k);
  auto sb = fresh->Initial(k);
  auto ga = at::detail::createCPUGenerator(5);
  auto gb = at::detail::createCPUGenerator(5);
  auto data = RandomBatch(c, k, 6, 2);
  for (int t = 0; t < 6; ++t) {
    Observation obs{data.image.select(1, t), data.vector.select(1, t), data.text.select(1, t)};
    auto first = data.is_first.select(1, t);
    auto a = learner_policy->Act(obs, first, &sa, ga);
    auto b = fresh->Act(obs, first, &sb, gb);
    EXPECT_EQ(a.sizes().vec(), std::vector<int64_t>{k});
    EXPECT_TRUE(torch::equal(a, b)) << "step " << t;
    EXPECT_TRUE(torch::equal(sa.deter, sb.deter)) << "step " << t;
    EXPECT_GE(a.min().item<int64_t>(), 0);
    EXPECT_LT(a.max().item<int64_t>(), c.num_actions);
  }
}

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

}  // namespace
}  // namespace dreamfleet::learner
