// One running instance of a libretro core (.so) with one loaded game. Data flow: SetButtons() ->
// RunFrame() (retro_run; the core calls back video/input through this instance's trampolines) ->
// captured native frames, system RAM, save states.
//
// Libretro cores keep global state and their callbacks carry no user pointer. So every instance
// dlopens its own private copy of the core .so (a temp file, unlinked right after dlopen: glibc
// would hand back the same handle for the same path) and binds one slot of a fixed pool of
// template-generated static trampolines. Instances are therefore independent and may run on
// different threads; at most kMaxInstances live at once per process. Callers never see this.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "envs/libretro_frame.h"

namespace dreamfleet::envs {

// A frame as the core delivered it, rows packed (pitch = width * BytesPerPixel(format)).
struct NativeFrame {
  int width = 0;
  int height = 0;
  PixelFormat format = PixelFormat::k0RGB1555;
  std::vector<uint8_t> pixels;
};

class LibretroCore {
 public:
  static constexpr int kMaxInstances = 128;

  // Loads `core_path` (a private copy) and the game in `rom_path`. Errors: NOT_FOUND for a
  // missing file, INVALID_ARGUMENT when the core refuses the ROM, RESOURCE_EXHAUSTED past
  // kMaxInstances, FAILED_PRECONDITION when the .so is not a libretro core. The core's own
  // stdout chatter during load is suppressed.
  static absl::StatusOr<std::unique_ptr<LibretroCore>> Create(const std::string& core_path,
                                                              const std::string& rom_path);
  ~LibretroCore();
  LibretroCore(const LibretroCore&) = delete;
  LibretroCore& operator=(const LibretroCore&) = delete;

  // Joypad 1 buttons held during the next frames, as a bit mask of RETRO_DEVICE_ID_JOYPAD_* bits.
  void SetButtons(uint16_t mask) { buttons_ = mask; }
  // Runs one frame. With capture, the frame's video is kept in frame(slot) (slot 0 or 1);
  // without, the core is told video is unused and may skip rendering it.
  void RunFrame(bool capture, int slot = 0);
  // Runs one frame with video on but dropped unseen (the bench's raw retro_run baseline).
  void RunFrameDiscardingVideo();
  const NativeFrame& frame(int slot) const { return frames_[slot]; }
  int64_t frames_run() const { return frames_run_; }

  // The console's main RAM (NES: 2 KB at $0000; Game Boy: WRAM from $C000). Stays valid.
  absl::Span<uint8_t> system_ram();
  absl::StatusOr<std::vector<uint8_t>> SaveState();
  absl::Status LoadState(const std::vector<uint8_t>& state);

  // Nominal geometry from retro_get_system_av_info.
  int base_width() const { return base_width_; }
  int base_height() const { return base_height_; }
  double fps() const { return fps_; }
  const std::string& library_name() const { return library_name_; }

 private:
  struct Api;
  template <int N>
  friend struct CoreTrampolines;

  LibretroCore() = default;
  absl::Status Load(const std::string& core_path, const std::string& rom_path);
  bool OnEnvironment(unsigned cmd, void* data);
  void OnVideo(const void* data, unsigned width, unsigned height, size_t pitch);
  int16_t OnInputState(unsigned port, unsigned device, unsigned index, unsigned id);

  int slot_ = -1;
  void* handle_ = nullptr;
  std::unique_ptr<Api> api_;
  bool game_loaded_ = false;
  bool inited_ = false;
  std::vector<uint8_t> rom_data_;
  std::string rom_path_;
  std::string system_dir_;
  PixelFormat format_ = PixelFormat::k0RGB1555;
  uint16_t buttons_ = 0;
  bool capture_ = true;
  bool video_wanted_ = true;  // what GET_AUDIO_VIDEO_ENABLE answers
  int capture_slot_ = 0;
  NativeFrame frames_[2];
  int64_t frames_run_ = 0;
  int base_width_ = 0, base_height_ = 0;
  double fps_ = 60.0;
  std::string library_name_;
};

}  // namespace dreamfleet::envs
