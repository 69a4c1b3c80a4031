// bench_actor: what an actor process's stepping loop achieves on one core, with batched CPU policy
// inference, against the raw VectorEnv speed of the same env (the goal: >= 90%). For each
// env and preset: K envs step with uniform random actions (raw), then with a PolicyRunner holding
// randomly initialised weights of that preset (weights arrive as a broadcast WeightsVersion, as in
// the real actor). Replay streaming is not included (see bench_replay for its cost).
//
// The two are measured alternately, --rounds times each after a short unmeasured warm-up, and the
// medians are reported: single back-to-back measurements of the emulator drifted by up to 30%
// between runs on this machine, more than the policy's cost.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "actor/policy_runner.h"
#include "broadcast/weights.h"
#include "dreamer/agent_config.h"
#include "dreamer/policy.h"
#include "dreamer/tensor_convert.h"
#include "envs/registry.h"
#include "envs/vector_env.h"
#include "services/command_line.h"
#include "services/thread_env.h"

namespace dreamfleet {
namespace {

using Clock = std::chrono::steady_clock;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

double Seconds(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Env steps per second over about `seconds` (ticks of K envs).
double Measure(envs::VectorEnv& envs, actor::PolicyRunner* runner, double seconds) {
  std::mt19937 rng(1);
  std::uniform_int_distribution<int> random_action(0, envs.spec().num_actions - 1);
  std::vector<int> actions(envs.num_envs());
  (void)envs.Reset();
  int64_t steps = 0;
  const auto start = Clock::now();
  while (Seconds(start) < seconds) {
    if (runner != nullptr) {
      if (!runner->Act(envs, &actions).ok()) return -1;
    } else {
      for (int& a : actions) a = random_action(rng);
    }
    if (!envs.Step(actions).ok()) return -1;
    steps += envs.num_envs();
  }
  return steps / Seconds(start);
}

int Run(int argc, char** argv) {
  std::string envs_flag = "grid_empty_5x5,minatar_breakout,nes_homebrew";
  std::string presets_flag = "debug,1m";
  std::string view_flag = "full";
  int64_t num_envs = 8;
  double seconds = 5;
  int64_t threads = 1;
  int64_t rounds = 3;
  services::CommandLine command_line(
      "bench_actor [--envs a,b] [--presets debug,1m] [--view full] [--k 8] [--seconds 5] "
      "[--threads 1] [--rounds 3]",
      "Actor stepping speed with batched policy inference vs the raw env (markdown table).");
  command_line.AddString("envs", &envs_flag, "Comma-separated env names.");
  command_line.AddString("presets", &presets_flag, "Comma-separated model presets.");
  command_line.AddString("view", &view_flag,
                         "Gridworld view: full, egocentric or symbolic (no image).");
  command_line.AddInt("k", &num_envs, "Envs per actor (one batch).");
  command_line.AddDouble("seconds", &seconds, "Measuring time of each raw or policy round.");
  command_line.AddInt("rounds", &rounds, "Alternating raw / policy rounds per row (medians).");
  command_line.AddInt("threads", &threads, "LibTorch intra-op threads for inference.");
  int exit_code = 0;
  if (!services::ParseCommandLineOrExit(command_line, argc, argv, &exit_code)) return exit_code;
  if (rounds < 1 || num_envs < 1 || !(seconds > 0)) {
    std::cerr << "--rounds and --k must be >= 1 and --seconds > 0\n";
    return 2;
  }

  std::printf("| env | preset | K | raw env steps/s | with policy steps/s | ratio |\n");
  std::printf("|---|---|---:|---:|---:|---:|\n");
  for (const std::string& env_name :
       std::vector<std::string>(absl::StrSplit(envs_flag, ',', absl::SkipEmpty()))) {
    envs::EnvOptions options;
    options.name = env_name;
    options.view = view_flag;
    auto envs = envs::VectorEnv::Create(options, static_cast<int>(num_envs));
    if (!envs.ok()) {
      std::cerr << env_name << ": " << envs.status() << "\n";
      continue;
    }
    for (const std::string& preset :
         std::vector<std::string>(absl::StrSplit(presets_flag, ',', absl::SkipEmpty()))) {
      const envs::EnvSpec& spec = (*envs)->spec();
      dreamer::AgentConfig config;
      if (!dreamer::ApplyPreset(preset, &config).ok()) return 2;
      dreamer::ApplyEnvSpec(spec, &config);
      dreamer::Policy policy(config);
      auto tensors = dreamer::ToNamedTensors(dreamer::ExportPolicyWeights(policy));
      auto runner = actor::PolicyRunner::Create(static_cast<int>(num_envs),
                                                static_cast<int>(threads), 1);
      if (!tensors.ok() || !runner.ok() ||
          !(*runner)
               ->Load(*broadcast::NewWeightsVersion(1, config.Serialize(), *std::move(tensors)))
               .ok()) {
        std::cerr << "cannot build the " << preset << " policy\n";
        return 1;
      }
      const double warmup = std::min(1.0, seconds / 4);
      if (Measure(**envs, nullptr, warmup) < 0 || Measure(**envs, runner->get(), warmup) < 0) {
        std::cerr << env_name << ": stepping failed\n";
        return 1;
      }
      std::vector<double> raws, policies;
      for (int64_t r = 0; r < rounds; ++r) {
        raws.push_back(Measure(**envs, nullptr, seconds));
        policies.push_back(Measure(**envs, runner->get(), seconds));
        if (raws.back() < 0 || policies.back() < 0) {
          std::cerr << env_name << ": stepping failed\n";
          return 1;
        }
      }
      const double raw = Median(raws), with_policy = Median(policies);
      for (int64_t r = 0; r < rounds; ++r) {
        std::fprintf(stderr, "  %s %s round %lld: raw %.0f, with policy %.0f steps/s\n",
                     env_name.c_str(), preset.c_str(), static_cast<long long>(r + 1), raws[r],
                     policies[r]);
      }
      std::printf("| %s | %s | %lld | %.0f | %.0f | %.1f%% |\n", env_name.c_str(), preset.c_str(),
                  static_cast<long long>(num_envs), raw, with_policy, 100 * with_policy / raw);
      std::fflush(stdout);
    }
  }
  return 0;
}

}  // namespace
}  // namespace dreamfleet

int main(int argc, char** argv) {
  dreamfleet::services::EnsureThreadEnvironment(argc, argv);
  return dreamfleet::Run(argc, argv);
}
