// dreamfleet-train-local: DreamerV3 in one process (LocalTrainer: K envs, an in-memory replay and
// the learner) for quick experiments. Trains either from flags or, with --config / --set, a
// dreamfleet config as `dreamfleet up` would. Prints a progress line every --log-every env steps
// and, with --progress-csv, appends the same as a row of a progress CSV (`dreamfleet plot`).
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>

#include "absl/strings/str_cat.h"
#include "envs/registry.h"
#include "learner/local_trainer.h"
#include "services/command_line.h"
#include "services/learning_curve.h"
#include "services/thread_env.h"

namespace {

void PrintProgress(const dreamfleet::learner::LocalProgress& p, double updates_per_second) {
  auto loss = [&](const char* name) {
    auto it = p.losses.find(name);
    return it == p.losses.end() ? 0.0 : it->second;
  };
  std::printf(
      "env_steps=%lld updates=%lld episodes=%lld return=%.3f success=%.2f updates/s=%.2f "
      "wall=%.0fs rec=%.2f rew=%.3f con=%.3f dyn=%.2f policy=%.3f value=%.3f skipped=%lld\n",
      static_cast<long long>(p.env_steps), static_cast<long long>(p.updates),
      static_cast<long long>(p.episodes), p.mean_return, p.success, updates_per_second,
      p.wall_seconds,
      loss("image") + loss("vector"),  // decoder loss, whichever observation the env has
      loss("rew"), loss("con"), loss("dyn"), loss("policy"), loss("value"),
      static_cast<long long>(p.skipped_updates));
  if (p.eval.env_steps >= 0) {
    std::printf(
        "  latest evaluation (at %lld env steps): greedy return %.3f success %.2f, sampled "
        "return %.3f success %.2f\n",
        static_cast<long long>(p.eval.env_steps), p.eval.greedy_return, p.eval.greedy_success,
        p.eval.sampled_return, p.eval.sampled_success);
  }
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  namespace services = dreamfleet::services;
  namespace learner = dreamfleet::learner;
  services::EnsureThreadEnvironment(argc, argv);
  learner::LocalTrainerOptions o;
  int64_t log_every = 1000;
  std::string progress_csv;
  services::CommandLine command_line(
      "dreamfleet-train-local [flags]",
      "DreamerV3 on one machine, one process: K envs, an in-memory replay and the learner. "
      "Prints a progress line every --log-every env steps. With --config (and --set) it trains "
      "that dreamfleet config instead (env section, actor.count x envs_per_actor envs, learner "
      "section, replay.samples_per_insert as the train ratio, replay.selector (uniform or "
      "prioritized) with replay.priority_exponent, replay.rewarded_share, run.seed, "
      "actor.explore_prob and actor.explore_hold); the flags --env, "
      "--preset, --train-ratio, --envs, --image-size, --view, --action-set, --batch, --length, "
      "--seed, "
      "--threads, --lr, --warmup and --agent then do not apply.");
  command_line.AddConfigFlags();
  command_line.AddString("progress-csv", &progress_csv,
                         "write each progress line to this CSV, started afresh unless the run "
                         "resumes from --checkpoint-dir (\"\" = none; `dreamfleet plot` draws it)");
  command_line.AddString("env", &o.env, "registry env name; --env=list shows them");
  command_line.AddString("preset", &o.preset, "model size: debug, 1m, 12m, 25m, 50m, ...");
  command_line.AddInt("steps", &o.steps, "env steps to run");
  command_line.AddDouble("train-ratio", &o.train_ratio, "replayed steps per env step");
  command_line.AddInt("envs", &o.envs, "parallel envs");
  command_line.AddInt("image-size", &o.image_size,
                      "env observations are N x N (32 is 4x cheaper on a CPU)");
  command_line.AddString("view", &o.view,
                         "gridworlds: full (image), egocentric (MiniGrid's 7x7 view) or symbolic "
                         "(one-hot cells as a vector, no image)");
  command_line.AddString("action-set", &o.action_set,
                         "MinAtar games: full (MinAtar's 6 actions) or minimal (the game's own "
                         "set, e.g. Breakout's noop, left, right); other envs accept only full");
  command_line.AddInt("batch", &o.batch, "B sequences per batch");
  command_line.AddInt("length", &o.length, "T steps per sequence");
  command_line.AddInt("seed", &o.seed, "seed of envs, weights and sampling");
  command_line.AddInt("threads", &o.threads, "LibTorch CPU threads (0: LibTorch's choice)");
  command_line.AddDouble("until-success", &o.until_success,
                         "stop once the success rate of the last 100 episodes reaches this "
                         "(e.g. 0.9; 0 = run all --steps)");
  command_line.AddInt("log-every", &log_every, "progress line every N env steps");
  command_line.AddInt("episode-window", &o.episode_window,
                      "episodes the reported return and success rate are over");
  command_line.AddString("episode-log", &o.episode_log,
                         "write one CSV line per finished training episode (env steps, env, "
                         "return, length, success, terminal) to this file, started afresh unless "
                         "the run resumes from --checkpoint-dir; then it refills the episode "
                         "window (\"\" = none: a resumed window starts empty)");
  command_line.AddString("replay-log", &o.replay_log,
                         "log every training step to this directory so a run resumed from "
                         "--checkpoint-dir starts with the replay it had at the checkpoint; a "
                         "fresh run empties it (\"\" = none: a resumed replay starts empty)");
  command_line.AddInt("eval-every", &o.eval_every,
                      "evaluate the policy every N env steps on envs of its own, greedy and "
                      "sampled (0 = never); printed and written to --progress-csv");
  command_line.AddInt("eval-episodes", &o.eval_episodes, "episodes per evaluation and mode");
  command_line.AddString("best-dir", &o.best_dir,
                         "keep the agent of the best greedy evaluation return here, as a "
                         "checkpoint (\"\" = none; needs --eval-every)");
  command_line.AddString("checkpoint-dir", &o.checkpoint_dir,
                         "resume from and save checkpoints to DIR (\"\" = none)");
  command_line.AddString("init-from", &o.init_from,
                         "start from the agent in this checkpoint directory, e.g. a run's "
                         "--best-dir, when --checkpoint-dir holds no checkpoint yet (\"\" = "
                         "start fresh)");
  command_line.AddInt("save-every", &o.save_every, "checkpoint every N updates");
  command_line.AddDouble("lr", &o.lr, "world-model learning rate (4e-5 is the official value)");
  command_line.AddInt("warmup", &o.warmup, "LaProp linear warmup in updates");
  command_line.AddRepeated("agent", &o.agent_sets,
                           "KEY=VALUE: one agent config field (as in a checkpoint's config), e.g. "
                           "--agent=scale_rec=10; may be repeated");
  int exit_code = 0;
  if (!services::ParseCommandLineOrExit(command_line, argc, argv, &exit_code)) return exit_code;
  if (o.env == "list") {
    for (const auto& [name, about] : dreamfleet::envs::ListEnvironments()) {
      std::printf("%-28s %s\n", name.c_str(), about.c_str());
    }
    return 0;
  }
  if (log_every < 1) {
    std::cerr << "dreamfleet-train-local: --log-every must be >= 1, got " << log_every << "\n";
    return 2;
  }

  absl::StatusOr<std::unique_ptr<learner::LocalTrainer>> trainer;
  if (!command_line.config_path().empty() || !command_line.overrides().empty()) {
    absl::StatusOr<dreamfleet::services::Config> config = command_line.LoadConfig();
    if (!config.ok()) {
      std::cerr << "dreamfleet-train-local: " << config.status() << "\n";
      return 2;
    }
    o.env = config->env.name;
    o.preset = config->learner.preset;
    o.envs = config->actor.count * config->actor.envs_per_actor;
    o.batch = config->learner.batch_size;
    o.length = config->learner.batch_length;
    o.train_ratio = config->replay.samples_per_insert;
    trainer = learner::LocalTrainer::Create(*config, o);
  } else {
    trainer = learner::LocalTrainer::Create(o);
  }
  if (!trainer.ok()) {
    std::cerr << "dreamfleet-train-local: " << trainer.status() << "\n";
    // 2: a bad flag value or a file it names is missing
    return absl::IsInvalidArgument(trainer.status()) || absl::IsNotFound(trainer.status()) ? 2 : 1;
  }
  learner::LocalTrainer& t = **trainer;
  const auto& spec = t.spec();
  if (t.resumed()) {
    const bool own = t.started_from() == learner::StartedFrom::kCheckpoint;
    const std::string replay =
        t.restored_replay_steps() > 0
            ? absl::StrCat(t.restored_replay_steps(), " steps of replay from ", o.replay_log)
            : std::string("replay starts empty");
    std::printf("%s %s at update %lld, env step %lld (%s)\n",
                own ? "resumed from" : "started from the agent in",
                (own ? o.checkpoint_dir : o.init_from).c_str(),
                static_cast<long long>(t.agent().updates()),
                static_cast<long long>(t.Progress().env_steps), replay.c_str());
    if (own && !o.init_from.empty()) {
      std::printf("--init-from %s is not used: %s already holds this run's checkpoint\n",
                  o.init_from.c_str(), o.checkpoint_dir.c_str());
    }
  }
  std::printf(
      "env=%s (image %dx%dx%d, vector %d, %d actions) preset=%s envs=%lld batch=%lldx%lld "
      "train_ratio=%g\n",
      o.env.c_str(), spec.image_height, spec.image_width, spec.image_channels, spec.vector_size,
      spec.num_actions, o.preset.c_str(), static_cast<long long>(o.envs),
      static_cast<long long>(o.batch), static_cast<long long>(o.length), o.train_ratio);
  std::fflush(stdout);

  std::optional<dreamfleet::services::CurveWriter> csv;
  dreamfleet::services::CurveOffsets offsets;  // a resumed run's curve carries on
  if (!progress_csv.empty()) {
    const learner::StartedFrom started = t.started_from();
    if (started == learner::StartedFrom::kInitFrom) {
      // A new run from another run's agent: its curve is its own, and another's stays whole.
      std::error_code error;
      if (std::filesystem::file_size(progress_csv, error) > 0 && !error) {
        std::cerr << "dreamfleet-train-local: --progress-csv " << progress_csv
                  << " already holds a curve; a run started with --init-from needs a new one\n";
        return 2;
      }
    }
    if (started == learner::StartedFrom::kFresh) {
      std::remove(progress_csv.c_str());  // a fresh run, a fresh curve
    }
    if (started == learner::StartedFrom::kCheckpoint) {
      absl::StatusOr<dreamfleet::services::CurveOffsets> resumed =
          dreamfleet::services::ResumeCurve(progress_csv, t.Progress().env_steps);
      if (!resumed.ok()) {
        std::cerr << "dreamfleet-train-local: " << resumed.status() << "\n";
        return 1;
      }
      offsets = *resumed;
      // With --episode-log the trainer counted the run's episodes up to the checkpoint itself.
      if (t.episodes_from_log()) offsets.episodes = 0;
    }
    absl::StatusOr<dreamfleet::services::CurveWriter> writer =
        dreamfleet::services::CurveWriter::Open(progress_csv);
    if (!writer.ok()) {
      std::cerr << "dreamfleet-train-local: " << writer.status() << "\n";
      return 1;
    }
    csv.emplace(std::move(*writer));
  }
  learner::LocalProgress last = t.Progress();
  int64_t run_steps = 0;
  while (!t.done()) {
    if (absl::Status status = t.Tick(); !status.ok()) {
      std::cerr << "dreamfleet-train-local: " << status << "\n";
      return 1;
    }
    run_steps += o.envs;
    if (run_steps % log_every < o.envs || t.done()) {
      const learner::LocalProgress p = t.Progress();
      const double seconds = std::max(1e-9, p.wall_seconds - last.wall_seconds);
      PrintProgress(p, (p.updates - last.updates) / seconds);
      if (csv) {
        if (absl::Status s = csv->Append(offsets.Apply(learner::CurveRowOf(p))); !s.ok()) {
          std::cerr << "dreamfleet-train-local: " << s << "\n";
          return 1;
        }
      }
      last = p;
    }
  }
  if (absl::Status status = t.Save(); !status.ok()) std::cerr << status << "\n";
  const learner::LocalProgress p = t.Progress();
  std::printf("%s after %lld env steps, %lld updates, %.0f s\n",
              t.reached_success() ? "reached the success target" : "finished",
              static_cast<long long>(p.env_steps), static_cast<long long>(p.updates),
              p.wall_seconds);
  return 0;
}
