// nes_homebrew through the real Nestopia core: a scripted player reaches the flag, determinism,
// save-state reset, independent instances (also on two threads), and bad-input errors.
#include "envs/nes_homebrew_env.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dreamfleet::envs {
namespace {

using ::testing::HasSubstr;

enum Action { kNoop = 0, kRight = 1, kRightA = 2, kRightB = 3, kRightAB = 4, kA = 5, kLeft = 6 };

struct Episode {
  std::unique_ptr<Environment> env;
  std::vector<uint8_t> image;
  StepBuffer buffer;
};

Episode MakeEpisode(EnvOptions options = {}) {
  options.name = "nes_homebrew";
  if (options.sticky_actions < 0.0f) options.sticky_actions = 0.0f;
  Episode e;
  auto env = MakeNesHomebrew(options);
  EXPECT_TRUE(env.ok()) << env.status();
  if (!env.ok()) return e;
  e.env = std::move(*env);
  e.image.resize(e.env->spec().image_bytes());
  e.buffer.image = e.image.data();
  return e;
}

absl::Span<const uint8_t> Ram(Episode& e) { return static_cast<LibretroEnv*>(e.env.get())->ram(); }

// Runs right holding B and jumps at the pits and over the enemy, from RAM alone.
int ScriptedAction(const HomebrewState& s) {
  static constexpr int kPitStarts[] = {96, 192, 352};
  for (int pit : kPitStarts) {
    if (pit - s.x >= 2 && pit - s.x <= 14) return kRightAB;
  }
  if (s.enemy_x - s.x >= 0 && s.enemy_x - s.x <= 28) return kRightAB;
  return kRightB;
}

TEST(NesHomebrewEnvTest, ScriptedPlayerReachesTheFlag) {
  Episode e = MakeEpisode();
  ASSERT_NE(e.env, nullptr);
  EXPECT_EQ(e.env->spec().num_actions, 7);
  EXPECT_EQ(e.env->spec().image_bytes(), 64 * 64 * 3);
  ASSERT_TRUE(e.env->Reset(1, &e.buffer).ok());
  EXPECT_TRUE(e.buffer.is_first);
  HomebrewState start = ReadHomebrewState(Ram(e));
  EXPECT_EQ(start.x, 16);
  EXPECT_EQ(start.lives, 3);
  EXPECT_EQ(start.game_mode, 1);

  float total = 0.0f;
  int steps = 0;
  HomebrewState s = start;
  while (!e.buffer.is_last && steps < 500) {
    ASSERT_TRUE(e.env->Step(ScriptedAction(s), &e.buffer).ok());
    total += e.buffer.reward;
    s = ReadHomebrewState(Ram(e));
    ++steps;
  }
  EXPECT_TRUE(s.level_done) << "x " << s.x << " deaths " << s.deaths << " after " << steps;
  EXPECT_EQ(s.deaths, 0);
  EXPECT_GE(s.x, homebrew_ram::kFlagX);
  EXPECT_TRUE(e.buffer.is_last);
  EXPECT_TRUE(e.buffer.is_terminal);
  EXPECT_TRUE(e.buffer.success);
  // Progress 16 -> x at 1/32 per pixel, plus the flag bonus.
  EXPECT_NEAR(total, (s.x - 16) * HomebrewRules::kProgressScale + HomebrewRules::kFlagBonus, 1e-3);
  EXPECT_GE(s.score, 1000);
}

TEST(NesHomebrewEnvTest, StandingStillLosesNothingAndWalkingIntoThePitCostsALife) {
  Episode e = MakeEpisode();
  ASSERT_NE(e.env, nullptr);
  ASSERT_TRUE(e.env->Reset(0, &e.buffer).ok());
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(e.env->Step(kNoop, &e.buffer).ok());
  EXPECT_EQ(ReadHomebrewState(Ram(e)).x, 16);
  float total = 0.0f;
  bool died = false;
  for (int i = 0; i < 60 && !died; ++i) {
    ASSERT_TRUE(e.env->Step(kRight, &e.buffer).ok());
    total += e.buffer.reward;
    died = e.buffer.reward < 0.0f;
  }
  ASSERT_TRUE(died);
  EXPECT_FLOAT_EQ(e.buffer.reward, HomebrewRules::kDeathPenalty);
  EXPECT_EQ(ReadHomebrewState(Ram(e)).lives, 2);
  EXPECT_FALSE(e.buffer.is_last);
}

TEST(NesHomebrewEnvTest, SameActionsGiveSameRamAndImages) {
  Episode a = MakeEpisode(), b = MakeEpisode();
  ASSERT_NE(a.env, nullptr);
  ASSERT_NE(b.env, nullptr);
  ASSERT_TRUE(a.env->Reset(7, &a.buffer).ok());
  ASSERT_TRUE(b.env->Reset(7, &b.buffer).ok());
  for (int i = 0; i < 80; ++i) {
    const int action = (i * 7 + i / 5) % 7;
    ASSERT_TRUE(a.env->Step(action, &a.buffer).ok());
    ASSERT_TRUE(b.env->Step(action, &b.buffer).ok());
    ASSERT_EQ(a.image, b.image) << "step " << i;
    ASSERT_EQ(a.buffer.reward, b.buffer.reward);
  }
  const auto ram_a = Ram(a), ram_b = Ram(b);
  EXPECT_EQ(std::vector<uint8_t>(ram_a.begin(), ram_a.end()),
            std::vector<uint8_t>(ram_b.begin(), ram_b.end()));
}

TEST(NesHomebrewEnvTest, ResetRestoresTheStartState) {
  Episode e = MakeEpisode();
  ASSERT_NE(e.env, nullptr);
  ASSERT_TRUE(e.env->Reset(3, &e.buffer).ok());
  const std::vector<uint8_t> first_image = e.image;
  const auto ram = Ram(e);
  const std::vector<uint8_t> first_ram(ram.begin(), ram.end());
  // The scene is drawn: sky and ground differ.
  EXPECT_NE(*std::min_element(first_image.begin(), first_image.end()),
            *std::max_element(first_image.begin(), first_image.end()));
  for (int i = 0; i < 30; ++i) ASSERT_TRUE(e.env->Step(kRightB, &e.buffer).ok());
  EXPECT_GT(ReadHomebrewState(Ram(e)).x, 16);
  EXPECT_NE(e.image, first_image);
  ASSERT_TRUE(e.env->Reset(3, &e.buffer).ok());
  EXPECT_EQ(e.image, first_image);
  const auto again = Ram(e);
  EXPECT_EQ(std::vector<uint8_t>(again.begin(), again.end()), first_ram);
  EXPECT_TRUE(e.buffer.is_first);
  EXPECT_EQ(e.buffer.reward, 0.0f);
}

// Runs `steps` of `action` and returns the final x.
int RunAlone(int action, int steps) {
  Episode e = MakeEpisode();
  EXPECT_TRUE(e.env->Reset(0, &e.buffer).ok());
  for (int i = 0; i < steps; ++i) EXPECT_TRUE(e.env->Step(action, &e.buffer).ok());
  return ReadHomebrewState(Ram(e)).x;
}

TEST(NesHomebrewEnvTest, TwoInstancesStepIndependently) {
  Episode a = MakeEpisode(), b = MakeEpisode();
  ASSERT_NE(a.env, nullptr);
  ASSERT_NE(b.env, nullptr);
  ASSERT_TRUE(a.env->Reset(0, &a.buffer).ok());
  ASSERT_TRUE(b.env->Reset(0, &b.buffer).ok());
  for (int i = 0; i < 12; ++i) {
    ASSERT_TRUE(a.env->Step(kRight, &a.buffer).ok());
    ASSERT_TRUE(b.env->Step(kLeft, &b.buffer).ok());
  }
  const int xa = ReadHomebrewState(Ram(a)).x, xb = ReadHomebrewState(Ram(b)).x;
  EXPECT_EQ(xa, 16 + 12 * 4);
  EXPECT_EQ(xb, 8);
  EXPECT_EQ(xa, RunAlone(kRight, 12));
}

TEST(NesHomebrewEnvTest, InstancesOnTwoThreadsMatchSequentialRuns) {
  const int alone_right = RunAlone(kRightB, 40);
  const int alone_left = RunAlone(kRightAB, 40);
  int threaded[2] = {0, 0};
  std::thread t0([&] { threaded[0] = RunAlone(kRightB, 40); });
  std::thread t1([&] { threaded[1] = RunAlone(kRightAB, 40); });
  t0.join();
  t1.join();
  EXPECT_EQ(threaded[0], alone_right);
  EXPECT_EQ(threaded[1], alone_left);
}

TEST(NesHomebrewEnvTest, GrayscaleAndNativeSizeObservations) {
  EnvOptions gray;
  gray.grayscale = true;
  Episode g = MakeEpisode(gray);
  ASSERT_NE(g.env, nullptr);
  EXPECT_EQ(g.env->spec().image_channels, 1);
  ASSERT_TRUE(g.env->Reset(0, &g.buffer).ok());
  EnvOptions native;
  native.image_size = 0;
  Episode n = MakeEpisode(native);
  ASSERT_NE(n.env, nullptr);
  EXPECT_EQ(n.env->spec().image_width, 256);
  EXPECT_GE(n.env->spec().image_height, 224);
  ASSERT_TRUE(n.env->Reset(0, &n.buffer).ok());
  ASSERT_TRUE(n.env->Step(kRight, &n.buffer).ok());
}

TEST(NesHomebrewEnvTest, SmallAndGrayObservationsAreTheNativeOneResized) {
  EnvOptions native_options, gray_options;
  native_options.image_size = 0;
  gray_options.grayscale = true;
  Episode native = MakeEpisode(native_options), small = MakeEpisode(),
          gray = MakeEpisode(gray_options);
  ASSERT_NE(native.env, nullptr);
  ASSERT_NE(small.env, nullptr);
  ASSERT_NE(gray.env, nullptr);
  const EnvSpec& n = native.env->spec();
  AreaResizer resizer(n.image_height, n.image_width, 64, 64, 3);
  std::vector<uint8_t> expected(64 * 64 * 3), expected_gray(64 * 64);
  for (Episode* e : {&native, &small, &gray}) ASSERT_TRUE(e->env->Reset(5, &e->buffer).ok());
  for (int i = 0; i < 25; ++i) {
    for (Episode* e : {&native, &small, &gray}) {
      ASSERT_TRUE(e->env->Step(i % 5 == 0 ? kRightAB : kRightB, &e->buffer).ok());
    }
    resizer.Resize(native.image.data(), expected.data());
    ASSERT_EQ(small.image, expected) << "step " << i;
    RgbToGray(expected.data(), 64 * 64, expected_gray.data());
    ASSERT_EQ(gray.image, expected_gray) << "step " << i;
  }
}

TEST(NesHomebrewEnvTest, StickyActionsDependOnTheSeed) {
  EnvOptions sticky;
  sticky.sticky_actions = 0.5f;
  Episode e = MakeEpisode(sticky);
  ASSERT_NE(e.env, nullptr);
  auto run = [&](uint64_t seed) {
    EXPECT_TRUE(e.env->Reset(seed, &e.buffer).ok());
    for (int i = 0; i < 40; ++i) {
      EXPECT_TRUE(e.env->Step(i % 2 == 0 ? kRight : kNoop, &e.buffer).ok());
    }
    return ReadHomebrewState(Ram(e)).x;
  };
  const int x1 = run(1), x1_again = run(1);
  EXPECT_EQ(x1, x1_again);
  bool any_differs = false;
  for (uint64_t seed = 2; seed < 6 && !any_differs; ++seed) any_differs = run(seed) != x1;
  EXPECT_TRUE(any_differs);
}

TEST(NesHomebrewEnvTest, TimeLimitEndsWithoutTerminal) {
  EnvOptions limited;
  limited.max_episode_steps = 5;
  Episode e = MakeEpisode(limited);
  ASSERT_NE(e.env, nullptr);
  ASSERT_TRUE(e.env->Reset(0, &e.buffer).ok());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(e.env->Step(kNoop, &e.buffer).ok());
  EXPECT_TRUE(e.buffer.is_last);
  EXPECT_FALSE(e.buffer.is_terminal);
  EXPECT_FALSE(e.env->Step(kNoop, &e.buffer).ok());
}

TEST(NesHomebrewEnvTest, MissingCoreIsAClearError) {
  EnvOptions options;
  options.name = "nes_homebrew";
  options.core = "/nonexistent/nestopia_libretro.so";
  auto env = MakeNesHomebrew(options);
  ASSERT_FALSE(env.ok());
  EXPECT_TRUE(absl::IsNotFound(env.status())) << env.status();
  EXPECT_THAT(std::string(env.status().message()), HasSubstr("/nonexistent/nestopia_libretro.so"));
}

TEST(NesHomebrewEnvTest, MissingRomSaysWhatItNeeds) {
  EnvOptions options;
  options.rom = "/nonexistent/homebrew.nes";
  auto env = MakeNesHomebrew(options);
  ASSERT_FALSE(env.ok());
  EXPECT_TRUE(absl::IsNotFound(env.status()));
  EXPECT_THAT(std::string(env.status().message()), HasSubstr("\"/nonexistent/homebrew.nes\""));
}

TEST(NesHomebrewEnvTest, WrongConsoleRomIsRejected) {
  const std::string path =
      testing::TempDir() + "/" + std::to_string(getpid()) + "_not_a_nes_rom.gb";
  {
    std::ofstream out(path, std::ios::binary);
    std::string bytes(32768, '\0');
    bytes.replace(0x134, 8, "POKEMON ");
    out << bytes;
  }
  EnvOptions options;
  options.rom = path;
  auto env = MakeNesHomebrew(options);
  ASSERT_FALSE(env.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(env.status())) << env.status();
  EXPECT_THAT(std::string(env.status().message()), HasSubstr("is not an NES ROM"));
  std::remove(path.c_str());
}

}  // namespace
}  // namespace dreamfleet::envs
