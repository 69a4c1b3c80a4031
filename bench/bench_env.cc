// bench_env: environment steps per second on one core, for each env in kBenchEnvs (or --envs).
// Three figures per env: one env rendering its image observation, one env stepping its state only
// (StepBuffer.image == nullptr; native envs skip rendering), and a VectorEnv of K envs (all
// rendering into one batch; --threads worker threads, default 1). Actions are uniform random from
// a fixed seed; resets are included.
// Prints a markdown table for BENCHMARKS.md. `bench_env --help` lists the flags.
//
// To bench another env, add a row to kBenchEnvs (or pass --envs); emulators set frames_per_step
// (their action repeat) so the table also shows emulated frames per second.
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "envs/registry.h"
#include "envs/rng.h"
#include "envs/vector_env.h"
#include "services/command_line.h"
#ifdef DREAMFLEET_BENCH_LIBRETRO
#include "bench/bench_libretro.h"
#endif

namespace dreamfleet::envs {
namespace {

struct BenchEnv {
  std::string name;
  bool state_only;      // the env supports StepBuffer.image == nullptr
  int frames_per_step;  // emulator frames per agent step (0: not an emulator)
};

// The default set; emulator envs (e.g. nes_homebrew at action repeat 4) go here too.
const BenchEnv kBenchEnvs[] = {
    {"grid_empty_8x8", true, 0},      {"grid_fourrooms", true, 0},
    {"grid_doorkey_8x8", true, 0},    {"minatar_breakout", true, 0},
    {"minatar_freeway", true, 0},     {"minatar_asterix", true, 0},
    {"minatar_seaquest", true, 0},    {"minatar_space_invaders", true, 0},
    {"nes_homebrew", true, 4},
};

struct Flags {
  std::string envs;  // comma-separated; "" = kBenchEnvs
  double seconds = 1.0;
  int64_t k = 8;
  int64_t threads = 1;
  int64_t image_size = 64;
  int64_t action_repeat = 4;
  std::string rom;
  std::string core;
};

using Clock = std::chrono::steady_clock;

// Runs `step` in batches of 64 until `seconds` pass; returns steps per second.
template <typename StepFn>
double Measure(double seconds, int steps_per_call, StepFn step) {
  const auto start = Clock::now();
  int64_t steps = 0;
  double elapsed = 0.0;
  do {
    for (int i = 0; i < 64; ++i) {
      if (!step()) return -1.0;
      steps += steps_per_call;
    }
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  } while (elapsed < seconds);
  return steps / elapsed;
}

// One env stepping with random actions; image == nullptr means state only.
double BenchSingle(const EnvOptions& options, double seconds, bool render) {
  auto env = MakeEnvironment(options);
  if (!env.ok()) {
    std::cerr << env.status() << "\n";
    return -1.0;
  }
  const EnvSpec& spec = (*env)->spec();
  std::vector<uint8_t> image(spec.image_bytes());
  std::vector<float> vec(spec.vector_size);
  std::vector<int32_t> text(spec.text_length);
  StepBuffer b;
  b.image = render ? image.data() : nullptr;
  b.vector = spec.vector_size ? vec.data() : nullptr;
  b.text = spec.text_length ? text.data() : nullptr;
  Rng rng(1), seeds(EnvSeed(options.base_seed, options.env_index));
  if (!(*env)->Reset(seeds.Next(), &b).ok()) return -1.0;
  return Measure(seconds, 1, [&] {
    absl::Status s = b.is_last ? (*env)->Reset(seeds.Next(), &b)
                               : (*env)->Step(rng.UniformInt(0, spec.num_actions - 1), &b);
    if (!s.ok()) std::cerr << options.name << ": " << s << "\n";
    return s.ok();
  });
}

double BenchVector(const EnvOptions& options, int k, int threads, double seconds) {
  auto v = VectorEnv::Create(options, k, threads);
  if (!v.ok()) {
    std::cerr << v.status() << "\n";
    return -1.0;
  }
  Rng rng(2);
  std::vector<int> actions(k);
  const int n = (*v)->spec().num_actions;
  return Measure(seconds, k, [&] {
    for (int& a : actions) a = rng.UniformInt(0, n - 1);
    absl::Status s = (*v)->Step(actions);
    if (!s.ok()) std::cerr << options.name << ": " << s << "\n";
    return s.ok();
  });
}

std::string Format(double steps_per_second) {
  if (steps_per_second < 0) return "-";
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.0f", steps_per_second);
  return buf;
}

int Main(int argc, char** argv) {
  Flags flags;
  services::CommandLine command_line(
      "bench_env [flags]",
      "Measures single-thread env steps/s: rendering, state only, and a VectorEnv of K envs. "
      "Prints a Markdown table for BENCHMARKS.md.");
  command_line.AddString("envs", &flags.envs,
                         "comma-separated env names (default: the kBenchEnvs table in "
                         "bench/bench_env.cc)");
  command_line.AddDouble("seconds", &flags.seconds, "measuring time per figure");
  command_line.AddInt("k", &flags.k, "envs in the VectorEnv");
  command_line.AddInt("threads", &flags.threads, "VectorEnv worker threads");
  command_line.AddInt("image_size", &flags.image_size, "observations are N x N");
  command_line.AddInt("action_repeat", &flags.action_repeat, "emulator frames per agent step");
  command_line.AddString("rom", &flags.rom, "emulator ROM (commercial games)");
  command_line.AddString("core", &flags.core, "libretro core .so (\"\" = default)");
  int exit_code = 0;
  if (!services::ParseCommandLineOrExit(command_line, argc, argv, &exit_code)) return exit_code;
  if (flags.seconds <= 0 || flags.k <= 0 || flags.threads <= 0) {
    std::cerr << "--seconds, --k and --threads must be > 0\n";
    return 2;
  }
  std::vector<BenchEnv> envs;
  const std::vector<std::string> names = absl::StrSplit(flags.envs, ',', absl::SkipEmpty());
  if (names.empty()) {
    envs.assign(std::begin(kBenchEnvs), std::end(kBenchEnvs));
  } else {
    for (const std::string& name : names) {
      BenchEnv e{name, false, 0};  // envs outside the table: no state-only column
      for (const BenchEnv& known : kBenchEnvs) {
        if (name == known.name) e = known;
      }
      envs.push_back(e);
    }
  }

  std::printf(
      "| env | steps/s, %lldx%lld render | steps/s, state only | VectorEnv K=%lld "
      "(%lld thread%s) env steps/s | emulated frames/s |\n|---|---:|---:|---:|---:|\n",
      static_cast<long long>(flags.image_size), static_cast<long long>(flags.image_size),
      static_cast<long long>(flags.k), static_cast<long long>(flags.threads),
      flags.threads == 1 ? "" : "s");
  int failures = 0;
  for (const BenchEnv& e : envs) {
    EnvOptions options;
    options.name = e.name;
    options.base_seed = 1;
    options.image_size = static_cast<int>(flags.image_size);
    options.action_repeat = static_cast<int>(flags.action_repeat);
    options.rom = flags.rom;
    options.core = flags.core;
    const double render = BenchSingle(options, flags.seconds, true);
    const double state = e.state_only ? BenchSingle(options, flags.seconds, false) : -1.0;
    const double vec = BenchVector(options, static_cast<int>(flags.k),
                                   static_cast<int>(flags.threads), flags.seconds);
    failures += render < 0 || vec < 0;
    const std::string frames =
        e.frames_per_step > 0 && render >= 0 ? Format(render * e.frames_per_step) : "-";
    std::printf("| %s | %s | %s | %s | %s |\n", e.name.c_str(), Format(render).c_str(),
                Format(state).c_str(), Format(vec).c_str(), frames.c_str());
    std::fflush(stdout);
  }
#ifdef DREAMFLEET_BENCH_LIBRETRO
  bool homebrew = names.empty();
  for (const BenchEnv& e : envs) homebrew |= e.name == "nes_homebrew";
  if (homebrew) failures += PrintLibretroBench(flags.seconds);  // raw core vs adapter
#endif
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace dreamfleet::envs

int main(int argc, char** argv) { return dreamfleet::envs::Main(argc, argv); }
