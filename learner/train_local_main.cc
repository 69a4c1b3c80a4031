// dreamfleet-train-local: DreamerV3 in one process — K native envs (actor/envs VectorEnv), an
// in-memory SequenceReplay and the learner — for quick experiments and the learning test.
// Loop: policy acts on the K envs -> steps go to replay -> every env step earns train_ratio
// replayed steps, spent as B x T updates -> periodic progress lines (and checkpoints).
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <iostream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "actor/envs/registry.h"
#include "actor/envs/vector_env.h"
#include "learner/agent_config.h"
#include "learner/dreamer_agent.h"
#include "learner/policy.h"
#include "learner/sequence_replay.h"
#include "services/thread_env.h"

namespace dl = dreamfleet::learner;
namespace da = dreamfleet::actor;

namespace {

constexpr char kUsage[] = R"(dreamfleet-train-local: DreamerV3 on one machine, one process.

  --env=NAME            registry env name (default grid_empty_5x5); --env=list shows them
  --preset=NAME         model size: debug, 1m, 12m, 25m, 50m, ... (default 1m)
  --steps=N             env steps to run (default 100000)
  --train-ratio=R       replayed steps per env step (default 64)
  --envs=K              parallel envs (default 4)
  --image-size=N        env observations are N x N (default 64; 32 is 4x cheaper on CPU)
  --view=V              gridworlds: full (image), egocentric (MiniGrid's 7x7 view) or symbolic
                        (one-hot cells as a vector, no image); default full
  --batch=B --length=T  batch of B sequences of T steps (default 16 x 64)
  --seed=S              seed of envs, weights and sampling (default 0)
  --threads=N           LibTorch CPU threads (default: LibTorch's choice)
  --until-success=F     stop once the success rate of the last 50 episodes reaches F (e.g. 0.9)
  --log-every=N         progress line every N env steps (default 1000)
  --checkpoint-dir=DIR  resume from and save checkpoints to DIR (default: none)
  --save-every=N        checkpoint every N updates (default 1000)
  --lr=X                learning rate (default 4e-5, the official value)
  --warmup=N            LaProp linear warmup in updates (default 1000, the official value)
  --agent=KEY=VALUE     set one agent config field (as in a checkpoint's config), e.g.
                        --agent=scale_rec=10; may be repeated
  --help
)";

struct Flags {
  std::string env = "grid_empty_5x5";
  std::string preset = "1m";
  int64_t steps = 100000;
  double train_ratio = 64;
  int envs = 4;
  int image_size = 64;
  std::string view = "full";
  int batch = 16;
  int length = 64;
  uint64_t seed = 0;
  int threads = 0;
  double until_success = 0;
  int64_t log_every = 1000;
  std::string checkpoint_dir;
  int64_t save_every = 1000;
  double lr = 4e-5;
  int warmup = 1000;
  std::vector<std::string> agent_sets;
};

bool ParseFlags(int argc, char** argv, Flags* f) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      std::exit(0);
    }
    auto eq = arg.find('=');
    if (arg.rfind("--", 0) != 0 || eq == std::string::npos) {
      std::cerr << "flag \"" << arg << "\" is not of the form --name=value\n" << kUsage;
      return false;
    }
    std::string key = arg.substr(2, eq - 2), v = arg.substr(eq + 1);
    bool ok = true;
    if (key == "env") f->env = v;
    else if (key == "preset") f->preset = v;
    else if (key == "steps") ok = absl::SimpleAtoi(v, &f->steps);
    else if (key == "train-ratio") ok = absl::SimpleAtod(v, &f->train_ratio);
    else if (key == "envs") ok = absl::SimpleAtoi(v, &f->envs);
    else if (key == "image-size") ok = absl::SimpleAtoi(v, &f->image_size);
    else if (key == "view") f->view = v;
    else if (key == "batch") ok = absl::SimpleAtoi(v, &f->batch);
    else if (key == "length") ok = absl::SimpleAtoi(v, &f->length);
    else if (key == "seed") ok = absl::SimpleAtoi(v, &f->seed);
    else if (key == "threads") ok = absl::SimpleAtoi(v, &f->threads);
    else if (key == "until-success") ok = absl::SimpleAtod(v, &f->until_success);
    else if (key == "log-every") ok = absl::SimpleAtoi(v, &f->log_every);
    else if (key == "checkpoint-dir") f->checkpoint_dir = v;
    else if (key == "save-every") ok = absl::SimpleAtoi(v, &f->save_every);
    else if (key == "lr") ok = absl::SimpleAtod(v, &f->lr);
    else if (key == "warmup") ok = absl::SimpleAtoi(v, &f->warmup);
    else if (key == "agent") f->agent_sets.push_back(v);
    else {
      std::cerr << "unknown flag --" << key << "\n" << kUsage;
      return false;
    }
    if (!ok) {
      std::cerr << "bad value \"" << v << "\" for --" << key << "\n";
      return false;
    }
  }
  if (f->envs < 1 || f->batch < 1 || f->length < 2 || f->train_ratio < 0 || f->log_every < 1) {
    std::cerr << "need --envs >= 1, --batch >= 1, --length >= 2, --train-ratio >= 0, "
                 "--log-every >= 1\n";
    return false;
  }
  return true;
}

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

int main(int argc, char** argv) {
  dreamfleet::services::EnsureThreadEnvironment(argc, argv);
  Flags f;
  if (!ParseFlags(argc, argv, &f)) return 2;
  if (f.env == "list") {
    for (const auto& [name, about] : da::ListEnvironments()) {
      std::printf("%-28s %s\n", name.c_str(), about.c_str());
    }
    return 0;
  }

  da::EnvOptions env_options;
  env_options.name = f.env;
  env_options.base_seed = f.seed;
  env_options.image_size = f.image_size;
  env_options.view = f.view;
  auto envs_or = da::VectorEnv::Create(env_options, f.envs);
  if (!envs_or.ok()) {
    std::cerr << "cannot create env " << f.env << ": " << envs_or.status() << "\n";
    return 1;
  }
  auto& envs = **envs_or;
  const auto& spec = envs.spec();

  dl::AgentConfig config;
  if (auto s = dl::ApplyPreset(f.preset, &config); !s.ok()) {
    std::cerr << s << "\n";
    return 2;
  }
  dl::ApplyEnvSpec(spec, &config);
  config.batch_size = f.batch;
  config.batch_length = f.length;
  config.seed = f.seed;
  config.threads = f.threads;
  config.lr = static_cast<float>(f.lr);
  config.warmup = f.warmup;
  for (const std::string& assignment : f.agent_sets) {
    const auto eq = assignment.find('=');
    absl::Status s = eq == std::string::npos
                         ? absl::InvalidArgumentError(absl::StrCat(
                               "--agent=", assignment, " is not of the form KEY=VALUE"))
                         : config.Set(assignment.substr(0, eq), assignment.substr(eq + 1));
    if (!s.ok()) {
      std::cerr << s << "\n";
      return 2;
    }
  }
  auto agent_or = dl::DreamerAgent::Create(config);
  if (!agent_or.ok()) {
    std::cerr << agent_or.status() << "\n";
    return 1;
  }
  auto& agent = **agent_or;
  int64_t env_steps = 0;
  if (!f.checkpoint_dir.empty()) {
    auto s = agent.Restore(f.checkpoint_dir);
    if (s.ok()) {
      env_steps = agent.counters()["env_steps"];
      std::printf("resumed from %s at update %lld, env step %lld (replay starts empty)\n",
                  f.checkpoint_dir.c_str(), static_cast<long long>(agent.updates()),
                  static_cast<long long>(env_steps));
    } else if (!absl::IsNotFound(s)) {
      std::cerr << s << "\n";
      return 1;
    }
  }

  const int64_t capacity = std::max<int64_t>(f.steps / f.envs + f.length, 4 * f.length);
  dl::SequenceReplay replay(config, f.envs, std::min<int64_t>(capacity, 250000), f.seed + 17);
  auto policy = agent.policy();
  auto state = policy->Initial(f.envs);
  auto gen = at::detail::createCPUGenerator(f.seed + 23);
  const int64_t replayed_per_update = static_cast<int64_t>(f.batch) * f.length;
  const int64_t train_fill = std::max<int64_t>(replayed_per_update, 1024);

  std::printf("env=%s (image %dx%dx%d, vector %d, %d actions) preset=%s envs=%d batch=%dx%d "
              "train_ratio=%g torch_threads=%d\n",
              f.env.c_str(), spec.image_height, spec.image_width, spec.image_channels,
              spec.vector_size, spec.num_actions, f.preset.c_str(), f.envs, f.batch, f.length,
              f.train_ratio, at::get_num_threads());
  std::fflush(stdout);

  if (auto s = envs.Reset(); !s.ok()) {
    std::cerr << s << "\n";
    return 1;
  }
  std::deque<std::pair<double, bool>> recent;  // (return, success) of the last 50 episodes
  int64_t episodes = 0, run_steps = 0, updates_at_log = agent.updates();
  double credit = 0, start = Now(), last_log = start;
  std::vector<int> actions(f.envs);
  std::map<std::string, double> last_losses;
  bool done = false;
  const int64_t image_bytes = spec.image_bytes();

  while (!done && env_steps < f.steps) {
    // Act on the current observations.
    const dl::Observation obs =
        dl::WrapEnvObservations(spec, f.envs, envs.image(), envs.vector(), envs.text());
    auto is_first = torch::from_blob(const_cast<uint8_t*>(envs.is_first()), {f.envs},
                                     torch::kUInt8).to(torch::kBool);
    auto action = policy->Act(obs, is_first, &state, gen);
    auto* a = action.data_ptr<int64_t>();
    for (int i = 0; i < f.envs; ++i) {
      actions[i] = static_cast<int>(a[i]);
      dl::ReplayStep step;
      if (image_bytes > 0) step.image = envs.image() + i * image_bytes;
      if (spec.vector_size > 0) step.vector = envs.vector() + i * spec.vector_size;
      if (spec.text_length > 0) step.text = envs.text() + i * spec.text_length;
      step.action = actions[i];
      step.reward = envs.reward()[i];
      step.is_first = envs.is_first()[i];
      step.is_last = envs.is_last()[i];
      step.is_terminal = envs.is_terminal()[i];
      replay.Add(i, step);
    }
    if (auto s = envs.Step(actions); !s.ok()) {
      std::cerr << "env step failed: " << s << "\n";
      return 1;
    }
    env_steps += f.envs;
    run_steps += f.envs;
    for (const auto& ep : envs.finished_episodes()) {
      ++episodes;
      recent.emplace_back(ep.episode_return, ep.success);
      if (recent.size() > 50) recent.pop_front();
    }

    // Train: every env step earns train_ratio replayed steps.
    if (replay.size() >= train_fill && replay.CanSample(f.length)) {
      credit += f.train_ratio * f.envs;
      while (credit >= replayed_per_update) {
        credit -= replayed_per_update;
        auto m = agent.Train(replay.Sample(f.batch, f.length));
        if (!m.ok()) {
          std::cerr << "update failed: " << m.status() << "\n";
          return 1;
        }
        if (!m->skipped) last_losses = m->losses;
        if (!f.checkpoint_dir.empty() && agent.updates() % f.save_every == 0) {
          agent.counters()["env_steps"] = env_steps;
          if (auto s = agent.Save(f.checkpoint_dir); !s.ok()) std::cerr << s << "\n";
        }
      }
    }

    double success = 0, ret = 0;
    for (const auto& [r, s] : recent) {
      ret += r;
      success += s;
    }
    if (!recent.empty()) {
      ret /= recent.size();
      success /= recent.size();
    }
    if (f.until_success > 0 && recent.size() >= 50 && success >= f.until_success) done = true;
    if (run_steps % f.log_every < static_cast<int64_t>(f.envs) || done) {
      const double now = Now();
      std::printf(
          "env_steps=%lld updates=%lld episodes=%lld return=%.3f success=%.2f updates/s=%.2f "
          "wall=%.0fs rec=%.2f rew=%.3f con=%.3f dyn=%.2f policy=%.3f value=%.3f "
          "skipped=%lld\n",
          static_cast<long long>(env_steps), static_cast<long long>(agent.updates()),
          static_cast<long long>(episodes), ret, success,
          (agent.updates() - updates_at_log) / std::max(1e-9, now - last_log), now - start,
          last_losses["image"] + last_losses["vector"],  // decoder loss, whichever observation
          last_losses["rew"], last_losses["con"], last_losses["dyn"], last_losses["policy"],
          last_losses["value"],
          static_cast<long long>(agent.skipped_updates()));
      std::fflush(stdout);
      last_log = now;
      updates_at_log = agent.updates();
    }
  }
  if (!f.checkpoint_dir.empty()) {
    agent.counters()["env_steps"] = env_steps;
    if (auto s = agent.Save(f.checkpoint_dir); !s.ok() && !absl::IsAlreadyExists(s)) {
      std::cerr << s << "\n";
    }
  }
  std::printf("%s after %lld env steps, %lld updates, %.0f s\n",
              done ? "reached the success target" : "finished", static_cast<long long>(env_steps),
              static_cast<long long>(agent.updates()), Now() - start);
  return 0;
}
