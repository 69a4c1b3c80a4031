// LibretroEnv: action repeat, sticky actions, max-pool + resize, save-state reset.
#include "envs/libretro_env.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "services/status_macros.h"

namespace dreamfleet::envs {

std::string DefaultCorePath(const std::string& core_file) {
  const char* dir = std::getenv("DREAMFLEET_LIBRETRO_DIR");
  return absl::StrCat(dir && *dir ? dir : "/usr/lib/x86_64-linux-gnu/libretro", "/", core_file);
}

absl::Status CheckRomConsole(const std::string& path, const std::string& console) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("ROM \"", path, "\" not found"));
  std::vector<uint8_t> head(0x150, 0);
  in.read(reinterpret_cast<char*>(head.data()), head.size());
  const size_t got = static_cast<size_t>(in.gcount());
  if (console == "NES") {
    if (got >= 16 && std::memcmp(head.data(), "NES\x1A", 4) == 0) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(
        "\"", path, "\" is not an NES ROM: no iNES header (\"NES\\x1A\") at offset 0"));
  }
  if (console == "GB") {
    // The boot ROM's Nintendo logo at 0x104..0x133 and the header checksum at 0x14D.
    static constexpr uint8_t kLogo[48] = {
        0xCE, 0xED, 0x66, 0x66, 0xCC, 0x0D, 0x00, 0x0B, 0x03, 0x73, 0x00, 0x83,
        0x00, 0x0C, 0x00, 0x0D, 0x00, 0x08, 0x11, 0x1F, 0x88, 0x89, 0x00, 0x0E,
        0xDC, 0xCC, 0x6E, 0xE6, 0xDD, 0xDD, 0xD9, 0x99, 0xBB, 0xBB, 0x67, 0x63,
        0x6E, 0x0E, 0xEC, 0xCC, 0xDD, 0xDC, 0x99, 0x9F, 0xBB, 0xB9, 0x33, 0x3E};
    if (got < 0x150 || std::memcmp(head.data() + 0x104, kLogo, sizeof(kLogo)) != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "\"", path, "\" is not a Game Boy ROM: no Nintendo logo in the header at 0x104"));
    }
    uint8_t checksum = 0;
    for (int i = 0x134; i <= 0x14C; ++i) checksum = checksum - head[i] - 1;
    if (checksum != head[0x14D]) {
      return absl::InvalidArgumentError(
          absl::StrFormat("\"%s\" has a bad Game Boy header checksum (0x%02X, expected 0x%02X)",
                          path, head[0x14D], checksum));
    }
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown console \"", console, "\""));
}

void ApplyEnvOptions(const EnvOptions& options, const EmulatorDefaults& defaults,
                     LibretroEnvConfig* config) {
  config->core_path = options.core.empty() ? DefaultCorePath(defaults.core_file) : options.core;
  config->rom_path = options.rom.empty() ? defaults.rom_path : options.rom;
  config->action_repeat = options.action_repeat;
  config->sticky_actions =
      options.sticky_actions < 0.0f ? defaults.sticky_actions : options.sticky_actions;
  config->image_size = options.image_size;
  config->grayscale = options.grayscale;
  config->max_episode_steps =
      options.max_episode_steps > 0 ? options.max_episode_steps : defaults.max_episode_steps;
}

absl::StatusOr<std::unique_ptr<LibretroEnv>> StartEmulator(LibretroEnvConfig config,
                                                           std::unique_ptr<EmulatorGame> game,
                                                           const std::string& console,
                                                           const std::string& missing_rom_before,
                                                           const std::string& missing_rom_after) {
  absl::Status rom_ok = CheckRomConsole(config.rom_path, console);
  if (absl::IsNotFound(rom_ok)) {
    return absl::NotFoundError(
        absl::StrCat(missing_rom_before, config.rom_path, missing_rom_after));
  }
  RETURN_IF_ERROR(rom_ok);
  return LibretroEnv::Create(std::move(config), std::move(game));
}

namespace {

// The checks of a config that need no emulator (Create and LibretroSpec both make them).
absl::Status CheckConfig(const LibretroEnvConfig& config) {
  if (config.action_buttons.empty() ||
      config.spec.num_actions != static_cast<int>(config.action_buttons.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("env ", config.spec.name, ": ", config.action_buttons.size(),
                     " button sets for ", config.spec.num_actions, " actions"));
  }
  if (config.action_repeat < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("action_repeat must be >= 1, got ", config.action_repeat));
  }
  if (config.sticky_actions < 0.0f || config.sticky_actions >= 1.0f) {
    return absl::InvalidArgumentError(
        absl::StrCat("sticky_actions must be in [0, 1), got ", config.sticky_actions));
  }
  if (config.image_size <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("env ", config.spec.name, ": image_size ", config.image_size, " must be > 0"));
  }
  if (config.rom_path.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(config.spec.name, " needs a ROM: set env.rom (no file given)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<EnvSpec> LibretroSpec(const LibretroEnvConfig& config) {
  RETURN_IF_ERROR(CheckConfig(config));
  EnvSpec spec = config.spec;
  spec.image_height = config.image_size;
  spec.image_width = config.image_size;
  spec.image_channels = config.grayscale ? 1 : 3;
  spec.max_episode_steps = config.max_episode_steps;
  return spec;
}

absl::StatusOr<std::unique_ptr<LibretroEnv>> LibretroEnv::Create(
    LibretroEnvConfig config, std::unique_ptr<EmulatorGame> game) {
  if (config.image_size > 0) {
    RETURN_IF_ERROR(CheckConfig(config));
  } else {  // image_size <= 0 (the core's native resolution) is allowed here, not in a spec
    LibretroEnvConfig native = config;
    native.image_size = 1;
    RETURN_IF_ERROR(CheckConfig(native));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<LibretroCore> core,
                   LibretroCore::Create(config.core_path, config.rom_path));
  if (core->system_ram().empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("core ", core->library_name(), " exposes no system RAM"));
  }
  RETURN_IF_ERROR(game->Boot(core.get()));

  std::unique_ptr<LibretroEnv> env(
      new LibretroEnv(std::move(config), std::move(game), std::move(core)));
  // The observation at the reset point: a full action repeat of no input, like every step.
  env->RunFrames(0, /*capture=*/true);
  const NativeFrame& frame = env->core_->frame(1);
  if (frame.pixels.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("core ", env->core_->library_name(), " produced no video frame"));
  }
  EnvSpec& spec = env->config_.spec;
  spec.image_height = env->config_.image_size > 0 ? env->config_.image_size : frame.height;
  spec.image_width = env->config_.image_size > 0 ? env->config_.image_size : frame.width;
  spec.image_channels = env->config_.grayscale ? 1 : 3;
  spec.max_episode_steps = env->config_.max_episode_steps;
  env->resized_.resize(static_cast<size_t>(spec.image_height) * spec.image_width * 3);
  env->reset_image_.resize(spec.image_bytes());
  env->RenderObservation(env->reset_image_.data());
  ASSIGN_OR_RETURN(env->reset_state_, env->core_->SaveState());
  return env;
}

LibretroEnv::LibretroEnv(LibretroEnvConfig config, std::unique_ptr<EmulatorGame> game,
                         std::unique_ptr<LibretroCore> core)
    : config_(std::move(config)), game_(std::move(game)), core_(std::move(core)) {}

void LibretroEnv::RunFrames(uint16_t buttons, bool capture) {
  const int repeat = config_.action_repeat;
  const float sticky = config_.sticky_actions;
  for (int i = 0; i < repeat; ++i) {
    uint16_t held = buttons;
    if (sticky > 0.0f && uniform_(rng_) < sticky) held = previous_buttons_;
    previous_buttons_ = held;
    core_->SetButtons(held);
    // Capture the last two frames into slots 0 and 1 (with repeat 1, slot 1 only).
    const int from_end = repeat - 1 - i;
    if (capture && from_end <= 1) {
      core_->RunFrame(/*capture=*/true, /*slot=*/1 - from_end);
    } else {
      core_->RunFrame(/*capture=*/false);
    }
  }
}

void LibretroEnv::RenderObservation(uint8_t* image) {
  const NativeFrame& last = core_->frame(1);
  const NativeFrame& before = core_->frame(0);
  const EnvSpec& spec = config_.spec;
  const size_t pixels = static_cast<size_t>(last.width) * last.height;
  const size_t pitch = static_cast<size_t>(last.width) * BytesPerPixel(last.format);
  const size_t out_pixels = static_cast<size_t>(spec.image_height) * spec.image_width;
  const bool pool = config_.action_repeat > 1 && before.width == last.width &&
                    before.height == last.height && before.format == last.format &&
                    before.pixels.size() == last.pixels.size();
  const bool resize = last.height != spec.image_height || last.width != spec.image_width;
  if (resize &&
      (!resizer_ || resizer_->in_height() != last.height || resizer_->in_width() != last.width)) {
    resizer_ = std::make_unique<AreaResizer>(last.height, last.width, spec.image_height,
                                             spec.image_width, 3);
  }
  // RGB observations are written in place; grayscale goes through resized_.
  uint8_t* rgb_out = spec.image_channels == 3 ? image : resized_.data();

  if (last.format == PixelFormat::kXRGB8888) {
    // Byte channels: max-pool the native frames bytewise, then convert (and resize) once.
    const uint8_t* native = last.pixels.data();
    if (pool) {
      native_max_.resize(last.pixels.size());
      MaxPool(last.pixels.data(), before.pixels.data(), last.pixels.size(), native_max_.data());
      native = native_max_.data();
    }
    if (resize) {
      resizer_->ResizeXrgb8888(native, rgb_out);
    } else {
      ConvertToRgb(native, last.width, last.height, pitch, last.format, rgb_out);
    }
  } else {
    // 16-bit formats: channels straddle bytes, so convert both frames before pooling.
    rgb_a_.resize(pixels * 3);
    ConvertToRgb(last.pixels.data(), last.width, last.height, pitch, last.format, rgb_a_.data());
    if (pool) {
      rgb_b_.resize(pixels * 3);
      ConvertToRgb(before.pixels.data(), before.width, before.height, pitch, before.format,
                   rgb_b_.data());
      MaxPool(rgb_a_.data(), rgb_b_.data(), pixels * 3, rgb_a_.data());
    }
    if (resize) {
      resizer_->Resize(rgb_a_.data(), rgb_out);
    } else {
      std::memcpy(rgb_out, rgb_a_.data(), out_pixels * 3);
    }
  }
  if (spec.image_channels == 1) RgbToGray(resized_.data(), out_pixels, image);
}

absl::Status LibretroEnv::Reset(uint64_t seed, StepBuffer* out) {
  RETURN_IF_ERROR(core_->LoadState(reset_state_));
  rng_.seed(seed);
  previous_buttons_ = 0;
  steps_ = 0;
  needs_reset_ = false;
  game_->Reset(core_->system_ram());
  if (out->image) std::memcpy(out->image, reset_image_.data(), reset_image_.size());
  if (out->text && config_.spec.text_length > 0) game_->WriteText(core_->system_ram(), out->text);
  out->reward = 0.0f;
  out->is_first = true;
  out->is_last = false;
  out->is_terminal = false;
  out->success = false;
  return absl::OkStatus();
}

absl::Status LibretroEnv::Step(int action, StepBuffer* out) {
  if (needs_reset_) {
    return absl::FailedPreconditionError(
        absl::StrCat("env ", config_.spec.name, ": Step called before Reset or after is_last"));
  }
  if (action < 0 || action >= config_.spec.num_actions) {
    return absl::InvalidArgumentError(absl::StrCat("env ", config_.spec.name, ": action ", action,
                                                   " outside [0, ", config_.spec.num_actions, ")"));
  }
  RunFrames(config_.action_buttons[action], /*capture=*/out->image != nullptr);
  const EmulatorGame::StepResult result = game_->Step(core_.get());
  ++steps_;
  if (out->image) RenderObservation(out->image);
  if (out->text && config_.spec.text_length > 0) game_->WriteText(core_->system_ram(), out->text);
  const bool time_up = config_.max_episode_steps > 0 && steps_ >= config_.max_episode_steps;
  out->reward = result.reward;
  out->is_first = false;
  out->is_terminal = result.terminal;
  out->is_last = result.terminal || time_up;
  out->success = result.success;
  needs_reset_ = out->is_last;
  return absl::OkStatus();
}

}  // namespace dreamfleet::envs
