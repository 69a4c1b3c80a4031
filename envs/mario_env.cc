// nes_mario: RAM reader, gym-super-mario-bros reward, boot and animation skipping.
#include "envs/mario_env.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "envs/nes_homebrew_env.h"
#include "services/status_macros.h"

namespace dreamfleet::envs {
namespace {

int Digits(absl::Span<const uint8_t> ram, int address, int count) {
  int value = 0;
  for (int i = 0; i < count; ++i) value = value * 10 + (ram[address + i] & 0x0F);
  return value;
}

class MarioGame : public EmulatorGame {
 public:
  absl::Status Boot(LibretroCore* core) override {
    // Title screen: tap START until the game mode turns to play (never during play: START
    // pauses), then wait without input until Mario is under control and the clock ticks.
    auto ram = core->system_ram();
    core->SetButtons(0);
    for (int i = 0; i < 60; ++i) core->RunFrame(false);
    for (int attempt = 0; attempt < 10 && ram[mario_ram::kGameMode] != 1; ++attempt) {
      core->SetButtons(joypad::kStart);
      for (int i = 0; i < 6; ++i) core->RunFrame(false);
      core->SetButtons(0);
      for (int i = 0; i < 30; ++i) core->RunFrame(false);
    }
    int first_time = -1;
    for (int i = 0; i < 1200 && ram[mario_ram::kGameMode] == 1; ++i) {
      core->RunFrame(false);
      const MarioState s = ReadMarioState(ram);
      if (s.time <= 0) continue;
      if (first_time < 0) first_time = s.time;
      if (s.time != first_time && s.player_state == 0x08) return absl::OkStatus();
    }
    return absl::FailedPreconditionError(
        "nes_mario: the ROM did not reach play in level 1-1 after pressing START (is it Super "
        "Mario Bros. (World)?)");
  }
  void Reset(absl::Span<const uint8_t> ram) override { rules_.Reset(ReadMarioState(ram)); }
  StepResult Step(LibretroCore* core) override {
    MarioState s = ReadMarioState(core->system_ram());
    StepResult result = rules_.Step(s);
    if (result.terminal) return result;
    // Like gym-super-mario-bros: end a death at once, then run out transitions without input.
    auto ram = core->system_ram();
    if (s.dying || s.dead) {
      ram[mario_ram::kPlayerState] = 0x06;
      core->SetButtons(0);
      core->RunFrame(false);
    }
    for (int i = 0; i < 1200; ++i) {
      s = ReadMarioState(ram);
      if (!s.busy && !s.world_over) break;
      ram[mario_ram::kPrelevelTimer] = 0;
      core->SetButtons(0);
      core->RunFrame(false);
    }
    rules_.Reset(ReadMarioState(ram));  // a respawn must not count as x progress
    return result;
  }

 private:
  MarioRules rules_;
};

}  // namespace

MarioState ReadMarioState(absl::Span<const uint8_t> ram) {
  using namespace mario_ram;  // NOLINT
  MarioState s;
  if (ram.size() < 0x800) return s;
  s.x = ram[kXPage] * 256 + ram[kXOnPage];
  s.y = ram[kYPixel];
  s.time = Digits(ram, kTimeDigits, 3);
  s.score = Digits(ram, kScoreDigits, 6) * 10;
  s.coins = Digits(ram, kCoinDigits, 2);
  s.lives = ram[kLives];
  s.world = ram[kWorld] + 1;
  s.stage = ram[kStage] + 1;
  s.player_state = ram[kPlayerState];
  s.dying = s.player_state == 0x0B || ram[kYViewport] > 1;
  s.dead = s.player_state == 0x06;
  s.game_over = s.lives == 0xFF;
  static constexpr uint8_t kBusy[] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x07};
  s.busy = std::find(std::begin(kBusy), std::end(kBusy), s.player_state) != std::end(kBusy);
  s.world_over = ram[kGameMode] == 2;
  bool boss_or_pole = false;
  for (int i = 0; i < 5; ++i) {
    const uint8_t type = ram[kEnemyTypes + i];
    boss_or_pole |= type == kBowser || type == kFlagpole;
  }
  s.stage_over = boss_or_pole && ram[kFloatState] == 3;
  return s;
}

void MarioRules::Reset(const MarioState& state) { last_ = state; }

EmulatorGame::StepResult MarioRules::Step(const MarioState& state) {
  EmulatorGame::StepResult result;
  int dx = state.x - last_.x;
  if (dx < -5 || dx > 5) dx = 0;  // a teleport (pipe, respawn), not motion
  int dt = state.time - last_.time;
  if (dt > 0) dt = 0;  // the clock only counts down within a life
  float reward = static_cast<float>(dx + dt);
  if (state.dying || state.dead) reward += kDeathPenalty;
  result.reward = std::clamp(reward, -kRewardClip, kRewardClip);
  result.success = state.flag_get();
  result.terminal = state.game_over || state.flag_get();
  last_ = state;
  return result;
}

LibretroEnvConfig NesMarioConfig(const EnvOptions& options) {
  LibretroEnvConfig config;
  config.spec.name = "nes_mario";
  config.spec.num_actions = 7;
  config.spec.action_names = NesSimpleMovementNames();
  config.spec.reward_min = -MarioRules::kRewardClip;
  config.spec.reward_max = MarioRules::kRewardClip;
  config.action_buttons = NesSimpleMovementButtons();
  ApplyEnvOptions(options, {"nestopia_libretro.so", "", 0.25f, 10000}, &config);
  return config;
}

absl::StatusOr<std::unique_ptr<Environment>> MakeNesMario(const EnvOptions& options) {
  if (options.rom.empty()) {
    return absl::InvalidArgumentError(
        "nes_mario needs your own Super Mario Bros. (World) NES ROM: set env.rom (no file given)");
  }
  ASSIGN_OR_RETURN(
      std::unique_ptr<LibretroEnv> env,
      StartEmulator(NesMarioConfig(options), std::make_unique<MarioGame>(), "NES",
                    "nes_mario needs your own Super Mario Bros. (World) NES ROM: set env.rom "
                    "(file \"",
                    "\" not found)"));
  return std::unique_ptr<Environment>(std::move(env));
}

}  // namespace dreamfleet::envs
