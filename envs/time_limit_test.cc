#include "envs/time_limit.h"

#include <vector>

#include "envs/registry.h"
#include "gtest/gtest.h"

namespace dreamfleet::envs {
namespace {

TEST(TimeLimitTest, CutsEpisodesWithIsLastButNotIsTerminal) {
  EnvOptions o;
  o.name = "minatar_freeway";  // its own game lasts 2500 steps
  auto inner = MakeEnvironment(o);
  ASSERT_TRUE(inner.ok()) << inner.status();
  TimeLimit env(*std::move(inner), 10);
  EXPECT_EQ(env.spec().max_episode_steps, 10);
  std::vector<uint8_t> image(env.spec().image_bytes());
  StepBuffer b;
  b.image = image.data();
  for (int episode = 0; episode < 2; ++episode) {
    ASSERT_TRUE(env.Reset(episode, &b).ok());
    for (int i = 0; i < 10; ++i) {
      ASSERT_FALSE(b.is_last);
      ASSERT_TRUE(env.Step(0, &b).ok());
    }
    EXPECT_TRUE(b.is_last);
    EXPECT_FALSE(b.is_terminal);
  }
}

TEST(TimeLimitTest, ZeroMeansNoLimit) {
  EnvOptions o;
  o.name = "grid_empty_5x5";
  TimeLimit env(*MakeEnvironment(o), 0);
  EXPECT_EQ(env.spec().max_episode_steps, 100);  // the env's own MiniGrid limit
}

}  // namespace
}  // namespace dreamfleet::envs
