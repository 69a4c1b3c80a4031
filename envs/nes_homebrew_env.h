// `nes_homebrew`: dreamfleet's own NES game (envs/roms/homebrew, built with cc65) on Nestopia.
// Data flow: LibretroEnv runs the frames; HomebrewRules turns the game's fixed RAM addresses
// (envs/roms/homebrew/README.md) into reward = 1/32 per pixel of progress right, -5 per life
// lost, +10 at the flag; terminal at the flag (success) or game over.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "envs/env_options.h"
#include "envs/environment.h"
#include "envs/libretro_env.h"

namespace dreamfleet::envs {

// RAM addresses of the homebrew game (NES internal RAM offsets).
namespace homebrew_ram {
inline constexpr int kPlayerX = 0x0300;  // 16-bit little endian, level pixel
inline constexpr int kPlayerY = 0x0302;
inline constexpr int kLives = 0x0303;
inline constexpr int kScore = 0x0304;  // 16-bit little endian
inline constexpr int kLevelDone = 0x0306;
inline constexpr int kGameOver = 0x0307;
inline constexpr int kDeaths = 0x0308;
inline constexpr int kEnemyX = 0x0309;  // 16-bit little endian
inline constexpr int kPlayerState = 0x030B;
inline constexpr int kGameMode = 0x030C;  // 0 title, 1 playing, 2 level done, 3 game over
inline constexpr int kFrames = 0x0314;    // 16-bit little endian
inline constexpr int kFlagX = 464;
}  // namespace homebrew_ram

struct HomebrewState {
  int x = 0;
  int y = 0;
  int lives = 0;
  int score = 0;
  bool level_done = false;
  bool game_over = false;
  int deaths = 0;
  int enemy_x = 0;
  int player_state = 0;
  int game_mode = 0;
};

// Decodes the game state from NES RAM (at least 2 KB).
HomebrewState ReadHomebrewState(absl::Span<const uint8_t> ram);

// Reward and termination of the homebrew game, over successive RAM states.
class HomebrewRules {
 public:
  static constexpr float kProgressScale = 1.0f / 32.0f;
  static constexpr float kDeathPenalty = -5.0f;
  static constexpr float kFlagBonus = 10.0f;

  void Reset(const HomebrewState& state);
  EmulatorGame::StepResult Step(const HomebrewState& state);

 private:
  HomebrewState last_;
};

// The default ROM: $DREAMFLEET_ROM_DIR/homebrew.nes, else <build dir>/roms/homebrew.nes.
std::string DefaultHomebrewRomPath();

// The action set of the NES envs (gym-super-mario-bros' SIMPLE_MOVEMENT).
const std::vector<std::string>& NesSimpleMovementNames();
const std::vector<uint16_t>& NesSimpleMovementButtons();

// The emulator settings and spec (without image sizes) this env runs with.
LibretroEnvConfig NesHomebrewConfig(const EnvOptions& options);
absl::StatusOr<std::unique_ptr<Environment>> MakeNesHomebrew(const EnvOptions& options);

}  // namespace dreamfleet::envs
