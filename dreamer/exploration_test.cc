// Held random actions (ez-greedy): how often the envs explore, that a hold keeps its action, that
// a new episode ends a hold, that the seed decides everything and that prob 0 changes nothing.
#include "dreamer/exploration.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

namespace dreamfleet::dreamer {
namespace {

constexpr int kActions = 3;

// Runs `steps` steps of one env whose policy always picks action 0 - 1 = -1 (so a replaced action
// is visible); returns the action taken at every step, -1 where the policy's stood.
std::vector<int> OneEnv(HeldRandomActions& explore, int steps, int first_every = 0) {
  std::vector<int> taken;
  for (int t = 0; t < steps; ++t) {
    std::vector<int> actions = {-1};
    const uint8_t first = (t == 0 || (first_every > 0 && t % first_every == 0)) ? 1 : 0;
    const int n = explore.Apply(&first, kActions, &actions);
    EXPECT_EQ(n, actions[0] == -1 ? 0 : 1);
    taken.push_back(actions[0]);
  }
  return taken;
}

TEST(HeldRandomActionsTest, ZeroProbabilityChangesNothing) {
  HeldRandomActions explore(1, {0.0, 5}, 1);
  EXPECT_FALSE(explore.enabled());
  for (int a : OneEnv(explore, 1000)) EXPECT_EQ(a, -1);
  EXPECT_EQ(explore.explored_steps(), 0);
}

TEST(HeldRandomActionsTest, ExploresTheExpectedShareOfStepsWithEveryAction) {
  // Not holding, a hold starts with p = 0.1 per step; a hold lasts 1..5 steps (mean 3). Between
  // holds the env waits (1 - p) / p = 9 steps on average: 3 / (3 + 9) = 25% of steps explore.
  HeldRandomActions explore(1, {0.1, 5}, 7);
  const std::vector<int> taken = OneEnv(explore, 40000);
  int explored = 0;
  std::vector<int> count(kActions, 0);
  for (int a : taken) {
    if (a < 0) continue;
    ASSERT_LT(a, kActions);
    ++explored;
    ++count[a];
  }
  EXPECT_EQ(explore.explored_steps(), explored);
  EXPECT_NEAR(explored / 40000.0, 0.25, 0.02);
  for (int c : count) EXPECT_NEAR(c / static_cast<double>(explored), 1.0 / kActions, 0.05);
}

// Of two consecutive explored steps, how often the second repeats the first's action.
double RepeatShare(const std::vector<int>& taken) {
  int pairs = 0, same = 0;
  for (size_t t = 1; t < taken.size(); ++t) {
    if (taken[t - 1] < 0 || taken[t] < 0) continue;
    ++pairs;
    same += taken[t] == taken[t - 1];
  }
  return pairs == 0 ? 0 : static_cast<double>(same) / pairs;
}

TEST(HeldRandomActionsTest, AHoldKeepsItsActionAndLastsAtMostMaxHold) {
  // Long holds, rarely started: consecutive explored steps are almost always one hold.
  HeldRandomActions held(1, {0.02, 8}, 3);
  const std::vector<int> long_holds = OneEnv(held, 40000);
  EXPECT_GT(RepeatShare(long_holds), 0.9);
  // A run of explored steps longer than 8 needs a second hold to start at once (p = 0.02 each).
  int run = 0, long_runs = 0, runs = 0;
  for (int a : long_holds) {
    run = a < 0 ? 0 : run + 1;
    if (run == 1) ++runs;
    if (run == 9) ++long_runs;
  }
  EXPECT_GT(runs, 100);
  // About 0.02 x P(two holds > 8 steps) ~ 1% of runs (1..9-step holds would give ~12%).
  EXPECT_LT(long_runs, runs / 30);
  // Holds of one step: consecutive explored steps are independent draws (1/3 repeat).
  HeldRandomActions single(1, {0.5, 1}, 3);
  EXPECT_NEAR(RepeatShare(OneEnv(single, 40000)), 1.0 / kActions, 0.03);
}

TEST(HeldRandomActionsTest, ANewEpisodeEndsAHold) {
  // Holds of up to 1000 steps, episodes of 10: without the reset almost every step would explore
  // once a hold started; with it an episode explores from its first hold to its end only.
  HeldRandomActions explore(1, {0.05, 1000}, 11);
  const std::vector<int> taken = OneEnv(explore, 20000, /*first_every=*/10);
  int carried = 0, holds_at_end = 0;
  for (size_t t = 10; t < taken.size(); t += 10) {
    if (taken[t - 1] < 0) continue;
    ++holds_at_end;
    carried += taken[t] >= 0 && taken[t] == taken[t - 1];
  }
  EXPECT_GT(holds_at_end, 100);
  // A fresh hold at an episode's first step (p = 0.05) repeats the old action a third of the time.
  EXPECT_LT(carried, holds_at_end / 10);
}

TEST(HeldRandomActionsTest, ValidateNamesTheBadOption) {
  EXPECT_TRUE(HeldRandomActions::Validate({0.0, 1}).ok());
  EXPECT_TRUE(HeldRandomActions::Validate({1.0, 100}).ok());
  for (double bad : {-0.1, 1.5, std::nan("")}) {
    const absl::Status s = HeldRandomActions::Validate({bad, 3});
    EXPECT_TRUE(absl::IsInvalidArgument(s)) << bad;
    EXPECT_NE(s.message().find("chance"), std::string::npos) << s;
  }
  const absl::Status s = HeldRandomActions::Validate({0.1, 0});
  EXPECT_TRUE(absl::IsInvalidArgument(s));
  EXPECT_NE(s.message().find("longest hold of 0"), std::string::npos) << s;
}

TEST(HeldRandomActionsTest, TheSeedDecidesEveryEnvsActions) {
  HeldRandomActions a(4, {0.3, 4}, 99), b(4, {0.3, 4}, 99), c(4, {0.3, 4}, 100);
  const std::vector<uint8_t> first = {1, 0, 0, 1};
  bool differs = false;
  for (int t = 0; t < 200; ++t) {
    std::vector<int> x(4, -1), y(4, -1), z(4, -1);
    EXPECT_EQ(a.Apply(first.data(), kActions, &x), b.Apply(first.data(), kActions, &y));
    c.Apply(first.data(), kActions, &z);
    EXPECT_EQ(x, y);
    differs |= x != z;
  }
  EXPECT_TRUE(differs);
}

}  // namespace
}  // namespace dreamfleet::dreamer
