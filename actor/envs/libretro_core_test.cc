// LibretroCore against the real Debian cores: loading, refused ROMs, non-cores, save states.
#include "actor/envs/libretro_core.h"

#include <cstdio>
#include <fstream>
#include <string>

#include "actor/envs/libretro_env.h"
#include "actor/envs/nes_homebrew_env.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dreamfleet::actor {
namespace {

using ::testing::HasSubstr;

std::string WriteFile(const std::string& name, const std::string& bytes) {
  const std::string path = testing::TempDir() + "/" + name;
  std::ofstream(path, std::ios::binary) << bytes;
  return path;
}

TEST(LibretroCoreTest, NestopiaRunsTheHomebrewRomInXrgb8888) {
  auto core = LibretroCore::Create(DefaultCorePath("nestopia_libretro.so"),
                                   DefaultHomebrewRomPath());
  ASSERT_TRUE(core.ok()) << core.status();
  EXPECT_EQ((*core)->system_ram().size(), 2048u);
  for (int i = 0; i < 3; ++i) (*core)->RunFrame(true, i % 2);
  const NativeFrame& frame = (*core)->frame(0);
  EXPECT_EQ(frame.format, PixelFormat::kXRGB8888);
  EXPECT_EQ(frame.width, 256);
  EXPECT_EQ(frame.pixels.size(), static_cast<size_t>(frame.width) * frame.height * 4);
}

TEST(LibretroCoreTest, SaveStateRoundTripsRam) {
  auto core = LibretroCore::Create(DefaultCorePath("nestopia_libretro.so"),
                                   DefaultHomebrewRomPath());
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

TEST(LibretroCoreTest, GambatteLoadsWithRgb565AndKeepsStdoutQuiet) {
  // Gambatte accepts any file; a blank 32 KB cartridge image runs (the CPU spins on 0x00 NOPs).
  const std::string rom = WriteFile("blank.gb", std::string(32768, '\0'));
  auto core = LibretroCore::Create(DefaultCorePath("gambatte_libretro.so"), rom);
  if (!core.ok()) {
    // Some Gambatte builds refuse an image without a header: that must be a clean error too.
    EXPECT_TRUE(absl::IsInvalidArgument(core.status())) << core.status();
    return;
  }
  (*core)->RunFrame(true, 0);
  const NativeFrame& frame = (*core)->frame(0);
  EXPECT_EQ(frame.format, PixelFormat::kRGB565);
  EXPECT_EQ(frame.width, 160);
  EXPECT_EQ(frame.height, 144);
  EXPECT_GE((*core)->system_ram().size(), 0x2000u);
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
      auto core = LibretroCore::Create(DefaultCorePath("nestopia_libretro.so"),
                                       DefaultHomebrewRomPath());
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
}  // namespace dreamfleet::actor
