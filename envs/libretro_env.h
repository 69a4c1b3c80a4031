// A dreamfleet Environment over a libretro core. Data flow of Step(action): action -> joypad
// button mask (sticky with probability p per frame) -> action_repeat x retro_run, capturing the
// last two frames -> max-pool -> RGB -> area resize (-> gray) into StepBuffer.image; then the
// game's RAM rules (EmulatorGame) give reward, termination and text. Reset(seed) restores the
// save state taken once after boot (fast reset) and reseeds the sticky-action RNG.
#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "envs/env_options.h"
#include "envs/environment.h"
#include "envs/libretro_core.h"
#include "envs/libretro_frame.h"

namespace dreamfleet::envs {

// RETRO_DEVICE_ID_JOYPAD_* bits, for action sets.
namespace joypad {
inline constexpr uint16_t kB = 1 << 0;
inline constexpr uint16_t kY = 1 << 1;
inline constexpr uint16_t kSelect = 1 << 2;
inline constexpr uint16_t kStart = 1 << 3;
inline constexpr uint16_t kUp = 1 << 4;
inline constexpr uint16_t kDown = 1 << 5;
inline constexpr uint16_t kLeft = 1 << 6;
inline constexpr uint16_t kRight = 1 << 7;
inline constexpr uint16_t kA = 1 << 8;
}  // namespace joypad

// The rules of one emulated game, read from console RAM. Implementations keep their RAM logic in
// pure classes over a byte span (unit-tested on synthetic RAM) and are thin here.
class EmulatorGame {
 public:
  struct StepResult {
    float reward = 0.0f;
    bool terminal = false;
    bool success = false;
  };
  virtual ~EmulatorGame() = default;
  // Drives a freshly loaded core to where every episode starts (title screens, start button).
  virtual absl::Status Boot(LibretroCore* core) = 0;
  // The reset state was just loaded.
  virtual void Reset(absl::Span<const uint8_t> ram) = 0;
  // After the agent step's frames. May run extra frames without input (skipping animations).
  virtual StepResult Step(LibretroCore* core) = 0;
  // Writes EnvSpec.text_length tokens (only called when the spec has text).
  virtual void WriteText(absl::Span<const uint8_t> /*ram*/, int32_t* /*text*/) {}
};

struct LibretroEnvConfig {
  EnvSpec spec;  // name, actions, reward range, text sizes; image fields are filled in by Create
  std::vector<uint16_t> action_buttons;  // joypad mask per action
  std::string core_path;
  std::string rom_path;
  int action_repeat = 4;
  float sticky_actions = 0.0f;
  int image_size = 64;  // <= 0: the core's native resolution, no resize
  bool grayscale = false;
  int max_episode_steps = 0;
};

// The spec an env built from `config` will have, without starting the emulator; the checks of
// Create that need no emulator (buttons, action repeat, sticky actions, image_size > 0, a ROM
// named; whether the ROM file exists is for the machines that run the emulator to say).
absl::StatusOr<EnvSpec> LibretroSpec(const LibretroEnvConfig& config);

class LibretroEnv : public Environment {
 public:
  static absl::StatusOr<std::unique_ptr<LibretroEnv>> Create(LibretroEnvConfig config,
                                                             std::unique_ptr<EmulatorGame> game);

  const EnvSpec& spec() const override { return config_.spec; }
  absl::Status Reset(uint64_t seed, StepBuffer* out) override;
  absl::Status Step(int action, StepBuffer* out) override;

  // For tests and benches.
  LibretroCore* core() { return core_.get(); }
  absl::Span<const uint8_t> ram() { return core_->system_ram(); }

 private:
  LibretroEnv(LibretroEnvConfig config, std::unique_ptr<EmulatorGame> game,
              std::unique_ptr<LibretroCore> core);
  // Runs `action_repeat` frames holding `buttons` (sticky per frame), capturing the last two
  // unless no image is wanted (the core may then skip drawing them).
  void RunFrames(uint16_t buttons, bool capture);
  // Max-pools the captured frames and writes the observation into `image`.
  void RenderObservation(uint8_t* image);

  LibretroEnvConfig config_;
  std::unique_ptr<EmulatorGame> game_;
  std::unique_ptr<LibretroCore> core_;
  std::vector<uint8_t> reset_state_;
  std::vector<uint8_t> reset_image_;
  std::mt19937_64 rng_;
  std::uniform_real_distribution<float> uniform_{0.0f, 1.0f};
  uint16_t previous_buttons_ = 0;
  int steps_ = 0;
  bool needs_reset_ = true;
  // Scratch buffers, sized once.
  std::vector<uint8_t> native_max_, rgb_a_, rgb_b_, resized_;
  std::unique_ptr<AreaResizer> resizer_;
};

// What an emulated game takes from EnvOptions when they leave a setting at its default.
struct EmulatorDefaults {
  std::string core_file;        // e.g. "nestopia_libretro.so", found through DefaultCorePath
  std::string rom_path;         // used when options.rom is empty ("" = the user must give one)
  float sticky_actions = 0.0f;  // when options.sticky_actions < 0
  int max_episode_steps = 0;    // when options.max_episode_steps <= 0
};
// Fills the core, ROM, action repeat, sticky actions, image size, grayscale and time limit of
// `config` from `options` and the game's `defaults`.
void ApplyEnvOptions(const EnvOptions& options, const EmulatorDefaults& defaults,
                     LibretroEnvConfig* config);
// Checks that config.rom_path holds a `console` ROM ("NES" or "GB"; a missing file is NOT_FOUND
// saying missing_rom_before + path + missing_rom_after) and starts the emulator with `game`.
absl::StatusOr<std::unique_ptr<LibretroEnv>> StartEmulator(LibretroEnvConfig config,
                                                           std::unique_ptr<EmulatorGame> game,
                                                           const std::string& console,
                                                           const std::string& missing_rom_before,
                                                           const std::string& missing_rom_after);

// Checks that `path` holds a ROM for the console (`console` is "NES" or "GB"). The error says what
// the file is and what was expected.
absl::Status CheckRomConsole(const std::string& path, const std::string& console);

// Where the libretro cores live: $DREAMFLEET_LIBRETRO_DIR if set, else Debian's directory.
std::string DefaultCorePath(const std::string& core_file);

}  // namespace dreamfleet::envs
