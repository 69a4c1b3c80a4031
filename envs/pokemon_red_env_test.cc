// Pokemon Red WRAM reader, rewards and text decoding on synthetic WRAM; the missing/wrong ROM
// errors.
#include "envs/pokemon_red_env.h"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dreamfleet::envs {
namespace {

using ::testing::HasSubstr;
using namespace pokemon_ram;  // NOLINT

std::vector<uint8_t> Wram() { return std::vector<uint8_t>(0x2000, 0); }
void Set(std::vector<uint8_t>& wram, int address, uint8_t value) {
  wram[address - kWramBase] = value;
}

std::string Render(const std::vector<int32_t>& tokens) {
  std::string s;
  for (int32_t t : tokens) {
    if (t != pokemon_text::kPad) s += PokemonTokenChar(t);
  }
  return s;
}

// Writes ASCII text in Pokemon's charmap at `address`.
void WriteText(std::vector<uint8_t>& wram, int address, const std::string& text) {
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    uint8_t code = 0x7F;
    if (c >= 'A' && c <= 'Z') code = static_cast<uint8_t>(0x80 + c - 'A');
    if (c >= 'a' && c <= 'z') code = static_cast<uint8_t>(0xA0 + c - 'a');
    if (c >= '0' && c <= '9') code = static_cast<uint8_t>(0xF6 + c - '0');
    if (c == '!') code = 0xE7;
    if (c == '@') code = 0x50;
    Set(wram, address + static_cast<int>(i), code);
  }
}

TEST(PokemonRamTest, CountsBadgesEventsLevelsAndPosition) {
  auto wram = Wram();
  Set(wram, kBadges, 0b00000101);
  Set(wram, kEventFlags, 0xFF);
  Set(wram, kEventFlagsEnd, 0x01);
  Set(wram, kPartyCount, 2);
  Set(wram, kPartyMon1Level, 12);
  Set(wram, kPartyMon1Level + kPartyMonStride, 7);
  Set(wram, kPartyMon1Level + 2 * kPartyMonStride, 99);  // beyond the party: ignored
  Set(wram, kCurMap, 0x25);
  Set(wram, kPlayerX, 4);
  Set(wram, kPlayerY, 6);
  const PokemonState s = ReadPokemonState(wram);
  EXPECT_EQ(s.badges, 2);
  EXPECT_EQ(s.event_flags, 9);
  EXPECT_EQ(s.party_count, 2);
  EXPECT_EQ(s.level_sum, 19);
  EXPECT_EQ(s.map, 0x25);
  EXPECT_EQ(s.x, 4);
  EXPECT_EQ(s.y, 6);
}

TEST(PokemonRulesTest, PaysForNewTilesBadgesEventsAndLevelsOnce) {
  auto wram = Wram();
  Set(wram, kPartyCount, 1);
  Set(wram, kPartyMon1Level, 5);
  PokemonRedRules rules;
  rules.Reset(ReadPokemonState(wram));
  EXPECT_FLOAT_EQ(rules.Step(ReadPokemonState(wram)).reward, 0.0f);  // nothing new
  Set(wram, kPlayerX, 1);
  EXPECT_FLOAT_EQ(rules.Step(ReadPokemonState(wram)).reward, PokemonRedRules::kExploreReward);
  Set(wram, kPlayerX, 0);
  EXPECT_FLOAT_EQ(rules.Step(ReadPokemonState(wram)).reward, 0.0f);  // visited already
  Set(wram, kBadges, 1);
  Set(wram, kEventFlags + 3, 0x03);
  Set(wram, kPartyMon1Level, 7);
  EXPECT_FLOAT_EQ(rules.Step(ReadPokemonState(wram)).reward, PokemonRedRules::kBadgeReward +
                                                                 2 * PokemonRedRules::kEventReward +
                                                                 2 * PokemonRedRules::kLevelReward);
  EXPECT_FLOAT_EQ(rules.Step(ReadPokemonState(wram)).reward, 0.0f);
  // Catching a level-30 mon raises the level sum but is not a level gain.
  Set(wram, kPartyCount, 2);
  Set(wram, kPartyMon1Level + kPartyMonStride, 30);
  EXPECT_FLOAT_EQ(rules.Step(ReadPokemonState(wram)).reward, 0.0f);
  EXPECT_FALSE(rules.Step(ReadPokemonState(wram)).terminal);
}

TEST(PokemonTextTest, CharmapCoversLettersDigitsAndPunctuation) {
  EXPECT_EQ(PokemonTokenChar(PokemonCharToken(0x80)), 'A');
  EXPECT_EQ(PokemonTokenChar(PokemonCharToken(0x99)), 'Z');
  EXPECT_EQ(PokemonTokenChar(PokemonCharToken(0xA0)), 'a');
  EXPECT_EQ(PokemonTokenChar(PokemonCharToken(0xF6)), '0');
  EXPECT_EQ(PokemonTokenChar(PokemonCharToken(0xFF)), '9');
  EXPECT_EQ(PokemonTokenChar(PokemonCharToken(0xE8)), '.');
  EXPECT_EQ(PokemonTokenChar(PokemonCharToken(0xE7)), '!');
  EXPECT_EQ(PokemonTokenChar(PokemonCharToken(0x7F)), ' ');
  EXPECT_EQ(PokemonCharToken(0x01), pokemon_text::kUnknown);
  for (int code = 0; code < 256; ++code) {
    const int token = PokemonCharToken(static_cast<uint8_t>(code));
    EXPECT_GE(token, 1);
    EXPECT_LT(token, pokemon_text::kTextVocab);
  }
}

TEST(PokemonTextTest, NoTextUnlessTheFontIsLoaded) {
  auto wram = Wram();
  WriteText(wram, kTileMap + 14 * 20 + 1, "OAK Hello");
  std::vector<int32_t> tokens(pokemon_text::kTextLength, 42);
  DecodePokemonText(wram, tokens.data(), static_cast<int>(tokens.size()));
  EXPECT_EQ(Render(tokens), "");
}

TEST(PokemonTextTest, DecodesTheTextBoxAndBuffers) {
  auto wram = Wram();
  // Fill the box rows with spaces, as the game does, then write two lines.
  for (int row : {14, 16}) WriteText(wram, kTileMap + row * 20 + 1, std::string(18, ' '));
  WriteText(wram, kTileMap + 14 * 20 + 1, "OAK Hello there");
  WriteText(wram, kTileMap + 16 * 20 + 1, "Welcome 2 POKEMON!");
  WriteText(wram, kTextBuffer1, "RED@junk");
  WriteText(wram, kTextBuffer2, "BLUE@");
  Set(wram, kFontLoaded, 1);
  Set(wram, kTextBoxId, 1);
  std::vector<int32_t> tokens(pokemon_text::kTextLength);
  DecodePokemonText(wram, tokens.data(), static_cast<int>(tokens.size()));
  EXPECT_EQ(Render(tokens), "OAK Hello there\nWelcome 2 POKEMON!|RED|BLUE");
  // A short output is cut, never overrun.
  std::vector<int32_t> short_tokens(5, -1);
  DecodePokemonText(wram, short_tokens.data(), 5);
  EXPECT_EQ(Render(short_tokens), "OAK H");
}

TEST(PokemonEnvTest, MissingRomSaysWhichFileAndWhatItMustBe) {
  EnvOptions options;
  options.name = "gb_pokemon_red";
  options.rom = "/nonexistent/pokered.gb";
  auto env = MakeGbPokemonRed(options);
  ASSERT_FALSE(env.ok());
  EXPECT_TRUE(absl::IsNotFound(env.status()));
  EXPECT_THAT(std::string(env.status().message()),
              HasSubstr("needs your own Pokemon Red (UE) Game Boy ROM: set env.rom (file "
                        "\"/nonexistent/pokered.gb\" not found)"));
}

TEST(PokemonEnvTest, NesRomIsTheWrongConsole) {
  EnvOptions options;
  const std::string path = testing::TempDir() + "/" + std::to_string(getpid()) + "_looks_like.nes";
  std::ofstream(path, std::ios::binary) << std::string("NES\x1A", 4) << std::string(40000, '\0');
  options.rom = path;
  auto env = MakeGbPokemonRed(options);
  ASSERT_FALSE(env.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(env.status())) << env.status();
  EXPECT_THAT(std::string(env.status().message()), HasSubstr("is not a Game Boy ROM"));
  std::remove(path.c_str());
}

}  // namespace
}  // namespace dreamfleet::envs
