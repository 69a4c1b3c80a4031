#include "bench/grid_scripted.h"

#include <vector>

#include "envs/gridworld.h"
#include "gtest/gtest.h"

namespace dreamfleet::bench {
namespace {

using envs::GridWorld;

constexpr int kView = GridWorld::kViewSize;
constexpr int kChannels = GridWorld::kEgocentricChannels;

// An egocentric view of open floor, everything seen, the agent facing up.
std::vector<float> OpenView() {
  std::vector<float> obs(kView * kView * kChannels, 0.0f);
  obs[((kView - 1) * kView + kView / 2) * kChannels + 6 + 3] = 1.0f;  // compass: up
  return obs;
}

void Put(std::vector<float>* obs, int row, int col, int channel) {
  (*obs)[(row * kView + col) * kChannels + channel] = 1.0f;
}

TEST(SeekGoal, NoGoalInView) { EXPECT_EQ(SeekGoal(OpenView()), -1); }

TEST(SeekGoal, WalksToAGoalAhead) {
  auto obs = OpenView();
  Put(&obs, 2, kView / 2, /*goal*/ 1);
  EXPECT_EQ(SeekGoal(obs), GridWorld::kForward);
}

TEST(SeekGoal, TurnsTowardsAGoalBeside) {
  auto left = OpenView();
  Put(&left, kView - 1, 0, 1);  // level with the agent, on its left
  EXPECT_EQ(SeekGoal(left), GridWorld::kLeft);
  auto right = OpenView();
  Put(&right, kView - 1, kView - 1, 1);
  EXPECT_EQ(SeekGoal(right), GridWorld::kRight);
}

TEST(SeekGoal, GoesForwardFirstThenTurnsWhenAWallIsAhead) {
  auto obs = OpenView();
  Put(&obs, 3, kView - 1, 1);  // ahead and to the right
  EXPECT_EQ(SeekGoal(obs), GridWorld::kForward);
  Put(&obs, kView - 2, kView / 2, /*wall*/ 0);
  EXPECT_EQ(SeekGoal(obs), GridWorld::kRight);
}

TEST(SeekGoal, WalksRoundAWallBetweenItAndTheGoal) {
  auto obs = OpenView();
  Put(&obs, 3, kView / 2, 1);          // straight ahead...
  Put(&obs, kView - 2, kView / 2, 0);  // ...behind the wall right in front
  const int step = SeekGoal(obs);
  EXPECT_TRUE(step == GridWorld::kLeft || step == GridWorld::kRight) << step;
}

TEST(SeekGoal, GivesUpOnAGoalNoWalkInViewReaches) {
  auto obs = OpenView();
  Put(&obs, 2, kView / 2, 1);
  for (int col = 0; col < kView; ++col) Put(&obs, 4, col, 0);  // a wall across the view
  EXPECT_EQ(SeekGoal(obs), -1);
}

// The real FourRooms env: walking to a goal in view lifts success well above random play, and a
// map of what was seen lifts it further (at 300 episodes each, the figures are within a few
// points of bench_grid_scripted's 5,000 a seed).
TEST(PlayGridPolicy, FourRoomsSuccessOrdersThePolicies) {
  double success[5] = {};
  for (const NamedGridPolicy& p : GridPolicies()) {
    GridPlayResult result;
    ASSERT_TRUE(PlayGridPolicy("grid_fourrooms", p.policy, 300, 1, 0.2, &result).ok()) << p.name;
    ASSERT_EQ(result.episodes, 300);
    EXPECT_GT(result.goal_in_view_steps, 0) << p.name;
    EXPECT_LT(result.goal_in_view_steps, result.steps) << p.name;
    // Every success saw the goal first (it was ahead); random play misses it in some episodes.
    EXPECT_GE(result.goal_seen_episodes, result.successes) << p.name;
    if (p.policy == GridPolicy::kRandom) EXPECT_LT(result.goal_seen_episodes, result.episodes);
    success[static_cast<int>(p.policy)] = result.successes / 300.0;
  }
  const double random = success[static_cast<int>(GridPolicy::kRandom)];
  EXPECT_GT(random, 0.01);
  EXPECT_LT(random, 0.2);
  EXPECT_GT(success[static_cast<int>(GridPolicy::kRandomSeek)], random + 0.1);
  EXPECT_GT(success[static_cast<int>(GridPolicy::kMapSeek)], 0.75);
}

TEST(PlayGridPolicy, RefusesEnvsWithKeysOrWithoutTheEgocentricView) {
  GridPlayResult result;
  const auto doorkey = PlayGridPolicy("grid_doorkey_8x8", GridPolicy::kRandom, 1, 1, 0.2, &result);
  EXPECT_EQ(doorkey.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(doorkey.message().find("grid_doorkey_8x8"), std::string::npos) << doorkey;
  EXPECT_FALSE(PlayGridPolicy("minatar_breakout", GridPolicy::kRandom, 1, 1, 0.2, &result).ok());
}

// A player of its own through PlayGrid: one that only turns left never reaches the goal, yet sees
// it in the episodes whose goal is within view of the start (a full turn shows every side); an
// action outside the three ends the play with an error naming it.
TEST(PlayGrid, CountsWhatAPlayerOfItsOwnSeesAndRefusesBadActions) {
  class Spinner : public GridPlayer {
   public:
    void NewEpisode() override { ++episodes; }
    absl::Status Choose(const std::vector<float>& obs, int* action) override {
      EXPECT_EQ(obs.size(), static_cast<size_t>(kView * kView * kChannels));
      *action = bad ? 7 : GridWorld::kLeft;
      return absl::OkStatus();
    }
    int episodes = 0;
    bool bad = false;
  };
  envs::EnvOptions options;
  options.name = "grid_fourrooms";
  options.view = "symbolic_egocentric";
  Spinner spinner;
  GridPlayResult result;
  ASSERT_TRUE(PlayGrid(options, 200, 1, &spinner, &result).ok());
  EXPECT_EQ(spinner.episodes, 200);
  EXPECT_EQ(result.successes, 0);
  EXPECT_EQ(result.steps, 200 * 100);  // every episode runs to the time limit
  EXPECT_GT(result.goal_seen_episodes, 0);
  EXPECT_LT(result.goal_seen_episodes, 100);
  spinner.bad = true;
  const absl::Status bad = PlayGrid(options, 1, 1, &spinner, &result);
  EXPECT_EQ(bad.code(), absl::StatusCode::kInternal);
  EXPECT_NE(bad.message().find("action 7"), std::string::npos) << bad;
  options.view = "full";
  EXPECT_EQ(PlayGrid(options, 1, 1, &spinner, &result).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace dreamfleet::bench
