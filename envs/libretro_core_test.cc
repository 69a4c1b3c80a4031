// LibretroCore against the real Debian cores: loading, refused ROMs, non-cores, save states.
#include "envs/libretro_core.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "envs/libretro_env.h"
#include "envs/nes_homebrew_env.h"
#include "envs/pokemon_red_env.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dreamfleet::envs {
namespace {

using ::testing::HasSubstr;

// Writes a temp file that is removed again when the test binary exits. The pid keeps concurrent
// runs of this test (several build trees) apart.
std::string WriteFile(const std::string& name, const std::string& bytes) {
  static auto* written = new std::vector<std::string>();
  static const bool cleanup_registered = [] {
    std::atexit([] {
      for (const std::string& path : *written) std::remove(path.c_str());
    });
    return true;
  }();
  (void)cleanup_registered;
  const std::string path = testing::TempDir() + "/" + std::to_string(getpid()) + "_" + name;
  std::ofstream(path, std::ios::binary) << bytes;
  written->push_back(path);
  return path;
}

TEST(LibretroCoreTest, NestopiaRunsTheHomebrewRomInXrgb8888) {
  auto core =
      LibretroCore::Create(DefaultCorePath("nestopia_libretro.so"), DefaultHomebrewRomPath());
  ASSERT_TRUE(core.ok()) << core.status();
  EXPECT_EQ((*core)->system_ram().size(), 2048u);
  for (int i = 0; i < 3; ++i) (*core)->RunFrame(true, i % 2);
  const NativeFrame& frame = (*core)->frame(0);
  EXPECT_EQ(frame.format, PixelFormat::kXRGB8888);
  EXPECT_EQ(frame.width, 256);
  EXPECT_EQ(frame.pixels.size(), static_cast<size_t>(frame.width) * frame.height * 4);
}

TEST(LibretroCoreTest, SaveStateRoundTripsRam) {
  auto core =
      LibretroCore::Create(DefaultCorePath("nestopia_libretro.so"), DefaultHomebrewRomPath());
  ASSERT_TRUE(core.ok()) << core.status();
  for (int i = 0; i < 20; ++i) (*core)->RunFrame(false);
  auto state = (*core)->SaveState();
  ASSERT_TRUE(state.ok()) << state.status();
  const auto ram = (*core)->system_ram();
  const std::vector<uint8_t> saved(ram.begin(), ram.end());
  (*core)->SetButtons(joypad::kStart);
  for (int i = 0; i < 30; ++i) (*core)->RunFrame(false);
  EXPECT_NE(std::vector<uint8_t>(ram.begin(), ram.end()), saved);
  ASSERT_TRUE((*core)->LoadState(*state).ok());
  EXPECT_EQ(std::vector<uint8_t>(ram.begin(), ram.end()), saved);
}

// A minimal valid 32 KB Game Boy cartridge: Nintendo logo, header checksum, and code that writes
// 0x5A to 0xD356 and 0x80 to 0xC3A0, then spins (0x100: nop; jp 0x150).
std::string TinyGameBoyRom() {
  std::string rom(32768, '\0');
  static constexpr uint8_t kLogo[48] = {0xCE, 0xED, 0x66, 0x66, 0xCC, 0x0D, 0x00, 0x0B, 0x03, 0x73,
                                        0x00, 0x83, 0x00, 0x0C, 0x00, 0x0D, 0x00, 0x08, 0x11, 0x1F,
                                        0x88, 0x89, 0x00, 0x0E, 0xDC, 0xCC, 0x6E, 0xE6, 0xDD, 0xDD,
                                        0xD9, 0x99, 0xBB, 0xBB, 0x67, 0x63, 0x6E, 0x0E, 0xEC, 0xCC,
                                        0xDD, 0xDC, 0x99, 0x9F, 0xBB, 0xB9, 0x33, 0x3E};
  const uint8_t entry[4] = {0x00, 0xC3, 0x50, 0x01};
  for (int i = 0; i < 4; ++i) rom[0x100 + i] = static_cast<char>(entry[i]);
  for (int i = 0; i < 48; ++i) rom[0x104 + i] = static_cast<char>(kLogo[i]);
  rom.replace(0x134, 8, "DFTEST  ");
  // At 0x150: ld a,0x5A; ld (0xD356),a; ld a,0x80; ld (0xC3A0),a; jr -2 (spin).
  const uint8_t code[] = {0x3E, 0x5A, 0xEA, 0x56, 0xD3, 0x3E, 0x80, 0xEA, 0xA0, 0xC3, 0x18, 0xFE};
  for (size_t i = 0; i < sizeof(code); ++i) rom[0x150 + i] = static_cast<char>(code[i]);
  uint8_t checksum = 0;
  for (int i = 0x134; i <= 0x14C; ++i) checksum = checksum - static_cast<uint8_t>(rom[i]) - 1;
  rom[0x14D] = static_cast<char>(checksum);
  return rom;
}

TEST(LibretroCoreTest, GambatteRunsAGameBoyRomInRgb565WithStdoutQuiet) {
  const std::string rom = WriteFile("tiny.gb", TinyGameBoyRom());
  ASSERT_TRUE(CheckRomConsole(rom, "GB").ok()) << CheckRomConsole(rom, "GB");
  testing::internal::CaptureStdout();
  auto core = LibretroCore::Create(DefaultCorePath("gambatte_libretro.so"), rom);
  const std::string printed = testing::internal::GetCapturedStdout();
  ASSERT_TRUE(core.ok()) << core.status();
  EXPECT_EQ(printed, "");
  for (int i = 0; i < 3; ++i) (*core)->RunFrame(true, 0);
  const NativeFrame& frame = (*core)->frame(0);
  EXPECT_EQ(frame.format, PixelFormat::kRGB565);
  EXPECT_EQ(frame.width, 160);
  EXPECT_EQ(frame.height, 144);
  // System RAM is WRAM from 0xC000, both banks contiguous: where the Pokemon readers look.
  const auto wram = (*core)->system_ram();
  ASSERT_GE(wram.size(), 0x2000u);
  EXPECT_EQ(wram[0xD356 - 0xC000], 0x5A);
  EXPECT_EQ(wram[0xC3A0 - 0xC000], 0x80);
}

TEST(LibretroCoreTest, PokemonEnvRunsOnGambatteWithTextTokens) {
  // Not Pokemon, but a valid cartridge: the whole Game Boy path (RGB565, 160x144 -> 64x64, text).
  EnvOptions options;
  options.rom = WriteFile("tiny_for_env.gb", TinyGameBoyRom());
  auto env = MakeGbPokemonRed(options);
  ASSERT_TRUE(env.ok()) << env.status();
  const EnvSpec& spec = (*env)->spec();
  EXPECT_EQ(spec.text_length, pokemon_text::kTextLength);
  EXPECT_EQ(spec.num_actions, 8);
  std::vector<uint8_t> image(spec.image_bytes());
  std::vector<int32_t> text(spec.text_length, -1);
  StepBuffer b;
  b.image = image.data();
  b.text = text.data();
  ASSERT_TRUE((*env)->Reset(0, &b).ok());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE((*env)->Step(i % 8, &b).ok());
  for (int32_t t : text) {
    EXPECT_GE(t, 0);
    EXPECT_LT(t, spec.text_vocab);
  }
  // The cartridge wrote 0x5A (four bits set) to the badge byte: the reader sees four badges.
  EXPECT_EQ(ReadPokemonState(static_cast<LibretroEnv*>(env->get())->ram()).badges, 4);
}

TEST(LibretroCoreTest, MissingCoreIsNotFound) {
  auto core = LibretroCore::Create("/nonexistent/core.so", DefaultHomebrewRomPath());
  ASSERT_FALSE(core.ok());
  EXPECT_TRUE(absl::IsNotFound(core.status()));
  EXPECT_THAT(std::string(core.status().message()), HasSubstr("libretro core \"/nonexistent"));
}

TEST(LibretroCoreTest, FileThatIsNotACoreIsRejected) {
  const std::string fake = WriteFile("fake_core.so", "this is not an ELF file");
  auto core = LibretroCore::Create(fake, DefaultHomebrewRomPath());
  ASSERT_FALSE(core.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(core.status())) << core.status();
  EXPECT_THAT(std::string(core.status().message()), HasSubstr("cannot load libretro core"));
}

TEST(LibretroCoreTest, RomTheCoreRefusesIsInvalidArgument) {
  const std::string garbage = WriteFile("garbage.nes", std::string(1000, '\x5A'));
  auto core = LibretroCore::Create(DefaultCorePath("nestopia_libretro.so"), garbage);
  ASSERT_FALSE(core.ok());
  EXPECT_TRUE(absl::IsInvalidArgument(core.status())) << core.status();
  EXPECT_THAT(std::string(core.status().message()), HasSubstr("refused the ROM"));
}

TEST(LibretroCoreTest, ManyInstancesLoadAndRelease) {
  for (int round = 0; round < 3; ++round) {
    std::vector<std::unique_ptr<LibretroCore>> cores;
    for (int i = 0; i < 4; ++i) {
      auto core =
          LibretroCore::Create(DefaultCorePath("nestopia_libretro.so"), DefaultHomebrewRomPath());
      ASSERT_TRUE(core.ok()) << core.status();
      cores.push_back(std::move(*core));
    }
    // Distinct private copies: each instance's RAM is its own.
    EXPECT_NE(cores[0]->system_ram().data(), cores[1]->system_ram().data());
  }
}

TEST(CheckRomConsoleTest, AcceptsInesAndRejectsOthers) {
  const std::string nes = WriteFile("ok.nes", std::string("NES\x1A", 4) + std::string(100, '\0'));
  EXPECT_TRUE(CheckRomConsole(nes, "NES").ok());
  const std::string other = WriteFile("bad.nes", std::string(100, 'x'));
  EXPECT_TRUE(absl::IsInvalidArgument(CheckRomConsole(other, "NES")));
  EXPECT_TRUE(absl::IsInvalidArgument(CheckRomConsole(nes, "GB")));
  EXPECT_THAT(std::string(CheckRomConsole(nes, "GB").message()), HasSubstr("not a Game Boy ROM"));
  EXPECT_TRUE(absl::IsNotFound(CheckRomConsole("/nonexistent.gb", "GB")));
}

}  // namespace
}  // namespace dreamfleet::envs
