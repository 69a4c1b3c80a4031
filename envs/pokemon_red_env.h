// `gb_pokemon_red`: Pokemon Red from the user's own ROM on Gambatte. Data flow: LibretroEnv runs
// the frames; PokemonRedRules reads WRAM into rewards (new badges, newly set event flags, party
// level gains, newly visited map tiles) and DecodePokemonText turns the on-screen text box and the
// game's text buffers into `text` tokens. No terminal state: episodes end at the time limit.
#pragma once

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <tuple>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "envs/env_options.h"
#include "envs/environment.h"
#include "envs/libretro_env.h"

namespace dreamfleet::envs {

// Game Boy addresses; the span Gambatte exposes as system RAM is WRAM starting at kWramBase.
namespace pokemon_ram {
inline constexpr int kWramBase = 0xC000;
inline constexpr int kTileMap = 0xC3A0;  // 20 x 18 screen tiles
inline constexpr int kTextBuffer1 = 0xCD3D;
inline constexpr int kTextBuffer2 = 0xCE9D;
inline constexpr int kFontLoaded = 0xCFC4;  // bit 0: a text box or menu is open
inline constexpr int kTextBoxId = 0xD125;
inline constexpr int kPartyCount = 0xD163;
inline constexpr int kPartyMon1Level = 0xD18C;
inline constexpr int kPartyMonStride = 0x2C;
inline constexpr int kBadges = 0xD356;
inline constexpr int kCurMap = 0xD35E;
inline constexpr int kPlayerY = 0xD361;
inline constexpr int kPlayerX = 0xD362;
inline constexpr int kEventFlags = 0xD747;
inline constexpr int kEventFlagsEnd = 0xD886;  // inclusive
}  // namespace pokemon_ram

struct PokemonState {
  int badges = 0;       // number of badge bits set
  int event_flags = 0;  // number of event flag bits set
  int party_count = 0;
  int level_sum = 0;  // sum of the party's levels
  int map = 0;
  int x = 0;
  int y = 0;
};

// `wram` is Game Boy WRAM from 0xC000 (at least 8 KB).
PokemonState ReadPokemonState(absl::Span<const uint8_t> wram);

class PokemonRedRules {
 public:
  static constexpr float kBadgeReward = 5.0f;
  static constexpr float kEventReward = 0.1f;
  static constexpr float kLevelReward = 0.25f;
  static constexpr float kExploreReward = 0.01f;
  void Reset(const PokemonState& state);
  EmulatorGame::StepResult Step(const PokemonState& state);

 private:
  PokemonState best_;  // per-quantity maxima this episode: rewards are paid once
  std::set<std::tuple<int, int, int>> visited_;
};

// Text tokens: 0 pad, 1 space, 2..27 'A'..'Z', 28..53 'a'..'z', 54..63 '0'..'9', then
// punctuation, kTokenNewline, kTokenSeparator, kTokenUnknown. Vocabulary size kTextVocab.
namespace pokemon_text {
inline constexpr int kPad = 0;
inline constexpr int kSpace = 1;
inline constexpr int kNewline = 77;
inline constexpr int kSeparator = 78;
inline constexpr int kUnknown = 79;
inline constexpr int kTextVocab = 80;
inline constexpr int kTextLength = 128;
}  // namespace pokemon_text

// The token of one Pokemon Red character code (its own charmap, not ASCII).
int PokemonCharToken(uint8_t code);
// A printable rendering of a token (for logs and tests).
char PokemonTokenChar(int token);

// Writes `length` tokens: nothing (all pad) unless FONT_LOADED bit 0 is set; otherwise the text
// box rows of the screen tile map, then separator + text buffer 1, separator + text buffer 2
// (each up to its 0x50 terminator), padded or cut to `length`.
void DecodePokemonText(absl::Span<const uint8_t> wram, int32_t* tokens, int length);

// The emulator settings and spec (without image sizes) this env runs with.
LibretroEnvConfig GbPokemonRedConfig(const EnvOptions& options);
absl::StatusOr<std::unique_ptr<Environment>> MakeGbPokemonRed(const EnvOptions& options);

}  // namespace dreamfleet::envs
