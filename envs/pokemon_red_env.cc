// gb_pokemon_red: WRAM reader, exploration/progress rewards, text decoding, factory.
#include "envs/pokemon_red_env.h"

#include <algorithm>
#include <bitset>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "services/status_macros.h"

namespace dreamfleet::envs {
namespace {

using namespace pokemon_ram;  // NOLINT

uint8_t At(absl::Span<const uint8_t> wram, int address) { return wram[address - kWramBase]; }

constexpr char kPunctuation[] = "().,!?-':;/[]";  // tokens 64..76 in this order

class PokemonRedGame : public EmulatorGame {
 public:
  absl::Status Boot(LibretroCore* core) override {
    // Episodes start at the title sequence; the agent plays from there.
    core->SetButtons(0);
    for (int i = 0; i < 300; ++i) core->RunFrame(false);
    return absl::OkStatus();
  }
  void Reset(absl::Span<const uint8_t> ram) override { rules_.Reset(ReadPokemonState(ram)); }
  StepResult Step(LibretroCore* core) override {
    return rules_.Step(ReadPokemonState(core->system_ram()));
  }
  void WriteText(absl::Span<const uint8_t> ram, int32_t* text) override {
    DecodePokemonText(ram, text, pokemon_text::kTextLength);
  }

 private:
  PokemonRedRules rules_;
};

// Appends tokens of `count` character codes from `address`, stopping at the 0x50 terminator.
void AppendString(absl::Span<const uint8_t> wram, int address, int count,
                  std::vector<int32_t>* out) {
  for (int i = 0; i < count; ++i) {
    const uint8_t code = At(wram, address + i);
    if (code == 0x50) break;
    out->push_back(PokemonCharToken(code));
  }
}

}  // namespace

PokemonState ReadPokemonState(absl::Span<const uint8_t> wram) {
  PokemonState s;
  if (wram.size() < 0x2000) return s;
  s.badges = static_cast<int>(std::bitset<8>(At(wram, kBadges)).count());
  for (int a = kEventFlags; a <= kEventFlagsEnd; ++a) {
    s.event_flags += static_cast<int>(std::bitset<8>(At(wram, a)).count());
  }
  s.party_count = std::min<int>(At(wram, kPartyCount), 6);
  for (int i = 0; i < s.party_count; ++i) {
    s.level_sum += At(wram, kPartyMon1Level + i * kPartyMonStride);
  }
  s.map = At(wram, kCurMap);
  s.x = At(wram, kPlayerX);
  s.y = At(wram, kPlayerY);
  return s;
}

void PokemonRedRules::Reset(const PokemonState& state) {
  best_ = state;
  visited_.clear();
  visited_.insert({state.map, state.x, state.y});
}

EmulatorGame::StepResult PokemonRedRules::Step(const PokemonState& state) {
  EmulatorGame::StepResult result;
  float reward = 0.0f;
  if (state.badges > best_.badges) {
    reward += kBadgeReward * static_cast<float>(state.badges - best_.badges);
    best_.badges = state.badges;
  }
  if (state.event_flags > best_.event_flags) {
    reward += kEventReward * static_cast<float>(state.event_flags - best_.event_flags);
    best_.event_flags = state.event_flags;
  }
  // Levels: only gains of the party already owned count (catching a mon is not a level gain).
  if (state.party_count >= best_.party_count && state.level_sum > best_.level_sum) {
    if (state.party_count == best_.party_count) {
      reward += kLevelReward * static_cast<float>(state.level_sum - best_.level_sum);
    }
    best_.level_sum = state.level_sum;
  }
  best_.party_count = std::max(best_.party_count, state.party_count);
  if (visited_.insert({state.map, state.x, state.y}).second) reward += kExploreReward;
  result.reward = reward;
  return result;
}

int PokemonCharToken(uint8_t code) {
  if (code == 0x7F) return pokemon_text::kSpace;
  if (code >= 0x80 && code <= 0x99) return 2 + (code - 0x80);
  if (code >= 0xA0 && code <= 0xB9) return 28 + (code - 0xA0);
  if (code >= 0xF6) return 54 + (code - 0xF6);
  // Pokemon's codes of the characters in kPunctuation.
  static constexpr std::pair<uint8_t, char> kPunctuationCodes[] = {
      {0x9A, '('}, {0x9B, ')'}, {0x9C, ':'}, {0x9D, ';'}, {0x9E, '['}, {0x9F, ']'}, {0xE0, '\''},
      {0xE3, '-'}, {0xE6, '?'}, {0xE7, '!'}, {0xE8, '.'}, {0xF3, '/'}, {0xF4, ','}};
  for (const auto& [punct_code, c] : kPunctuationCodes) {
    if (punct_code == code) return 64 + static_cast<int>(std::string(kPunctuation).find(c));
  }
  switch (code) {
    case 0x4E:  // next line
    case 0x4F:  // line
    case 0x51:  // paragraph
    case 0x55:  // continue
      return pokemon_text::kNewline;
    default:
      return pokemon_text::kUnknown;
  }
}

char PokemonTokenChar(int token) {
  if (token == pokemon_text::kPad) return '_';
  if (token == pokemon_text::kSpace) return ' ';
  if (token >= 2 && token < 28) return static_cast<char>('A' + token - 2);
  if (token >= 28 && token < 54) return static_cast<char>('a' + token - 28);
  if (token >= 54 && token < 64) return static_cast<char>('0' + token - 54);
  if (token >= 64 && token < 64 + static_cast<int>(sizeof(kPunctuation)) - 1) {
    return kPunctuation[token - 64];
  }
  if (token == pokemon_text::kNewline) return '\n';
  if (token == pokemon_text::kSeparator) return '|';
  return '#';
}

void DecodePokemonText(absl::Span<const uint8_t> wram, int32_t* tokens, int length) {
  std::fill(tokens, tokens + length, pokemon_text::kPad);
  if (wram.size() < 0x2000 || (At(wram, kFontLoaded) & 1) == 0) return;
  std::vector<int32_t> out;
  // The standard text box: rows 12..17; its two text lines are rows 14 and 16, columns 1..18.
  for (int row : {14, 16}) {
    if (row == 16) out.push_back(pokemon_text::kNewline);
    const int start = kTileMap + row * 20 + 1;
    std::vector<int32_t> line;
    for (int col = 0; col < 18; ++col) line.push_back(PokemonCharToken(At(wram, start + col)));
    while (!line.empty() && line.back() == pokemon_text::kSpace) line.pop_back();
    out.insert(out.end(), line.begin(), line.end());
  }
  out.push_back(pokemon_text::kSeparator);
  AppendString(wram, kTextBuffer1, 32, &out);
  out.push_back(pokemon_text::kSeparator);
  AppendString(wram, kTextBuffer2, 32, &out);
  std::copy_n(out.begin(), std::min<size_t>(out.size(), length), tokens);
}

LibretroEnvConfig GbPokemonRedConfig(const EnvOptions& options) {
  LibretroEnvConfig config;
  config.spec.name = "gb_pokemon_red";
  config.spec.action_names = {"NOOP", "A", "B", "UP", "DOWN", "LEFT", "RIGHT", "START"};
  config.spec.num_actions = static_cast<int>(config.spec.action_names.size());
  config.spec.text_length = pokemon_text::kTextLength;
  config.spec.text_vocab = pokemon_text::kTextVocab;
  config.spec.reward_min = 0.0f;
  config.spec.reward_max = PokemonRedRules::kBadgeReward + 10.0f;
  config.action_buttons = {0,
                           joypad::kA,
                           joypad::kB,
                           joypad::kUp,
                           joypad::kDown,
                           joypad::kLeft,
                           joypad::kRight,
                           joypad::kStart};
  ApplyEnvOptions(options, {"gambatte_libretro.so", "", 0.0f, 20480}, &config);
  return config;
}

absl::StatusOr<std::unique_ptr<Environment>> MakeGbPokemonRed(const EnvOptions& options) {
  if (options.rom.empty()) {
    return absl::InvalidArgumentError(
        "gb_pokemon_red needs your own Pokemon Red (UE) Game Boy ROM: set env.rom (no file "
        "given)");
  }
  ASSIGN_OR_RETURN(
      std::unique_ptr<LibretroEnv> env,
      StartEmulator(GbPokemonRedConfig(options), std::make_unique<PokemonRedGame>(), "GB",
                    "gb_pokemon_red needs your own Pokemon Red (UE) Game Boy ROM: set env.rom "
                    "(file \"",
                    "\" not found)"));
  if (env->ram().size() < 0x2000) {
    return absl::FailedPreconditionError("gb_pokemon_red: the core exposes less than 8 KB of WRAM");
  }
  return std::unique_ptr<Environment>(std::move(env));
}

}  // namespace dreamfleet::envs
