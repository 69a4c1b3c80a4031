#include "envs/registry.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dreamfleet::envs {
namespace {

using ::testing::HasSubstr;

TEST(RegistryTest, UnknownNameIsNotFoundAndListsKnownNames) {
  EnvOptions o;
  o.name = "no_such_env";
  auto env = MakeEnvironment(o);
  ASSERT_EQ(env.status().code(), absl::StatusCode::kNotFound);
  const std::string message(env.status().message());
  EXPECT_THAT(message, HasSubstr("no_such_env"));
  EXPECT_THAT(message, HasSubstr("grid_empty_5x5"));
  EXPECT_THAT(message, HasSubstr("minatar_space_invaders"));
}

TEST(RegistryTest, ListsTheNativeEnvsSortedWithDescriptions) {
  const auto list = ListEnvironments();
  std::vector<std::string> names;
  for (const auto& [name, description] : list) {
    names.push_back(name);
    EXPECT_FALSE(description.empty()) << name;
  }
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  for (const char* expected :
       {"grid_empty_5x5", "grid_empty_8x8", "grid_empty_16x16", "grid_fourrooms",
        "grid_doorkey_5x5", "grid_doorkey_8x8", "minatar_breakout", "minatar_freeway",
        "minatar_asterix", "minatar_seaquest", "minatar_space_invaders"}) {
    EXPECT_THAT(names, testing::Contains(std::string(expected)));
  }
}

TEST(RegistryTest, EveryNativeEnvBuildsResetsAndSteps) {
  for (const auto& [name, description] : ListEnvironments()) {
    if (name.rfind("grid_", 0) != 0 && name.rfind("minatar_", 0) != 0) continue;  // emulators
    SCOPED_TRACE(name);
    EnvOptions o;
    o.name = name;
    auto env = MakeEnvironment(o);
    ASSERT_TRUE(env.ok()) << env.status();
    const EnvSpec& spec = (*env)->spec();
    EXPECT_EQ(spec.name, name);
    EXPECT_EQ(spec.image_height, 64);
    EXPECT_EQ(spec.image_width, 64);
    EXPECT_EQ(spec.image_channels, 3);
    EXPECT_GT(spec.num_actions, 0);
    EXPECT_EQ(static_cast<int>(spec.action_names.size()), spec.num_actions);
    EXPECT_GT(spec.max_episode_steps, 0);
    std::vector<uint8_t> image(spec.image_bytes(), 0);
    StepBuffer b;
    b.image = image.data();
    b.reward = 5.0f;
    ASSERT_TRUE((*env)->Reset(1, &b).ok());
    EXPECT_TRUE(b.is_first);
    EXPECT_EQ(b.reward, 0.0f);
    EXPECT_FALSE(b.is_last);
    ASSERT_TRUE((*env)->Step(0, &b).ok());
    EXPECT_FALSE(b.is_first);
    EXPECT_EQ((*env)->Step(spec.num_actions, &b).code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(RegistryTest, OptionsReachTheEnv) {
  EnvOptions o;
  o.name = "minatar_asterix";
  o.image_size = 84;
  o.grayscale = true;
  o.max_episode_steps = 77;
  auto env = MakeEnvironment(o);
  ASSERT_TRUE(env.ok()) << env.status();
  EXPECT_EQ((*env)->spec().image_height, 84);
  EXPECT_EQ((*env)->spec().image_channels, 1);
  EXPECT_EQ((*env)->spec().max_episode_steps, 77);

  o.name = "grid_doorkey_5x5";
  o.view = "sideways";
  EXPECT_EQ(MakeEnvironment(o).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(MakeEnvironment(o).status().message()),
              testing::HasSubstr(
                  "is not \"full\", \"egocentric\", \"symbolic\" or \"symbolic_egocentric\""));
  o.view = "egocentric";
  EXPECT_TRUE(MakeEnvironment(o).ok());
  o.view = "symbolic";
  EXPECT_TRUE(MakeEnvironment(o).ok());
  o.image_size = 0;
  EXPECT_EQ(MakeEnvironment(o).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(RegistryTest, LookupEnvSpecGivesTheSpecOfTheEnvItWouldBuild) {
  EnvOptions o;
  o.image_size = 32;
  for (const char* name : {"grid_empty_5x5", "grid_doorkey_8x8", "minatar_breakout"}) {
    o.name = name;
    absl::StatusOr<EnvSpec> spec = LookupEnvSpec(o);
    ASSERT_TRUE(spec.ok()) << spec.status();
    auto env = MakeEnvironment(o);
    ASSERT_TRUE(env.ok()) << env.status();
    EXPECT_EQ(spec->name, (*env)->spec().name);
    EXPECT_EQ(spec->image_height, (*env)->spec().image_height);
    EXPECT_EQ(spec->image_channels, (*env)->spec().image_channels);
    EXPECT_EQ(spec->vector_size, (*env)->spec().vector_size);
    EXPECT_EQ(spec->num_actions, (*env)->spec().num_actions);
  }
  // Emulator envs answer from their settings: no ROM or core is touched.
  o.name = "nes_mario";
  o.rom = "/nonexistent/mario.nes";
  o.grayscale = true;
  absl::StatusOr<EnvSpec> mario = LookupEnvSpec(o);
  ASSERT_TRUE(mario.ok()) << mario.status();
  EXPECT_EQ(mario->num_actions, 7);
  EXPECT_EQ(mario->image_height, 32);
  EXPECT_EQ(mario->image_channels, 1);
  o.name = "gb_pokemon_red";
  absl::StatusOr<EnvSpec> pokemon = LookupEnvSpec(o);
  ASSERT_TRUE(pokemon.ok()) << pokemon.status();
  EXPECT_GT(pokemon->text_length, 0);
  // Options that need no ROM file are still checked.
  o.rom = "";
  EXPECT_EQ(LookupEnvSpec(o).status().code(), absl::StatusCode::kInvalidArgument);
  o.rom = "/nonexistent/pokered.gb";
  o.action_repeat = 0;
  EXPECT_EQ(LookupEnvSpec(o).status().code(), absl::StatusCode::kInvalidArgument);
  o.name = "grid_nowhere";
  EXPECT_EQ(LookupEnvSpec(o).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace dreamfleet::envs
