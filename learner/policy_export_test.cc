// Policy export: the learner's policy weights load into a fresh Policy in "another process"
// and act identically under a fixed seed.
#include <gtest/gtest.h>

#include "dreamer/batch.h"
#include "dreamer/policy.h"
#include "dreamer/test_util.h"
#include "learner/dreamer_agent.h"

namespace dreamfleet::learner {
namespace {

using dreamer::testing::DebugConfig;

TEST(PolicyExportTest, ExportedWeightsActIdenticallyInAFreshPolicy) {
  auto c = DebugConfig(true, true, true);
  auto agent = DreamerAgent::Create(c);
  ASSERT_TRUE(agent.ok());
  ASSERT_TRUE((*agent)->Train(dreamer::RandomBatch(c, 3, 6, 1)).ok());
  auto weights = (*agent)->ExportPolicy();
  ASSERT_FALSE(weights.empty());

  torch::manual_seed(1234);  // the fresh policy starts from different random weights
  dreamer::Policy fresh(c);
  ASSERT_TRUE(dreamer::ImportPolicyWeights(weights, fresh).ok());

  auto learner_policy = (*agent)->policy();
  const int64_t k = 4;
  auto sa = learner_policy->Initial(k);
  auto sb = fresh->Initial(k);
  auto ga = at::detail::createCPUGenerator(5);
  auto gb = at::detail::createCPUGenerator(5);
  auto data = dreamer::RandomBatch(c, k, 6, 2);
  for (int t = 0; t < 6; ++t) {
    dreamer::Observation obs{data.image.select(1, t), data.vector.select(1, t),
                             data.text.select(1, t)};
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

}  // namespace
}  // namespace dreamfleet::learner
