// nes_homebrew: RAM rules, boot sequence and factory of dreamfleet's own NES game.
#include "envs/nes_homebrew_env.h"

#include <cstdlib>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "services/status_macros.h"

#ifndef DREAMFLEET_DEFAULT_ROM_DIR
#define DREAMFLEET_DEFAULT_ROM_DIR "roms"
#endif

namespace dreamfleet::envs {
namespace {

int Word(absl::Span<const uint8_t> ram, int address) {
  return ram[address] | (ram[address + 1] << 8);
}

class HomebrewGame : public EmulatorGame {
 public:
  absl::Status Boot(LibretroCore* core) override {
    // Wait until main() has drawn the level and runs its frame loop (the NMI counter at $0313
    // ticks), then hold START until the title state turns into play.
    core->SetButtons(0);
    for (int i = 0; i < 120 && core->system_ram()[0x0313] == 0; ++i) core->RunFrame(false);
    core->SetButtons(joypad::kStart);
    for (int i = 0; i < 60 && ReadHomebrewState(core->system_ram()).game_mode == 0; ++i) {
      core->RunFrame(false);
    }
    core->SetButtons(0);
    for (int i = 0; i < 2; ++i) core->RunFrame(false);
    const HomebrewState state = ReadHomebrewState(core->system_ram());
    if (state.game_mode != 1 || state.x != 16) {
      return absl::FailedPreconditionError(
          absl::StrCat("the homebrew ROM did not start (game mode ", state.game_mode, ", x ",
                       state.x, "): is it dreamfleet's homebrew.nes?"));
    }
    return absl::OkStatus();
  }
  void Reset(absl::Span<const uint8_t> ram) override { rules_.Reset(ReadHomebrewState(ram)); }
  StepResult Step(LibretroCore* core) override {
    return rules_.Step(ReadHomebrewState(core->system_ram()));
  }

 private:
  HomebrewRules rules_;
};

}  // namespace

HomebrewState ReadHomebrewState(absl::Span<const uint8_t> ram) {
  HomebrewState s;
  if (ram.size() < 0x800) return s;
  s.x = Word(ram, homebrew_ram::kPlayerX);
  s.y = ram[homebrew_ram::kPlayerY];
  s.lives = ram[homebrew_ram::kLives];
  s.score = Word(ram, homebrew_ram::kScore);
  s.level_done = ram[homebrew_ram::kLevelDone] != 0;
  s.game_over = ram[homebrew_ram::kGameOver] != 0;
  s.deaths = ram[homebrew_ram::kDeaths];
  s.enemy_x = Word(ram, homebrew_ram::kEnemyX);
  s.player_state = ram[homebrew_ram::kPlayerState];
  s.game_mode = ram[homebrew_ram::kGameMode];
  return s;
}

void HomebrewRules::Reset(const HomebrewState& state) { last_ = state; }

EmulatorGame::StepResult HomebrewRules::Step(const HomebrewState& state) {
  EmulatorGame::StepResult result;
  if (state.deaths != last_.deaths) {
    result.reward += kDeathPenalty * static_cast<float>(state.deaths - last_.deaths);
  } else {
    result.reward += kProgressScale * static_cast<float>(state.x - last_.x);
  }
  if (state.level_done && !last_.level_done) {
    result.reward += kFlagBonus;
    result.success = true;
  }
  result.terminal = state.level_done || state.game_over;
  last_ = state;
  return result;
}

std::string DefaultHomebrewRomPath() {
  const char* dir = std::getenv("DREAMFLEET_ROM_DIR");
  return absl::StrCat(dir && *dir ? dir : DREAMFLEET_DEFAULT_ROM_DIR, "/homebrew.nes");
}

const std::vector<std::string>& NesSimpleMovementNames() {
  static const auto* names =
      new std::vector<std::string>{"NOOP", "RIGHT", "RIGHT+A", "RIGHT+B", "RIGHT+A+B", "A", "LEFT"};
  return *names;
}

const std::vector<uint16_t>& NesSimpleMovementButtons() {
  using namespace joypad;  // NOLINT
  static const auto* buttons = new std::vector<uint16_t>{0,
                                                         kRight,
                                                         static_cast<uint16_t>(kRight | kA),
                                                         static_cast<uint16_t>(kRight | kB),
                                                         static_cast<uint16_t>(kRight | kA | kB),
                                                         kA,
                                                         kLeft};
  return *buttons;
}

LibretroEnvConfig NesHomebrewConfig(const EnvOptions& options) {
  LibretroEnvConfig config;
  config.spec.name = "nes_homebrew";
  config.spec.num_actions = 7;
  config.spec.action_names = NesSimpleMovementNames();
  config.spec.reward_min = HomebrewRules::kDeathPenalty;
  config.spec.reward_max = HomebrewRules::kFlagBonus + 1.0f;
  config.action_buttons = NesSimpleMovementButtons();
  ApplyEnvOptions(options, {"nestopia_libretro.so", DefaultHomebrewRomPath(), 0.25f, 1000},
                  &config);
  return config;
}

absl::StatusOr<std::unique_ptr<Environment>> MakeNesHomebrew(const EnvOptions& options) {
  ASSIGN_OR_RETURN(
      std::unique_ptr<LibretroEnv> env,
      StartEmulator(
          NesHomebrewConfig(options), std::make_unique<HomebrewGame>(), "NES",
          "nes_homebrew needs dreamfleet's homebrew NES ROM, built by CMake when cc65 is installed "
          "(target dreamfleet_homebrew_rom): file \"",
          "\" not found (set env.rom or DREAMFLEET_ROM_DIR)"));
  return std::unique_ptr<Environment>(std::move(env));
}

}  // namespace dreamfleet::envs
