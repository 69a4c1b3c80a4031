// bench_learner: DreamerV3 update speed of dreamfleet_learner on random 64x64 image batches (or,
// with --vector=N, on N-float vector observations such as the symbolic MinAtar grids).
// Prints updates/s and ms per update split into the world-model part (forward + backward) and the
// actor-critic part (imagination, actor/critic/replay-value losses, backward, LaProp step), per
// preset; and, with --decoder, the image decoder alone for both upsampling variants.
//
//   bench_learner [--presets=debug,1m,12m] [--batch=16] [--length=64] [--updates=5]
//                 [--warmup=1] [--threads=0] [--cnn=strided|official] [--decoder] [--profile=N]
//                 [--vector=N] [--grid-channels=C] [--actions=4] [--imagine-starts=N]
//                 [--actor-dynamics=RHO] [--disagreement=K] [--overlap-world-model]
//
// --profile=N records the timed updates with LibTorch's profiler and prints the N operators with
// the most self time (time in the operator minus the operators it called), to see what to optimise.
// The window also holds the making of the random batches (aten::random_ on the image tensor).
// A second table per update phase (world model loss and backward, imagination, actor-critic loss
// and backward, optimizer; the agent's "phase: ..." scopes) says where each phase's time goes.
// The profiler costs ~10-20 us per operator call on this class of machine, so small operators
// (reshape, select, as_strided) look far bigger than they are: with the 1m preset a profiled
// update takes about twice the unprofiled one. Confirm a profile's lead with unprofiled timings
// (--warmup of 5 or more: the first updates run slower while the allocator warms up).
#include <time.h>
#include <torch/csrc/autograd/profiler_legacy.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "dreamer/agent_config.h"
#include "dreamer/batch.h"
#include "dreamer/compute_threads.h"
#include "dreamer/models/image_decoder.h"
#include "dreamer/module_options.h"
#include "learner/dreamer_agent.h"
#include "services/command_line.h"
#include "services/thread_env.h"

namespace dl = dreamfleet::learner;
namespace dd = dreamfleet::dreamer;

namespace {

struct Flags {
  std::vector<std::string> presets;
  std::string preset_list = "debug,1m,12m";
  int64_t batch = 16;
  int64_t length = 64;
  int64_t updates = 5;
  int64_t warmup = 1;
  int64_t threads = 0;
  std::string cnn = "strided";
  std::string upsample = "transpose";
  bool decoder = false;
  bool channels_last = true;
  int64_t profile = 0;  // top operators to print; 0 = no profiling
  int64_t vector = 0;   // > 0: a vector observation of this size instead of the image
  int64_t actions = 4;
  int64_t imagine_starts = 0;  // learner.imagination_starts; 0 = every posterior state
  double actor_dynamics = 0;   // learner.actor_grad_dynamics; 0 = REINFORCE only
  int64_t grid_channels = 0;   // > 0: the vector is a square grid of cells (vector_encoder grid)
  int64_t disagreement = 0;    // > 0: learner.disagreement_models (scale 1); 0 = off
  bool overlap = false;        // learner.overlap_world_model
};

// CPU time of this process (all threads): much less distorted by other load than wall time.
double CpuNow() {
  timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// Parses the flags into *f; false (with *exit_code) when the program should stop.
bool ParseFlags(int argc, char** argv, Flags* f, int* exit_code) {
  dreamfleet::services::CommandLine command_line(
      "bench_learner [flags]",
      "DreamerV3 update time per model size preset on random batches (world model and "
      "actor-critic split, wall and CPU time).");
  command_line.AddString("presets", &f->preset_list,
                         "comma-separated presets: debug, 1m, 12m, ..., or ref (the reference "
                         "implementation's small model)");
  command_line.AddInt("batch", &f->batch, "B sequences per batch");
  command_line.AddInt("length", &f->length, "T steps per sequence");
  command_line.AddInt("updates", &f->updates, "measured updates per preset");
  command_line.AddInt("warmup", &f->warmup, "unmeasured updates first");
  command_line.AddInt("threads", &f->threads, "LibTorch threads (0: LibTorch's choice)");
  command_line.AddString("cnn", &f->cnn, "strided | official");
  command_line.AddString("upsample", &f->upsample, "upsample | transpose");
  command_line.AddBool("channels-last", &f->channels_last, "channels-last image tensors");
  command_line.AddBool("decoder", &f->decoder, "time the image decoder alone");
  command_line.AddInt("profile", &f->profile,
                      "print the top N operators, overall and per update phase (0 = no "
                      "profiling; the profiler's per-call overhead inflates small operators)");
  command_line.AddInt("vector", &f->vector,
                      "observe a vector of this size instead of the 64x64x3 image (0 = image; "
                      "400 = MinAtar's 10x10x4 grid as env.view: symbolic gives it)");
  command_line.AddInt("actions", &f->actions, "discrete actions");
  command_line.AddInt("imagine-starts", &f->imagine_starts,
                      "posterior states imagined from per update (learner.imagination_starts; "
                      "0 = all batch x length)");
  command_line.AddInt("grid-channels", &f->grid_channels,
                      "with --vector: the vector is a square grid of cells of this many channels, "
                      "encoded by the grid encoder (learner.vector_encoder: grid; 4 = MinAtar "
                      "Breakout's 10x10x4 with --vector=400); 0 = the MLP encoder");
  command_line.AddInt("disagreement", &f->disagreement,
                      "exploration ensemble of this many models (learner.disagreement_models, at "
                      "learner.disagreement_scale 1); 0 = off");
  command_line.AddDouble("actor-dynamics", &f->actor_dynamics,
                         "share of the actor's objective differentiated through the imagined "
                         "rollout (learner.actor_grad_dynamics, 0-1; > 0 adds its backward pass)");
  command_line.AddBool("overlap-world-model", &f->overlap,
                       "the world model's backward pass on a second thread beside the "
                       "actor-critic (learner.overlap_world_model)");
  if (!dreamfleet::services::ParseCommandLineOrExit(command_line, argc, argv, exit_code)) {
    return false;
  }
  f->presets = absl::StrSplit(f->preset_list, ',', absl::SkipEmpty());
  if (f->batch < 1 || f->length < 2 || f->updates < 1 || f->warmup < 0 || f->profile < 0 ||
      f->vector < 0 || f->actions < 1 || f->imagine_starts < 0 ||
      f->imagine_starts > f->batch * f->length || f->grid_channels < 0 ||
      (f->grid_channels > 0 && f->vector == 0) || f->disagreement < 0 || f->disagreement == 1 ||
      f->disagreement > 64 || !(f->actor_dynamics >= 0 && f->actor_dynamics <= 1)) {
    std::cerr << "need --batch >= 1, --length >= 2, --updates >= 1, --warmup >= 0, "
                 "--profile >= 0, --vector >= 0, --actions >= 1, --imagine-starts in [0, batch x "
                 "length], --grid-channels >= 0 (and only with --vector), --disagreement 0 or "
                 "2-64, --actor-dynamics in [0, 1]\n";
    *exit_code = 2;
    return false;
  }
  return true;
}

// Forward + backward of the decoder alone on [batch*length] latents, per variant.
void BenchDecoder(const Flags& f) {
  for (const std::string preset : f.presets) {
    dd::AgentConfig c;
    if (!dd::ApplyPreset(preset, &c).ok()) continue;
    for (const std::string mode : {"upsample", "transpose"}) {
      torch::manual_seed(0);
      dd::ImageDecoder dec(dd::ImageDecoderOptions()
                               .feat(c.feat_size())
                               .cnn(dd::CnnOptionsFor(c).mode("strided"))
                               .upsample(mode));
      auto feat = torch::randn({f.batch * f.length, c.feat_size()});
      auto target = torch::rand({f.batch * f.length, 64, 64, 3});
      double total = 0;
      for (int i = 0; i < f.warmup + f.updates; ++i) {
        const double start = Now();
        auto loss = (dec->forward(feat) - target).square().sum({1, 2, 3}).mean();
        loss.backward();
        if (i >= f.warmup) total += Now() - start;
      }
      std::printf("decoder preset=%s upsample=%s rows=%lld fwd+bwd %.1f ms\n", preset.c_str(),
                  mode.c_str(), static_cast<long long>(f.batch * f.length),
                  1e3 * total / f.updates);
    }
  }
}

namespace prof = torch::autograd::profiler;

// Self and total time per operator name from the legacy profiler's push/pop events (per thread,
// properly nested), printed as the `top` operators by self time.
void PrintProfile(const prof::thread_event_lists& lists, int updates, int top) {
  struct Stat {
    double self_us = 0, total_us = 0;
    int64_t calls = 0;
  };
  std::map<std::string, Stat> stats;
  // The same self times by the update phase they ran in (the agent's "phase: ..." scopes).
  std::map<std::string, std::map<std::string, Stat>> by_phase;
  double all_self = 0;
  for (const auto& events : lists) {
    struct Open {
      const prof::LegacyEvent* push;
      double child_us;
    };
    std::vector<Open> stack;
    std::string phase;
    for (const auto& e : events) {
      if (e.kind() == prof::EventKind::PushRange) {
        if (absl::StartsWith(e.name(), dl::kProfilePhasePrefix)) {
          phase = std::string(absl::StripPrefix(e.name(), dl::kProfilePhasePrefix));
        }
        stack.push_back({&e, 0.0});
      } else if (e.kind() == prof::EventKind::PopRange && !stack.empty()) {
        Open open = stack.back();
        stack.pop_back();
        const double total = open.push->cpuElapsedUs(e);
        const std::string name = open.push->name();
        Stat& s = stats[name];
        s.total_us += total;
        s.self_us += total - open.child_us;
        s.calls += 1;
        all_self += total - open.child_us;
        const bool is_phase = absl::StartsWith(name, dl::kProfilePhasePrefix);
        if (!phase.empty()) {
          Stat& p = by_phase[phase][is_phase ? "(phase itself)" : name];
          p.total_us += total;
          p.self_us += total - open.child_us;
          p.calls += 1;
        }
        if (is_phase) phase.clear();
        if (!stack.empty()) stack.back().child_us += total;
      }
    }
  }
  auto self_sum_of = [](const std::map<std::string, Stat>& table) {
    double sum = 0;
    for (const auto& [name, s] : table) sum += s.self_us;
    return sum;
  };
  auto print = [&](const std::map<std::string, Stat>& table, const std::string& title, int rows) {
    const double self_sum = self_sum_of(table);
    std::vector<std::pair<std::string, Stat>> sorted(table.begin(), table.end());
    std::sort(sorted.begin(), sorted.end(),
              [](const auto& a, const auto& b) { return a.second.self_us > b.second.self_us; });
    std::printf("  %-52s %10s %10s %7s %9s\n", title.substr(0, 52).c_str(), "self ms", "total ms",
                "self %", "calls");
    for (int i = 0; i < rows && i < static_cast<int>(sorted.size()); ++i) {
      const auto& [name, s] = sorted[i];
      std::printf("  %-52s %10.1f %10.1f %6.1f%% %9.0f\n", name.substr(0, 52).c_str(),
                  s.self_us / 1e3 / updates, s.total_us / 1e3 / updates,
                  100.0 * s.self_us / std::max(self_sum, 1.0),
                  static_cast<double>(s.calls) / updates);
    }
  };
  print(stats, "operator (per update)", top);
  for (const auto& [phase, table] : by_phase) {
    const double self_sum = self_sum_of(table);
    print(table,
          absl::StrFormat("%s: %.1f ms (%.0f%%)", phase, self_sum / 1e3 / updates,
                          100.0 * self_sum / std::max(all_self, 1.0)),
          std::min(top, 10));
  }
}

}  // namespace

int main(int argc, char** argv) {
  dreamfleet::services::EnsureThreadEnvironment(argc, argv);
  Flags f;
  int exit_code = 0;
  if (!ParseFlags(argc, argv, &f, &exit_code)) return exit_code;
  dd::SetComputeThreads(static_cast<int>(f.threads));
  std::printf(
      "torch threads=%d mkldnn=%d batch=%lldx%lld %s cnn=%s upsample=%s channels_last=%d "
      "actions=%lld imagine_starts=%lld actor_dynamics=%g grid_channels=%lld "
      "disagreement=%lld overlap_world_model=%d\n",
      at::get_num_threads(), static_cast<int>(at::hasMKLDNN()), static_cast<long long>(f.batch),
      static_cast<long long>(f.length),
      f.vector > 0 ? absl::StrCat("vector=", f.vector).c_str() : "image=64x64x3", f.cnn.c_str(),
      f.upsample.c_str(), static_cast<int>(f.channels_last), static_cast<long long>(f.actions),
      static_cast<long long>(f.imagine_starts), f.actor_dynamics,
      static_cast<long long>(f.grid_channels), static_cast<long long>(f.disagreement),
      static_cast<int>(f.overlap));
  if (f.decoder) {
    BenchDecoder(f);
    return 0;
  }
  for (const auto& preset : f.presets) {
    dd::AgentConfig c;
    // "ref": the reference PyTorch implementation's small model (deter 256, 16 classes,
    // units 256, CNN depth 16), for comparison with its ~5 s per 16x64 update on this machine.
    const bool ref = preset == "ref";
    if (auto s = dd::ApplyPreset(ref ? "12m" : preset, &c); !s.ok()) {
      std::cerr << s << "\n";
      return 2;
    }
    if (ref) c.deter = 256;
    c.num_actions = static_cast<int>(f.actions);
    if (f.vector > 0) {
      c.image_channels = 0;
      c.vector_size = static_cast<int>(f.vector);
      if (f.grid_channels > 0) {
        c.vector_grid_channels = static_cast<int>(f.grid_channels);
        c.vector_encoder = "grid";
      }
    }
    if (f.disagreement > 0) {
      c.disag_scale = 1.0f;
      c.disag_models = static_cast<int>(f.disagreement);
    }
    c.batch_size = static_cast<int>(f.batch);
    c.batch_length = static_cast<int>(f.length);
    c.imag_starts = static_cast<int>(f.imagine_starts);
    c.actor_dynamics = static_cast<float>(f.actor_dynamics);
    c.cnn = f.cnn;
    c.decoder_upsample = f.upsample;
    c.channels_last = f.channels_last;
    c.threads = static_cast<int>(f.threads);
    c.overlap_wm = f.overlap;
    auto agent = dl::DreamerAgent::Create(c);
    if (!agent.ok()) {
      std::cerr << agent.status() << "\n";
      return 1;
    }
    int64_t params = 0;
    for (const auto& p : (*agent)->world_model()->parameters()) params += p.numel();
    for (const auto& p : (*agent)->actor_critic()->parameters()) params += p.numel();
    if (auto ensemble = (*agent)->disagreement()) {
      for (const auto& p : ensemble->parameters()) params += p.numel();
    }
    double wm = 0, ac = 0, imagine = 0, total = 0, cpu = 0;
    for (int i = 0; i < f.warmup + f.updates; ++i) {
      if (f.profile > 0 && i == f.warmup) {
        prof::enableProfilerLegacy(
            torch::profiler::impl::ProfilerConfig(torch::profiler::impl::ProfilerState::CPU));
      }
      auto batch = dd::RandomBatch(c, f.batch, f.length, i);
      const double start = Now(), cpu_start = CpuNow();
      auto m = (*agent)->Train(batch);
      const double took = Now() - start, cpu_took = CpuNow() - cpu_start;
      if (!m.ok()) {
        std::cerr << m.status() << "\n";
        return 1;
      }
      if (i >= f.warmup) {
        wm += m->world_model_seconds;
        ac += m->actor_critic_seconds;
        imagine += m->imagination_seconds;
        total += took;
        cpu += cpu_took;
      }
    }
    const double n = f.updates;
    std::printf(
        "preset=%-5s params=%.2fM updates=%lld  %.3f updates/s  %.0f ms/update "
        "(world_model %.0f ms, actor_critic %.0f ms of which imagination %.0f ms; wall)  "
        "cpu %.0f ms/update\n",
        preset.c_str(), params / 1e6, static_cast<long long>(f.updates), n / total, 1e3 * total / n,
        1e3 * wm / n, 1e3 * ac / n, 1e3 * imagine / n, 1e3 * cpu / n);
    if (f.profile > 0) PrintProfile(prof::disableProfilerLegacy(), f.updates, f.profile);
    std::fflush(stdout);
  }
  return 0;
}
