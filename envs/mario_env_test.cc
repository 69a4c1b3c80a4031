// Super Mario Bros RAM reader and reward on synthetic RAM images; the missing-ROM error.
#include "envs/mario_env.h"

#include <fstream>
#include <string>
#include <vector>

#include "envs/nes_homebrew_env.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dreamfleet::envs {
namespace {

using ::testing::HasSubstr;

// A 2 KB NES RAM image of Mario alive in 1-1 at x, with `time` on the clock.
std::vector<uint8_t> Ram(int x, int time) {
  std::vector<uint8_t> ram(2048, 0);
  ram[mario_ram::kPlayerState] = 0x08;
  ram[mario_ram::kXPage] = static_cast<uint8_t>(x / 256);
  ram[mario_ram::kXOnPage] = static_cast<uint8_t>(x % 256);
  ram[mario_ram::kYViewport] = 1;
  ram[mario_ram::kLives] = 2;
  ram[mario_ram::kTimeDigits] = static_cast<uint8_t>(time / 100);
  ram[mario_ram::kTimeDigits + 1] = static_cast<uint8_t>(time / 10 % 10);
  ram[mario_ram::kTimeDigits + 2] = static_cast<uint8_t>(time % 10);
  return ram;
}

TEST(MarioRamTest, DecodesPositionClockScoreAndStage) {
  std::vector<uint8_t> ram = Ram(300, 398);
  const uint8_t score[6] = {0, 1, 2, 3, 4, 5};
  std::copy(score, score + 6, ram.begin() + mario_ram::kScoreDigits);
  ram[mario_ram::kWorld] = 3;
  ram[mario_ram::kStage] = 1;
  const MarioState s = ReadMarioState(ram);
  EXPECT_EQ(s.x, 300);
  EXPECT_EQ(s.time, 398);
  EXPECT_EQ(s.score, 123450);
  EXPECT_EQ(s.world, 4);
  EXPECT_EQ(s.stage, 2);
  EXPECT_FALSE(s.dying || s.dead || s.game_over || s.busy || s.flag_get());
}

TEST(MarioRamTest, RecognisesDeathGameOverAndFlag) {
  std::vector<uint8_t> ram = Ram(100, 300);
  ram[mario_ram::kPlayerState] = 0x0B;
  EXPECT_TRUE(ReadMarioState(ram).dying);
  ram = Ram(100, 300);
  ram[mario_ram::kYViewport] = 2;  // fell into a pit
  EXPECT_TRUE(ReadMarioState(ram).dying);
  ram = Ram(100, 300);
  ram[mario_ram::kPlayerState] = 0x06;
  EXPECT_TRUE(ReadMarioState(ram).dead);
  ram[mario_ram::kLives] = 0xFF;
  EXPECT_TRUE(ReadMarioState(ram).game_over);
  ram = Ram(3100, 200);
  ram[mario_ram::kEnemyTypes + 2] = mario_ram::kFlagpole;
  EXPECT_FALSE(ReadMarioState(ram).flag_get());  // the pole is on screen, Mario not on it
  ram[mario_ram::kFloatState] = 3;
  EXPECT_TRUE(ReadMarioState(ram).flag_get());
  ram = Ram(100, 300);
  ram[mario_ram::kPlayerState] = 0x02;  // entering a pipe
  EXPECT_TRUE(ReadMarioState(ram).busy);
}

TEST(MarioRulesTest, RewardIsClippedXDeltaPlusClockPenalty) {
  MarioRules rules;
  rules.Reset(ReadMarioState(Ram(100, 400)));
  EXPECT_FLOAT_EQ(rules.Step(ReadMarioState(Ram(104, 400))).reward, 4.0f);
  EXPECT_FLOAT_EQ(rules.Step(ReadMarioState(Ram(107, 399))).reward, 3.0f - 1.0f);
  EXPECT_FLOAT_EQ(rules.Step(ReadMarioState(Ram(105, 399))).reward, -2.0f);
  // A jump of more than 5 pixels is a teleport (pipe, respawn): no x reward.
  EXPECT_FLOAT_EQ(rules.Step(ReadMarioState(Ram(500, 399))).reward, 0.0f);
  // The clock going up (new life) is no reward.
  EXPECT_FLOAT_EQ(rules.Step(ReadMarioState(Ram(500, 400))).reward, 0.0f);
}

TEST(MarioRulesTest, DeathCostsTwentyFiveClippedToFifteen) {
  MarioRules rules;
  rules.Reset(ReadMarioState(Ram(100, 400)));
  std::vector<uint8_t> dying = Ram(101, 400);
  dying[mario_ram::kPlayerState] = 0x0B;
  const auto result = rules.Step(ReadMarioState(dying));
  EXPECT_FLOAT_EQ(result.reward, -MarioRules::kRewardClip);
  EXPECT_FALSE(result.terminal);
}

TEST(MarioRulesTest, FlagEndsTheEpisodeWithSuccessAndGameOverWithout) {
  MarioRules rules;
  rules.Reset(ReadMarioState(Ram(3150, 250)));
  std::vector<uint8_t> flag = Ram(3152, 250);
  flag[mario_ram::kEnemyTypes] = mario_ram::kFlagpole;
  flag[mario_ram::kFloatState] = 3;
  auto result = rules.Step(ReadMarioState(flag));
  EXPECT_TRUE(result.terminal);
  EXPECT_TRUE(result.success);
  std::vector<uint8_t> over = Ram(3152, 250);
  over[mario_ram::kLives] = 0xFF;
  rules.Reset(ReadMarioState(Ram(3152, 250)));
  result = rules.Step(ReadMarioState(over));
  EXPECT_TRUE(result.terminal);
  EXPECT_FALSE(result.success);
}

TEST(MarioEnvTest, MissingRomSaysWhichFileAndWhatItMustBe) {
  EnvOptions options;
  options.name = "nes_mario";
  options.rom = "/nonexistent/smb.nes";
  auto env = MakeNesMario(options);
  ASSERT_FALSE(env.ok());
  EXPECT_TRUE(absl::IsNotFound(env.status()));
  EXPECT_THAT(std::string(env.status().message()),
              HasSubstr("nes_mario needs your own Super Mario Bros. (World) NES ROM: set env.rom "
                        "(file \"/nonexistent/smb.nes\" not found)"));
  options.rom.clear();
  env = MakeNesMario(options);
  ASSERT_FALSE(env.ok());
  EXPECT_THAT(std::string(env.status().message()), HasSubstr("set env.rom"));
}

TEST(MarioEnvTest, AnotherNesGameFailsCleanlyAtBoot) {
  EnvOptions options;
  options.rom = DefaultHomebrewRomPath();  // a valid NES ROM, but not Super Mario Bros.
  if (!std::ifstream(options.rom)) GTEST_SKIP() << "no homebrew ROM (cc65 missing?)";
  auto env = MakeNesMario(options);
  ASSERT_FALSE(env.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(env.status())) << env.status();
  EXPECT_THAT(std::string(env.status().message()), HasSubstr("did not reach play"));
}

}  // namespace
}  // namespace dreamfleet::envs
