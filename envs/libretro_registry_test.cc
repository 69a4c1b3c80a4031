// The emulator envs through the registry and a VectorEnv of K nes_homebrew instances in one
// process (each instance its own private core copy).
#include <algorithm>
#include <string>
#include <vector>

#include "envs/registry.h"
#include "envs/vector_env.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dreamfleet::envs {
namespace {

using ::testing::HasSubstr;

TEST(LibretroRegistryTest, EmulatorEnvsAreListed) {
  std::vector<std::string> names;
  for (const auto& [name, description] : ListEnvironments()) names.push_back(name);
  EXPECT_THAT(names, testing::IsSupersetOf({"nes_homebrew", "nes_mario", "gb_pokemon_red"}));
}

TEST(LibretroRegistryTest, LookupEnvSpecMatchesTheRunningHomebrewEnv) {
  EnvOptions o;
  o.name = "nes_homebrew";
  absl::StatusOr<EnvSpec> spec = LookupEnvSpec(o);
  ASSERT_TRUE(spec.ok()) << spec.status();
  auto env = MakeEnvironment(o);
  ASSERT_TRUE(env.ok()) << env.status();
  const EnvSpec& running = (*env)->spec();
  EXPECT_EQ(spec->image_height, running.image_height);
  EXPECT_EQ(spec->image_width, running.image_width);
  EXPECT_EQ(spec->image_channels, running.image_channels);
  EXPECT_EQ(spec->num_actions, running.num_actions);
  EXPECT_EQ(spec->max_episode_steps, running.max_episode_steps);
  EXPECT_EQ(spec->reward_max, running.reward_max);
}

TEST(LibretroRegistryTest, VectorEnvRunsSeveralHomebrewInstances) {
  EnvOptions options;
  options.name = "nes_homebrew";
  options.sticky_actions = 0.0f;
  auto vec = VectorEnv::Create(options, 3);
  ASSERT_TRUE(vec.ok()) << vec.status();
  EXPECT_EQ((*vec)->spec().num_actions, 7);
  ASSERT_TRUE((*vec)->Reset().ok());
  const std::vector<int> actions = {1, 6, 3};  // RIGHT, LEFT, RIGHT+B
  for (int i = 0; i < 6; ++i) ASSERT_TRUE((*vec)->Step(actions).ok());
  const float* rewards = (*vec)->reward();
  EXPECT_GT(rewards[0], 0.0f);        // moving right: progress reward
  EXPECT_LE(rewards[1], 0.0f);        // moving left
  EXPECT_GT(rewards[2], rewards[0]);  // running is faster than walking
}

TEST(LibretroRegistryTest, VectorEnvOnTwoThreadsMatchesOneThread) {
  EnvOptions options;
  options.name = "nes_homebrew";
  options.base_seed = 11;  // sticky actions at the default 0.25, seeded per env
  constexpr int kEnvs = 4;
  auto one = VectorEnv::Create(options, kEnvs, /*num_threads=*/1);
  auto two = VectorEnv::Create(options, kEnvs, /*num_threads=*/2);
  ASSERT_TRUE(one.ok()) << one.status();
  ASSERT_TRUE(two.ok()) << two.status();
  ASSERT_TRUE((*one)->Reset().ok());
  ASSERT_TRUE((*two)->Reset().ok());
  const size_t image_bytes = kEnvs * (*one)->spec().image_bytes();
  std::vector<int> actions(kEnvs);
  for (int step = 0; step < 60; ++step) {
    for (int i = 0; i < kEnvs; ++i) actions[i] = (step * 3 + i * 5 + step / 7) % 7;
    ASSERT_TRUE((*one)->Step(actions).ok());
    ASSERT_TRUE((*two)->Step(actions).ok());
    ASSERT_TRUE(std::equal((*one)->image(), (*one)->image() + image_bytes, (*two)->image()))
        << "step " << step;
    ASSERT_TRUE(std::equal((*one)->reward(), (*one)->reward() + kEnvs, (*two)->reward()));
  }
}

TEST(LibretroRegistryTest, RomlessCommercialGamesFailAtCreation) {
  EnvOptions options;
  options.name = "nes_mario";
  options.rom = "/nonexistent/Super Mario Bros. (World).nes";
  auto env = MakeEnvironment(options);
  ASSERT_FALSE(env.ok());
  EXPECT_THAT(std::string(env.status().message()), HasSubstr("set env.rom"));
  options.name = "gb_pokemon_red";
  options.rom = "";
  env = MakeEnvironment(options);
  ASSERT_FALSE(env.ok());
  EXPECT_THAT(std::string(env.status().message()), HasSubstr("Pokemon Red"));
}

}  // namespace
}  // namespace dreamfleet::envs
