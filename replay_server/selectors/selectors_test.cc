#include <map>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "replay_server/selectors/interface.h"

namespace dreamfleet::replay {
namespace {

std::unique_ptr<Selector> Make(const std::string& name, double exponent = 1.0,
                               double decay = 0.5) {
  SelectorOptions options;
  options.name = name;
  options.priority_exponent = exponent;
  options.recency_decay = decay;
  absl::StatusOr<std::unique_ptr<Selector>> selector = CreateSelector(options);
  EXPECT_TRUE(selector.ok()) << selector.status();
  return std::move(*selector);
}

TEST(SelectorTest, UnknownNameIsAnError) {
  SelectorOptions options;
  options.name = "fifo";
  EXPECT_TRUE(absl::IsInvalidArgument(CreateSelector(options).status()));
}

TEST(UniformSelectorTest, SamplesOnlyHeldKeysWithEqualProbability) {
  auto selector = Make("uniform");
  for (uint64_t k = 10; k < 20; ++k) selector->Insert(k);
  EXPECT_TRUE(selector->Delete(12));
  EXPECT_FALSE(selector->Delete(12));
  EXPECT_EQ(selector->size(), 9u);
  std::mt19937_64 rng(1);
  std::map<uint64_t, int> counts;
  for (int i = 0; i < 9000; ++i) {
    Selector::Sampled s = selector->Sample(rng);
    EXPECT_DOUBLE_EQ(s.probability, 1.0 / 9);
    ++counts[s.key];
  }
  EXPECT_EQ(counts.count(12), 0u);
  EXPECT_EQ(counts.size(), 9u);
  for (const auto& [key, count] : counts) EXPECT_GT(count, 700) << key;  // expected 1000
}

TEST(RecencySelectorTest, NewerItemsAreMoreLikelyAndProbabilitiesSumToOne) {
  auto selector = Make("recency", 1.0, /*decay=*/0.5);
  for (uint64_t k = 0; k < 8; ++k) selector->Insert(k);
  std::mt19937_64 rng(2);
  std::map<uint64_t, int> counts;
  std::map<uint64_t, double> probability;
  for (int i = 0; i < 20000; ++i) {
    Selector::Sampled s = selector->Sample(rng);
    ++counts[s.key];
    probability[s.key] = s.probability;
  }
  EXPECT_GT(counts[7], counts[6]);
  EXPECT_GT(counts[6], counts[5]);
  EXPECT_NEAR(probability[7], 0.5 / (1 - std::pow(0.5, 8)), 1e-12);
  double total = 0;
  for (const auto& [key, p] : probability) total += p;
  EXPECT_NEAR(total, 1.0, 0.01);  // keys 0..1 may be unseen (p < 1%)
  // Deleting the newest shifts the weight to the next one; tombstones are never returned.
  EXPECT_TRUE(selector->Delete(7));
  for (int i = 0; i < 1000; ++i) EXPECT_NE(selector->Sample(rng).key, 7u);
}

TEST(PrioritizedSelectorTest, FollowsPrioritiesWithExponent) {
  auto selector = Make("prioritized", /*exponent=*/0.5);
  for (uint64_t k = 0; k < 3000; ++k) selector->Insert(k);  // grows the sum-tree twice
  for (uint64_t k = 0; k < 3000; ++k) EXPECT_TRUE(selector->Update(k, 0.0));
  EXPECT_TRUE(selector->Update(5, 4.0));    // weight 2
  EXPECT_TRUE(selector->Update(2999, 1.0)); // weight 1
  EXPECT_FALSE(selector->Update(99999, 1.0));
  std::mt19937_64 rng(3);
  int five = 0;
  for (int i = 0; i < 3000; ++i) {
    Selector::Sampled s = selector->Sample(rng);
    ASSERT_TRUE(s.key == 5 || s.key == 2999) << s.key;
    EXPECT_NEAR(s.probability, s.key == 5 ? 2.0 / 3 : 1.0 / 3, 1e-12);
    five += s.key == 5;
  }
  EXPECT_GT(five, 1700);  // expected 2000
  // New items get the largest priority seen so far (4 -> weight 2).
  selector->Insert(77777);
  EXPECT_NEAR(selector->Sample(rng).probability, 0.4, 0.2 + 1e-9);
  EXPECT_TRUE(selector->Delete(5));
  EXPECT_TRUE(selector->Delete(77777));
  EXPECT_EQ(selector->Sample(rng).key, 2999u);
}

TEST(PrioritizedSelectorTest, AllZeroPrioritiesFallBackToUniform) {
  auto selector = Make("prioritized");
  selector->Insert(1);
  selector->Insert(2);
  selector->Update(1, 0);
  selector->Update(2, 0);
  std::mt19937_64 rng(4);
  EXPECT_DOUBLE_EQ(selector->Sample(rng).probability, 0.5);
}

}  // namespace
}  // namespace dreamfleet::replay
