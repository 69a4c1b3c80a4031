// Raw core vs adapter on the homebrew ROM, one thread. Rows: retro_run with video drawn but
// dropped (the baseline), retro_run told video is unused, and nes_homebrew steps at repeat 4 with
// the image resized to 64x64, at native 256x240, and state only. Overhead = 1 - env frames/s /
// baseline frames/s, all per second of this thread's CPU time, measured in interleaved slices.
// Random SIMPLE_MOVEMENT actions from a fixed seed; resets included.
#include "bench/bench_libretro.h"

#include <time.h>

#include <cstdint>
#include <cstdio>
#include <functional>
#include <iostream>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "envs/libretro_core.h"
#include "envs/libretro_env.h"
#include "envs/nes_homebrew_env.h"

namespace dreamfleet::envs {
namespace {

// Thread CPU time: the figures stay meaningful on a machine shared with other work, where wall
// time would count the time this thread waited for a core.
double ThreadCpuSeconds() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec + ts.tv_nsec * 1e-9;
}

// One measured configuration: Step() runs one agent step's frames and returns how many.
struct Runner {
  const char* what;
  std::function<int()> step;
  int64_t frames = 0;
  double cpu_seconds = 0.0;
  bool failed = false;
  double FramesPerSecond() const {
    return failed || cpu_seconds <= 0 ? -1.0 : frames / cpu_seconds;
  }
};

std::function<int()> RawCore(bool video) {
  auto created =
      LibretroCore::Create(DefaultCorePath("nestopia_libretro.so"), DefaultHomebrewRomPath());
  if (!created.ok()) {
    std::cerr << created.status() << "\n";
    return nullptr;
  }
  std::shared_ptr<LibretroCore> core(std::move(*created));
  // Press START first so the game is in play like the env's.
  core->SetButtons(joypad::kStart);
  for (int i = 0; i < 30; ++i) core->RunFrame(false);
  auto rng = std::make_shared<std::mt19937>(1);
  return [core, rng, video] {
    const std::vector<uint16_t>& buttons = NesSimpleMovementButtons();
    core->SetButtons(buttons[(*rng)() % buttons.size()]);
    for (int i = 0; i < 4; ++i) {
      if (video) {
        core->RunFrameDiscardingVideo();
      } else {
        core->RunFrame(false);
      }
    }
    return 4;
  };
}

std::function<int()> Env(int image_size, bool render) {
  EnvOptions options;
  options.name = "nes_homebrew";
  options.image_size = image_size;
  options.action_repeat = 4;
  auto made = MakeNesHomebrew(options);
  if (!made.ok()) {
    std::cerr << made.status() << "\n";
    return nullptr;
  }
  struct State {
    std::unique_ptr<Environment> env;
    std::vector<uint8_t> image;
    StepBuffer b;
    std::mt19937 rng{1};
    uint64_t seed = 0;
  };
  auto st = std::make_shared<State>();
  st->env = std::move(*made);
  st->image.resize(st->env->spec().image_bytes());
  st->b.image = render ? st->image.data() : nullptr;
  if (!st->env->Reset(st->seed++, &st->b).ok()) return nullptr;
  return [st] {
    absl::Status s = st->b.is_last ? st->env->Reset(st->seed++, &st->b)
                                   : st->env->Step(static_cast<int>(st->rng() % 7), &st->b);
    if (!s.ok()) {
      std::cerr << s << "\n";
      return -1;
    }
    return 4;
  };
}

}  // namespace

int PrintLibretroBench(double seconds) {
  std::vector<Runner> runners = {
      {"raw retro_run, video drawn and dropped (baseline)", RawCore(true)},
      {"raw retro_run, core told video unused", RawCore(false)},
      {"env, 64x64 RGB (max-pool + area resize)", Env(64, true)},
      {"env, native 256x240 RGB (max-pool, no resize)", Env(0, true)},
      {"env, state only (no image)", Env(64, false)},
  };
  // Interleave short slices so every configuration sees the same machine conditions.
  const int kRounds = 10;
  for (int round = 0; round < kRounds; ++round) {
    for (Runner& r : runners) {
      if (!r.step) r.failed = true;
      if (r.failed) continue;
      const double start = ThreadCpuSeconds();
      do {
        for (int i = 0; i < 16; ++i) {
          const int n = r.step();
          if (n < 0) {
            r.failed = true;
            break;
          }
          r.frames += n;
        }
      } while (!r.failed && ThreadCpuSeconds() - start < seconds / kRounds);
      r.cpu_seconds += ThreadCpuSeconds() - start;
    }
  }
  const double baseline = runners[0].FramesPerSecond();
  std::printf(
      "\n| nes_homebrew (Nestopia), repeat 4, per CPU-second | frames/s | agent steps/s "
      "| overhead vs baseline |\n|---|---:|---:|---:|\n");
  int failures = 0;
  for (const Runner& r : runners) {
    const double fps = r.FramesPerSecond();
    if (fps < 0) {
      ++failures;
      std::printf("| %s | - | - | - |\n", r.what);
      continue;
    }
    std::printf("| %s | %.0f | %.0f | %+.1f%% |\n", r.what, fps, fps / 4,
                baseline > 0 ? 100.0 * (1.0 - fps / baseline) : 0.0);
  }
  // Instances on threads: each thread runs its own raw core (its own private .so copy); with
  // no shared state, frames per CPU-second per thread should match the single-thread baseline.
  constexpr int kThreads = 2;
  std::vector<Runner> threaded;
  for (int t = 0; t < kThreads; ++t) threaded.push_back({"thread", RawCore(true)});
  std::vector<std::thread> threads;
  for (Runner& r : threaded) {
    threads.emplace_back([&r, seconds] {
      if (!r.step) {
        r.failed = true;
        return;
      }
      const double start = ThreadCpuSeconds();
      while (ThreadCpuSeconds() - start < seconds) {
        for (int i = 0; i < 16; ++i) r.frames += r.step();
      }
      r.cpu_seconds = ThreadCpuSeconds() - start;
    });
  }
  for (std::thread& t : threads) t.join();
  std::printf("| %d raw cores on %d threads, mean per thread |", kThreads, kThreads);
  double sum = 0.0;
  for (const Runner& r : threaded) sum += r.FramesPerSecond();
  if (sum < 0) {
    ++failures;
    std::printf(" - | - | - |\n");
  } else {
    const double fps = sum / kThreads;
    std::printf(" %.0f | %.0f | %+.1f%% |\n", fps, fps / 4,
                baseline > 0 ? 100.0 * (1.0 - fps / baseline) : 0.0);
  }
  std::fflush(stdout);
  return failures;
}

}  // namespace dreamfleet::envs
