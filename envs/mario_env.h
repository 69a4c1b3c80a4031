// `nes_mario`: Super Mario Bros. from the user's own ROM on Nestopia. Data flow: LibretroEnv runs
// the frames; MarioRules reads RAM (addresses of the public SMB disassembly, as
// gym-super-mario-bros uses them) into gym-super-mario-bros' reward: x-position delta (clipped to
// [-5, 5]), clock penalty (time ticks down), -25 on death, summed and clipped to [-15, 15].
// Terminal on game over or when the stage is cleared (flag pole or axe: success).
#pragma once

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "envs/env_options.h"
#include "envs/environment.h"
#include "envs/libretro_env.h"

namespace dreamfleet::envs {

namespace mario_ram {
inline constexpr int kPlayerState = 0x000E;  // 0x06 dead, 0x0B dying, 0x08 normal play
inline constexpr int kEnemyTypes = 0x0016;   // five slots 0x16..0x1A
inline constexpr int kFloatState = 0x001D;   // 3 = sliding down the flag pole
inline constexpr int kXPage = 0x006D;        // x = page * 256 + x on page
inline constexpr int kXOnPage = 0x0086;
inline constexpr int kYViewport = 0x00B5;  // > 1: fell below the screen
inline constexpr int kYPixel = 0x03B8;
inline constexpr int kLives = 0x075A;  // 0xFF = game over
inline constexpr int kStage = 0x075C;
inline constexpr int kWorld = 0x075F;
inline constexpr int kGameMode = 0x0770;  // 2 = world over (victory)
inline constexpr int kPrelevelTimer = 0x07A0;
inline constexpr int kScoreDigits = 0x07DD;  // 6 decimal digits, most significant first
inline constexpr int kTimeDigits = 0x07F8;   // 3 decimal digits
inline constexpr int kCoinDigits = 0x07ED;   // 2 decimal digits
inline constexpr uint8_t kBowser = 0x2D;
inline constexpr uint8_t kFlagpole = 0x31;
}  // namespace mario_ram

struct MarioState {
  int x = 0;
  int y = 0;
  int time = 0;
  int lives = 0;
  int score = 0;
  int coins = 0;
  int world = 0;  // 1-based
  int stage = 0;  // 1-based
  int player_state = 0;
  bool dying = false;
  bool dead = false;
  bool game_over = false;
  bool busy = false;  // transitions the env fast-forwards through
  bool world_over = false;
  bool stage_over = false;  // flag pole or Bowser's axe
  bool flag_get() const { return world_over || stage_over; }
};

MarioState ReadMarioState(absl::Span<const uint8_t> ram);

class MarioRules {
 public:
  static constexpr float kDeathPenalty = -25.0f;
  static constexpr float kRewardClip = 15.0f;
  void Reset(const MarioState& state);
  EmulatorGame::StepResult Step(const MarioState& state);

 private:
  MarioState last_;
};

// The emulator settings and spec (without image sizes) this env runs with.
LibretroEnvConfig NesMarioConfig(const EnvOptions& options);
absl::StatusOr<std::unique_ptr<Environment>> MakeNesMario(const EnvOptions& options);

}  // namespace dreamfleet::envs
