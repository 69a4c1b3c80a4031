// bench_env: environment steps per second on one core, for each env in kBenchEnvs (or --envs).
// Three figures per env: one env rendering its image observation, one env stepping its state only
// (StepBuffer.image == nullptr; native envs skip rendering), and a VectorEnv of K envs (all
// rendering into one batch; --threads worker threads, default 1). Actions are uniform random from
// a fixed seed; resets are included.
// Prints a markdown table for BENCHMARKS.md.
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
#include "actor/envs/registry.h"
#include "actor/envs/rng.h"
#include "actor/envs/vector_env.h"
#ifdef DREAMFLEET_BENCH_LIBRETRO
#include "bench/bench_libretro.h"
#endif

namespace dreamfleet::actor {
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
  std::vector<std::string> envs;
  double seconds = 1.0;
  int k = 8;
  int threads = 1;
  int image_size = 64;
  int action_repeat = 4;
  std::string rom;
  std::string core;
};

constexpr char kUsage[] =
    "bench_env [--envs=a,b,...] [--seconds=1] [--k=8] [--threads=1] [--image_size=64]\n"
    "          [--action_repeat=4] [--rom=PATH] [--core=PATH]\n"
    "Measures single-thread env steps/s: rendering, state only, and VectorEnv with K envs.\n"
    "Default envs: the kBenchEnvs table in bench/bench_env.cc.\n";

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

bool ParseFlag(const std::string& arg, const char* name, std::string* value) {
  const std::string prefix = std::string("--") + name + "=";
  if (arg.rfind(prefix, 0) != 0) return false;
  *value = arg.substr(prefix.size());
  return true;
}

int Main(int argc, char** argv) {
  Flags flags;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    std::string v;
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    } else if (ParseFlag(arg, "envs", &v)) {
      flags.envs = absl::StrSplit(v, ',', absl::SkipEmpty());
    } else if (ParseFlag(arg, "seconds", &v)) {
      flags.seconds = std::atof(v.c_str());
    } else if (ParseFlag(arg, "k", &v)) {
      flags.k = std::atoi(v.c_str());
    } else if (ParseFlag(arg, "threads", &v)) {
      flags.threads = std::atoi(v.c_str());
    } else if (ParseFlag(arg, "image_size", &v)) {
      flags.image_size = std::atoi(v.c_str());
    } else if (ParseFlag(arg, "action_repeat", &v)) {
      flags.action_repeat = std::atoi(v.c_str());
    } else if (ParseFlag(arg, "rom", &v)) {
      flags.rom = v;
    } else if (ParseFlag(arg, "core", &v)) {
      flags.core = v;
    } else {
      std::cerr << "unknown flag " << arg << "\n" << kUsage;
      return 2;
    }
  }
  if (flags.seconds <= 0 || flags.k <= 0 || flags.threads <= 0) {
    std::cerr << "--seconds, --k and --threads must be > 0\n";
    return 2;
  }
  std::vector<BenchEnv> envs;
  if (flags.envs.empty()) {
    envs.assign(std::begin(kBenchEnvs), std::end(kBenchEnvs));
  } else {
    for (const std::string& name : flags.envs) {
      BenchEnv e{name, false, 0};  // envs outside the table: no state-only column
      for (const BenchEnv& known : kBenchEnvs) {
        if (name == known.name) e = known;
      }
      envs.push_back(e);
    }
  }

  std::printf("| env | steps/s, %dx%d render | steps/s, state only | VectorEnv K=%d (%d thread%s) "
              "env steps/s | emulated frames/s |\n|---|---:|---:|---:|---:|\n",
              flags.image_size, flags.image_size, flags.k, flags.threads,
              flags.threads == 1 ? "" : "s");
  int failures = 0;
  for (const BenchEnv& e : envs) {
    EnvOptions options;
    options.name = e.name;
    options.base_seed = 1;
    options.image_size = flags.image_size;
    options.action_repeat = flags.action_repeat;
    options.rom = flags.rom;
    options.core = flags.core;
    const double render = BenchSingle(options, flags.seconds, true);
    const double state = e.state_only ? BenchSingle(options, flags.seconds, false) : -1.0;
    const double vec = BenchVector(options, flags.k, flags.threads, flags.seconds);
    failures += render < 0 || vec < 0;
    const std::string frames =
        e.frames_per_step > 0 && render >= 0 ? Format(render * e.frames_per_step) : "-";
    std::printf("| %s | %s | %s | %s | %s |\n", e.name.c_str(), Format(render).c_str(),
                Format(state).c_str(), Format(vec).c_str(), frames.c_str());
    std::fflush(stdout);
  }
#ifdef DREAMFLEET_BENCH_LIBRETRO
  bool homebrew = flags.envs.empty();
  for (const BenchEnv& e : envs) homebrew |= e.name == "nes_homebrew";
  if (homebrew) failures += PrintLibretroBench(flags.seconds);  // raw core vs adapter
#endif
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace dreamfleet::actor

int main(int argc, char** argv) { return dreamfleet::actor::Main(argc, argv); }
