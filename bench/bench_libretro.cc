// Raw core vs adapter on the homebrew ROM, one thread. Rows: retro_run with video drawn but
// dropped (the baseline), retro_run told video is unused, and nes_homebrew steps at repeat 4 with
// the image resized to 64x64, at native 256x240, and state only. Overhead = 1 - env frames/s /
// baseline frames/s. Random SIMPLE_MOVEMENT actions from a fixed seed; resets included.
#include "bench/bench_libretro.h"

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <iostream>
#include <memory>
#include <random>
#include <vector>

#include "actor/envs/libretro_core.h"
#include "actor/envs/libretro_env.h"
#include "actor/envs/nes_homebrew_env.h"

namespace dreamfleet::actor {
namespace {

using Clock = std::chrono::steady_clock;

// Calls `frames_fn` (which runs some frames and returns how many) until `seconds` pass.
template <typename Fn>
double FramesPerSecond(double seconds, Fn frames_fn) {
  const auto start = Clock::now();
  int64_t frames = 0;
  double elapsed = 0.0;
  do {
    for (int i = 0; i < 32; ++i) {
      const int n = frames_fn();
      if (n < 0) return -1.0;
      frames += n;
    }
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  } while (elapsed < seconds);
  return frames / elapsed;
}

double RawCore(double seconds, bool video) {
  auto core = LibretroCore::Create(DefaultCorePath("nestopia_libretro.so"),
                                   DefaultHomebrewRomPath());
  if (!core.ok()) {
    std::cerr << core.status() << "\n";
    return -1.0;
  }
  const std::vector<uint16_t>& buttons = NesSimpleMovementButtons();
  std::mt19937 rng(1);
  // Press START first so the game is in play like the env's.
  (*core)->SetButtons(joypad::kStart);
  for (int i = 0; i < 30; ++i) (*core)->RunFrame(false);
  return FramesPerSecond(seconds, [&] {
    (*core)->SetButtons(buttons[rng() % buttons.size()]);
    for (int i = 0; i < 4; ++i) {
      if (video) {
        (*core)->RunFrameDiscardingVideo();
      } else {
        (*core)->RunFrame(false);
      }
    }
    return 4;
  });
}

double Env(double seconds, int image_size, bool render) {
  EnvOptions options;
  options.name = "nes_homebrew";
  options.image_size = image_size;
  options.action_repeat = 4;
  auto env = MakeNesHomebrew(options);
  if (!env.ok()) {
    std::cerr << env.status() << "\n";
    return -1.0;
  }
  std::vector<uint8_t> image((*env)->spec().image_bytes());
  StepBuffer b;
  b.image = render ? image.data() : nullptr;
  std::mt19937 rng(1);
  uint64_t seed = 0;
  if (!(*env)->Reset(seed++, &b).ok()) return -1.0;
  return FramesPerSecond(seconds, [&] {
    absl::Status s = b.is_last ? (*env)->Reset(seed++, &b) : (*env)->Step(rng() % 7, &b);
    if (!s.ok()) {
      std::cerr << s << "\n";
      return -1;
    }
    return 4;
  });
}

void Row(const char* what, double frames, double baseline) {
  if (frames < 0) {
    std::printf("| %s | - | - | - |\n", what);
    return;
  }
  std::printf("| %s | %.0f | %.0f | %+.1f%% |\n", what, frames, frames / 4,
              baseline > 0 ? 100.0 * (1.0 - frames / baseline) : 0.0);
}

}  // namespace

int PrintLibretroBench(double seconds) {
  const double raw = RawCore(seconds, true);
  const double raw_no_video = RawCore(seconds, false);
  const double env64 = Env(seconds, 64, true);
  const double native = Env(seconds, 0, true);
  const double state = Env(seconds, 64, false);
  std::printf("\n| nes_homebrew (Nestopia), repeat 4 | frames/s | agent steps/s | overhead vs raw |\n"
              "|---|---:|---:|---:|\n");
  Row("raw retro_run, video drawn and dropped (baseline)", raw, raw);
  Row("raw retro_run, core told video unused", raw_no_video, raw);
  Row("env, 64x64 RGB (max-pool + area resize)", env64, raw);
  Row("env, native 256x240 RGB (max-pool, no resize)", native, raw);
  Row("env, state only (no image)", state, raw);
  std::fflush(stdout);
  return (raw < 0) + (raw_no_video < 0) + (env64 < 0) + (native < 0) + (state < 0);
}

}  // namespace dreamfleet::actor
