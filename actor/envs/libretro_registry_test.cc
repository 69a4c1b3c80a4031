// The emulator envs through the registry and a VectorEnv of K nes_homebrew instances in one
// process (each instance its own private core copy).
#include <string>
#include <vector>

#include "actor/envs/registry.h"
#include "actor/envs/vector_env.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dreamfleet::actor {
namespace {

using ::testing::HasSubstr;

TEST(LibretroRegistryTest, EmulatorEnvsAreListed) {
  std::vector<std::string> names;
  for (const auto& [name, description] : ListEnvironments()) names.push_back(name);
  EXPECT_THAT(names, testing::IsSupersetOf({"nes_homebrew", "nes_mario", "gb_pokemon_red"}));
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
}  // namespace dreamfleet::actor
