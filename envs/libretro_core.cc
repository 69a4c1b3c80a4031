// LibretroCore: private .so copy per instance, trampoline slots, environment callbacks.
#include "envs/libretro_core.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <libretro-common/libretro.h>
#include <unistd.h>

#include <array>
#include <cctype>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <iterator>
#include <mutex>
#include <utility>

#include "absl/strings/str_cat.h"

// Under AddressSanitizer the private copy of a core stays mapped after the core is destroyed, so
// that LeakSanitizer can name the core behind the memory it never frees (its module is
// dreamfleet-core-<core name>-*.so; tests/fuzz/lsan.supp). An unmapped core's leaks have no module
// to name. In that build a use of a destroyed core therefore does not crash, and each copy's
// unlinked file holds its disk space until the process exits.
#if defined(__SANITIZE_ADDRESS__)
#define DREAMFLEET_KEEP_CORES_MAPPED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DREAMFLEET_KEEP_CORES_MAPPED 1
#endif
#endif

namespace dreamfleet::envs {

struct LibretroCore::Api {
  void (*set_environment)(retro_environment_t);
  void (*set_video_refresh)(retro_video_refresh_t);
  void (*set_audio_sample)(retro_audio_sample_t);
  void (*set_audio_sample_batch)(retro_audio_sample_batch_t);
  void (*set_input_poll)(retro_input_poll_t);
  void (*set_input_state)(retro_input_state_t);
  void (*init)();
  void (*deinit)();
  unsigned (*api_version)();
  void (*get_system_info)(retro_system_info*);
  void (*get_system_av_info)(retro_system_av_info*);
  void (*set_controller_port_device)(unsigned, unsigned);
  void (*run)();
  size_t (*serialize_size)();
  bool (*serialize)(void*, size_t);
  bool (*unserialize)(const void*, size_t);
  bool (*load_game)(const retro_game_info*);
  void (*unload_game)();
  void* (*get_memory_data)(unsigned);
  size_t (*get_memory_size)(unsigned);
};

namespace {

// Slot i of the trampoline pool points at the instance bound to it (null when free). Written under
// g_slot_mutex before the core is given slot i's callbacks, read only by that core's callbacks.
std::mutex g_slot_mutex;
LibretroCore* g_slots[LibretroCore::kMaxInstances] = {};
// Loading redirects the process's stdout; one load at a time.
std::mutex g_load_mutex;

void RETRO_CALLCONV LogCallback(enum retro_log_level level, const char* fmt, ...) {
  if (level < RETRO_LOG_WARN) return;
  char message[512];
  va_list args;
  va_start(args, fmt);
  std::vsnprintf(message, sizeof(message), fmt, args);
  va_end(args);
  std::cerr << "[libretro core] " << message;
  const size_t len = std::strlen(message);
  if (len == 0 || message[len - 1] != '\n') std::cerr << '\n';
}

void RETRO_CALLCONV AudioSample(int16_t, int16_t) {}
size_t RETRO_CALLCONV AudioSampleBatch(const int16_t*, size_t frames) { return frames; }
void RETRO_CALLCONV InputPoll() {}

absl::StatusOr<std::vector<uint8_t>> ReadFile(const std::string& path, const char* what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(what, " \"", path, "\" not found"));
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

// Silences file descriptor 1 for its lifetime (Gambatte prints on load).
class StdoutSilencer {
 public:
  StdoutSilencer() {
    std::fflush(stdout);
    std::cout.flush();
    saved_ = dup(1);
    const int null_fd = open("/dev/null", O_WRONLY);
    if (saved_ >= 0 && null_fd >= 0) dup2(null_fd, 1);
    if (null_fd >= 0) close(null_fd);
  }
  ~StdoutSilencer() {
    std::fflush(stdout);
    std::cout.flush();
    if (saved_ >= 0) {
      dup2(saved_, 1);
      close(saved_);
    }
  }

 private:
  int saved_ = -1;
};

// Copies the core to a fresh temp file and dlopens it there, so every instance gets its own
// globals; the file is unlinked at once (the mapping keeps it alive). The file is named after the
// core (dreamfleet-core-nestopia_libretro-XXXXXX.so), so that a sanitizer's report names it.
absl::StatusOr<void*> OpenPrivateCopy(const std::string& core_path) {
  auto bytes = ReadFile(core_path, "libretro core");
  if (!bytes.ok()) return bytes.status();
  std::string name = core_path.substr(core_path.find_last_of('/') + 1);
  if (name.size() > 3 && name.compare(name.size() - 3, 3, ".so") == 0) name.resize(name.size() - 3);
  if (name.size() > 64) name.resize(64);
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') c = '_';
  }
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern =
      absl::StrCat(tmp && *tmp ? tmp : "/tmp", "/dreamfleet-core-", name, "-XXXXXX.so");
  const int fd = mkstemps(pattern.data(), 3);
  if (fd < 0) {
    return absl::InternalError(
        absl::StrCat("cannot create a private copy of core \"", core_path, "\" at ", pattern));
  }
  size_t written = 0;
  while (written < bytes->size()) {
    const ssize_t n = write(fd, bytes->data() + written, bytes->size() - written);
    if (n <= 0) break;
    written += static_cast<size_t>(n);
  }
  close(fd);
  if (written != bytes->size()) {
    unlink(pattern.c_str());
    return absl::InternalError(absl::StrCat("short write copying core to ", pattern));
  }
  void* handle = dlopen(pattern.c_str(), RTLD_NOW | RTLD_LOCAL);
  const char* error = handle ? nullptr : dlerror();
  unlink(pattern.c_str());
  if (!handle) {
    return absl::FailedPreconditionError(absl::StrCat("cannot load libretro core \"", core_path,
                                                      "\": ", error ? error : "dlopen failed"));
  }
  return handle;
}

}  // namespace

// Static callbacks of slot N, forwarding to the instance bound to that slot.
template <int N>
struct CoreTrampolines {
  static bool RETRO_CALLCONV Environment(unsigned cmd, void* data) {
    return g_slots[N]->OnEnvironment(cmd, data);
  }
  static void RETRO_CALLCONV Video(const void* data, unsigned width, unsigned height,
                                   size_t pitch) {
    g_slots[N]->OnVideo(data, width, height, pitch);
  }
  static int16_t RETRO_CALLCONV InputState(unsigned port, unsigned device, unsigned index,
                                           unsigned id) {
    return g_slots[N]->OnInputState(port, device, index, id);
  }
};

namespace {
struct TrampolineSet {
  retro_environment_t environment;
  retro_video_refresh_t video;
  retro_input_state_t input_state;
};

template <size_t... I>
constexpr std::array<TrampolineSet, sizeof...(I)> MakeTrampolines(std::index_sequence<I...>) {
  return {{{&CoreTrampolines<I>::Environment, &CoreTrampolines<I>::Video,
            &CoreTrampolines<I>::InputState}...}};
}
constexpr auto kTrampolines =
    MakeTrampolines(std::make_index_sequence<LibretroCore::kMaxInstances>());
}  // namespace

absl::StatusOr<std::unique_ptr<LibretroCore>> LibretroCore::Create(const std::string& core_path,
                                                                   const std::string& rom_path) {
  std::unique_ptr<LibretroCore> core(new LibretroCore());
  {
    std::lock_guard<std::mutex> lock(g_slot_mutex);
    for (int i = 0; i < kMaxInstances; ++i) {
      if (g_slots[i] == nullptr) {
        g_slots[i] = core.get();
        core->slot_ = i;
        break;
      }
    }
  }
  if (core->slot_ < 0) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "too many libretro core instances in this process (at most ", kMaxInstances, ")"));
  }
  absl::Status status = core->Load(core_path, rom_path);
  // The destructor releases the slot and the handle (kept open under AddressSanitizer: see the
  // top of the file).
  if (!status.ok()) return status;
  return core;
}

absl::Status LibretroCore::Load(const std::string& core_path, const std::string& rom_path) {
  auto rom = ReadFile(rom_path, "ROM");
  if (!rom.ok()) return rom.status();
  rom_data_ = std::move(*rom);
  rom_path_ = rom_path;
  const size_t slash = rom_path.find_last_of('/');
  system_dir_ = slash == std::string::npos ? "." : rom_path.substr(0, slash);
  if (system_dir_.empty()) system_dir_ = "/";

  std::lock_guard<std::mutex> lock(g_load_mutex);
  StdoutSilencer silence;
  auto handle = OpenPrivateCopy(core_path);
  if (!handle.ok()) return handle.status();
  handle_ = *handle;

  api_ = std::make_unique<Api>();
  bool missing = false;
  std::string missing_name;
  auto sym = [&](auto& fn, const char* name) {
    void* p = dlsym(handle_, name);
    if (!p && !missing) {
      missing = true;
      missing_name = name;
    }
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(p);
  };
  sym(api_->set_environment, "retro_set_environment");
  sym(api_->set_video_refresh, "retro_set_video_refresh");
  sym(api_->set_audio_sample, "retro_set_audio_sample");
  sym(api_->set_audio_sample_batch, "retro_set_audio_sample_batch");
  sym(api_->set_input_poll, "retro_set_input_poll");
  sym(api_->set_input_state, "retro_set_input_state");
  sym(api_->init, "retro_init");
  sym(api_->deinit, "retro_deinit");
  sym(api_->api_version, "retro_api_version");
  sym(api_->get_system_info, "retro_get_system_info");
  sym(api_->get_system_av_info, "retro_get_system_av_info");
  sym(api_->set_controller_port_device, "retro_set_controller_port_device");
  sym(api_->run, "retro_run");
  sym(api_->serialize_size, "retro_serialize_size");
  sym(api_->serialize, "retro_serialize");
  sym(api_->unserialize, "retro_unserialize");
  sym(api_->load_game, "retro_load_game");
  sym(api_->unload_game, "retro_unload_game");
  sym(api_->get_memory_data, "retro_get_memory_data");
  sym(api_->get_memory_size, "retro_get_memory_size");
  if (missing) {
    api_.reset();
    return absl::FailedPreconditionError(absl::StrCat(
        "\"", core_path, "\" is not a libretro core (missing symbol ", missing_name, ")"));
  }
  if (api_->api_version() != RETRO_API_VERSION) {
    const unsigned version = api_->api_version();
    api_.reset();
    return absl::FailedPreconditionError(absl::StrCat("core \"", core_path, "\" has API version ",
                                                      version, ", expected ", RETRO_API_VERSION));
  }

  const TrampolineSet& t = kTrampolines[slot_];
  api_->set_environment(t.environment);
  api_->init();
  inited_ = true;
  api_->set_video_refresh(t.video);
  api_->set_audio_sample(&AudioSample);
  api_->set_audio_sample_batch(&AudioSampleBatch);
  api_->set_input_poll(&InputPoll);
  api_->set_input_state(t.input_state);

  retro_system_info info{};
  api_->get_system_info(&info);
  library_name_ = info.library_name ? info.library_name : "";
  retro_game_info game{};
  game.path = rom_path_.c_str();
  game.data = rom_data_.data();
  game.size = rom_data_.size();
  if (!api_->load_game(&game)) {
    return absl::InvalidArgumentError(absl::StrCat("core ", library_name_, " (\"", core_path,
                                                   "\") refused the ROM \"", rom_path, "\""));
  }
  game_loaded_ = true;
  api_->set_controller_port_device(0, RETRO_DEVICE_JOYPAD);
  retro_system_av_info av{};
  api_->get_system_av_info(&av);
  base_width_ = static_cast<int>(av.geometry.base_width);
  base_height_ = static_cast<int>(av.geometry.base_height);
  if (av.timing.fps > 0) fps_ = av.timing.fps;
  return absl::OkStatus();
}

LibretroCore::~LibretroCore() {
  if (api_) {
    if (game_loaded_) api_->unload_game();
    if (inited_) api_->deinit();
  }
#ifndef DREAMFLEET_KEEP_CORES_MAPPED
  if (handle_) dlclose(handle_);
#endif
  if (slot_ >= 0) {
    std::lock_guard<std::mutex> lock(g_slot_mutex);
    g_slots[slot_] = nullptr;
  }
}

void LibretroCore::RunFrame(bool capture, int slot) {
  capture_ = capture;
  video_wanted_ = capture;
  capture_slot_ = slot;
  api_->run();
  ++frames_run_;
}

void LibretroCore::RunFrameDiscardingVideo() {
  capture_ = false;
  video_wanted_ = true;
  api_->run();
  ++frames_run_;
}

absl::Span<uint8_t> LibretroCore::system_ram() {
  auto* data = static_cast<uint8_t*>(api_->get_memory_data(RETRO_MEMORY_SYSTEM_RAM));
  const size_t size = api_->get_memory_size(RETRO_MEMORY_SYSTEM_RAM);
  if (!data) return {};
  return absl::Span<uint8_t>(data, size);
}

absl::StatusOr<std::vector<uint8_t>> LibretroCore::SaveState() {
  std::vector<uint8_t> state(api_->serialize_size());
  if (state.empty() || !api_->serialize(state.data(), state.size())) {
    return absl::FailedPreconditionError(
        absl::StrCat("core ", library_name_, " cannot serialize its state"));
  }
  return state;
}

absl::Status LibretroCore::LoadState(const std::vector<uint8_t>& state) {
  if (!api_->unserialize(state.data(), state.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("core ", library_name_, " rejected a ", state.size(), "-byte save state"));
  }
  return absl::OkStatus();
}

bool LibretroCore::OnEnvironment(unsigned cmd, void* data) {
  switch (cmd) {
    case RETRO_ENVIRONMENT_GET_CAN_DUPE:
      *static_cast<bool*>(data) = true;
      return true;
    case RETRO_ENVIRONMENT_SET_PIXEL_FORMAT: {
      const auto format = *static_cast<const retro_pixel_format*>(data);
      if (format != RETRO_PIXEL_FORMAT_0RGB1555 && format != RETRO_PIXEL_FORMAT_XRGB8888 &&
          format != RETRO_PIXEL_FORMAT_RGB565) {
        return false;
      }
      format_ = static_cast<PixelFormat>(format);
      return true;
    }
    case RETRO_ENVIRONMENT_GET_SYSTEM_DIRECTORY:
    case RETRO_ENVIRONMENT_GET_SAVE_DIRECTORY:
      *static_cast<const char**>(data) = system_dir_.c_str();
      return true;
    case RETRO_ENVIRONMENT_GET_LOG_INTERFACE:
      static_cast<retro_log_callback*>(data)->log = &LogCallback;
      return true;
    case RETRO_ENVIRONMENT_GET_VARIABLE:
      static_cast<retro_variable*>(data)->value = nullptr;  // every option at its default
      return false;
    case RETRO_ENVIRONMENT_GET_VARIABLE_UPDATE:
      *static_cast<bool*>(data) = false;
      return true;
    case RETRO_ENVIRONMENT_GET_INPUT_BITMASKS:
      return true;
    case RETRO_ENVIRONMENT_GET_AUDIO_VIDEO_ENABLE:
      *static_cast<int*>(data) = video_wanted_ ? 1 : 0;  // bit 0 video; audio is never wanted
      return true;
    case RETRO_ENVIRONMENT_SET_GEOMETRY: {
      const auto* geometry = static_cast<const retro_game_geometry*>(data);
      base_width_ = static_cast<int>(geometry->base_width);
      base_height_ = static_cast<int>(geometry->base_height);
      return true;
    }
    case RETRO_ENVIRONMENT_SET_SYSTEM_AV_INFO: {
      const auto* av = static_cast<const retro_system_av_info*>(data);
      base_width_ = static_cast<int>(av->geometry.base_width);
      base_height_ = static_cast<int>(av->geometry.base_height);
      return true;
    }
    case RETRO_ENVIRONMENT_SET_PERFORMANCE_LEVEL:
    case RETRO_ENVIRONMENT_SET_INPUT_DESCRIPTORS:
    case RETRO_ENVIRONMENT_SET_VARIABLES:
    case RETRO_ENVIRONMENT_SET_SUPPORT_NO_GAME:
    case RETRO_ENVIRONMENT_SET_CONTROLLER_INFO:
    case RETRO_ENVIRONMENT_SET_MEMORY_MAPS:
    case RETRO_ENVIRONMENT_SET_SUBSYSTEM_INFO:
    case RETRO_ENVIRONMENT_SET_SUPPORT_ACHIEVEMENTS:
      return true;
    default:
      return false;
  }
}

void LibretroCore::OnVideo(const void* data, unsigned width, unsigned height, size_t pitch) {
  if (!capture_) return;
  NativeFrame& frame = frames_[capture_slot_];
  if (data == nullptr) {  // a duplicate of the previous frame
    const NativeFrame& other = frames_[1 - capture_slot_];
    if (frame.pixels.empty() && !other.pixels.empty()) frame = other;
    return;
  }
  const int bpp = BytesPerPixel(format_);
  const size_t row = static_cast<size_t>(width) * bpp;
  frame.width = static_cast<int>(width);
  frame.height = static_cast<int>(height);
  frame.format = format_;
  frame.pixels.resize(row * height);
  const auto* src = static_cast<const uint8_t*>(data);
  if (pitch == row) {
    std::memcpy(frame.pixels.data(), src, row * height);
  } else {
    for (unsigned y = 0; y < height; ++y) std::memcpy(&frame.pixels[y * row], src + y * pitch, row);
  }
}

int16_t LibretroCore::OnInputState(unsigned port, unsigned device, unsigned /*index*/,
                                   unsigned id) {
  if (port != 0 || (device & RETRO_DEVICE_MASK) != RETRO_DEVICE_JOYPAD) return 0;
  if (id == RETRO_DEVICE_ID_JOYPAD_MASK) return static_cast<int16_t>(buttons_);
  return id < 16 ? static_cast<int16_t>((buttons_ >> id) & 1) : 0;
}

}  // namespace dreamfleet::envs
