// bench_learning: the learning benchmark. Trains every task of a suite (bench/learning_suite.yaml:
// config, overrides, env-step budget, seeds, target, published anchor) through the single-process
// trainer (learner::LocalTrainer: the config's envs, agent, batch and train ratio in one process),
// one seed after another, and measures each task's random policy with the same program. Per run
// it writes <out>/<task>/seed<k>/progress.csv (env steps, updates, wall seconds, return and
// success over the last 100 episodes, losses), episodes.csv (a line per finished training episode,
// which carries that window over a resume), foresight.csv (at every evaluation, how far ahead the
// world model sees episode ends and rewards; foresight_cells.csv: for a grid observation, how much
// of each channel's cells its imagination keeps) and curve.png, per task a curve.png of every seed;
// it prints a progress line at least every --progress-seconds, resumes a run from its checkpoint
// (with the replay logged in replay/ up to it: learner/replay_log.h), and ends with a Markdown
// summary (also written to <out>/summary.md) for BENCHMARKS.md. With --via=up each run is a local
// cluster instead (`dreamfleet up --max-env-steps`), whose progress.csv has the same columns.
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "bench/learning_suite.h"
#include "envs/env_config.h"
#include "envs/registry.h"
#include "envs/vector_env.h"
#include "learner/foresight.h"
#include "learner/local_trainer.h"
#ifdef DREAMFLEET_HAVE_OPENLOOP_FILES
#include "learner/openloop_files.h"
#endif
#include "services/command_line.h"
#include "services/config.h"
#include "services/durable_file.h"
#include "services/hash.h"
#include "services/learning_curve.h"
#include "services/shutdown.h"
#include "services/status_macros.h"
#include "services/thread_env.h"

namespace {

namespace fs = std::filesystem;
namespace bench = dreamfleet::bench;
namespace services = dreamfleet::services;
namespace learner = dreamfleet::learner;
namespace envs = dreamfleet::envs;

constexpr int kEpisodeWindow = 100;

struct Flags {
  std::string suite = "bench/learning_suite.yaml";
  std::string out = "runs/bench_learning";
  std::string tasks;  // comma-separated; "" = all
  std::string seeds;  // comma-separated; "" = the suite's
  int64_t steps = 0;  // 0 = the suite's budget
  std::vector<std::string> sets;
  int64_t random_episodes = 100;
  int64_t constant_episodes = 0;
  double progress_seconds = 30;
  int64_t csv_every = 2000;
  int64_t save_every = 500;
  int64_t eval_every = 10000;
  int64_t eval_episodes = 10;
  bool summary_only = false;
  bool replay_log = true;     // log every step to <run>/replay/ (a resume keeps its replay)
  std::string via = "local";  // local | up
};

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// A suite's config paths are relative to the working directory, or else to the source tree the
// suite file sits in (bench/..).
std::string ResolveConfig(const std::string& config, const std::string& suite) {
  if (fs::path(config).is_absolute() || fs::exists(config)) return config;
  const fs::path beside = fs::path(suite).parent_path().parent_path() / config;
  return fs::exists(beside) ? beside.string() : config;
}

// The `--set` overrides of one seed's run: the task's, the seed's, then the command line's.
std::vector<std::string> SeedOverrides(const bench::LearningTask& task, const Flags& flags,
                                       int64_t seed) {
  std::vector<std::string> overrides = task.overrides;
  overrides.push_back(absl::StrCat("run.seed=", seed));
  overrides.push_back(absl::StrCat("env.base_seed=", seed * 1000));
  overrides.insert(overrides.end(), flags.sets.begin(), flags.sets.end());
  return overrides;
}

absl::StatusOr<services::Config> TaskConfig(const bench::LearningTask& task, const Flags& flags,
                                            int64_t seed) {
  absl::StatusOr<services::Config> config = services::LoadConfig(
      ResolveConfig(task.config, flags.suite), SeedOverrides(task, flags, seed));
  if (!config.ok()) {
    return absl::Status(config.status().code(),
                        absl::StrCat("task ", task.name, ": ", config.status().message()));
  }
  return config;
}

struct PolicyScore {
  double mean_return = 0;
  double success = 0;
  int64_t episodes = 0;
  int action = -1;  // the constant action played; -1 = uniformly random actions
};

// A fixed policy on the task's envs, uniformly random actions (action -1) or always `action`: the
// first ceil(episodes / 8) episodes of each of 8 envs (so short episodes are not favoured), at
// most 1M steps (score.episodes may then be fewer than asked, or 0). Cached in
// <task dir>/<cache_name> under a hash of what it depends on (the env section and run.seed), so a
// changed env is measured again and a learner or replay setting is not. CANCELLED on a shutdown
// request (nothing cached).
absl::StatusOr<PolicyScore> MeasurePolicy(const services::Config& config,
                                          const std::string& task_dir,
                                          const std::string& cache_name, int64_t episodes,
                                          int action) {
  const std::string cache = task_dir + "/" + cache_name;
  services::Config measured;
  measured.env = config.env;
  measured.run.seed = config.run.seed;
  const uint64_t key = services::Fnv1a64(services::ConfigToYaml(measured));
  PolicyScore score;
  score.action = action;
  uint64_t cached_key = 0;
  int64_t asked = 0;
  if (std::ifstream in(cache);
      in >> score.mean_return >> score.success >> score.episodes >> cached_key >> asked) {
    if (cached_key == key && asked >= episodes) return score;
  }
  score = PolicyScore();
  score.action = action;
  constexpr int kEnvs = 8;
  const int64_t per_env = (episodes + kEnvs - 1) / kEnvs;
  ASSIGN_OR_RETURN(std::unique_ptr<envs::VectorEnv> env,
                   envs::VectorEnv::Create(envs::EnvOptionsFromConfig(config, 0), kEnvs));
  RETURN_IF_ERROR(env->Reset());
  std::mt19937 rng(static_cast<uint32_t>(config.run.seed) + 99);
  std::uniform_int_distribution<int> pick(0, env->spec().num_actions - 1);
  std::vector<int> actions(env->num_envs());
  std::vector<int64_t> done(kEnvs, 0);
  double total = 0, successes = 0;
  auto all_done = [&] {
    return std::all_of(done.begin(), done.end(), [&](int64_t d) { return d >= per_env; });
  };
  for (int64_t step = 0; !all_done() && step < 1000000; step += env->num_envs()) {
    if (services::ShutdownRequested()) return absl::CancelledError("stopped by a signal");
    for (int& a : actions) a = action < 0 ? pick(rng) : action;
    RETURN_IF_ERROR(env->Step(actions));
    for (const envs::EpisodeStats& e : env->finished_episodes()) {
      const int i = e.env;
      if (i < 0 || i >= kEnvs || done[i] >= per_env) continue;
      ++done[i];
      ++score.episodes;
      total += e.episode_return;
      successes += e.success ? 1 : 0;
    }
  }
  if (score.episodes > 0) {
    score.mean_return = total / score.episodes;
    score.success = successes / score.episodes;
  }
  std::ofstream(cache) << score.mean_return << " " << score.success << " " << score.episodes << " "
                       << key << " " << episodes << "\n";
  return score;
}

// The best policy that always plays one action (Freeway: always up), by the task's metric: the
// level an agent must beat before it has learned more than a habit. Actions that end no episode
// within 1M steps are left out; nullopt when none does.
absl::StatusOr<std::optional<PolicyScore>> MeasureBestConstantAction(
    const bench::LearningTask& task, const services::Config& config, const std::string& task_dir,
    int64_t episodes, int num_actions) {
  std::optional<PolicyScore> best;
  auto metric = [&](const PolicyScore& p) {
    return task.metric == "success" ? p.success : p.mean_return;
  };
  for (int action = 0; action < num_actions; ++action) {
    ASSIGN_OR_RETURN(
        PolicyScore score,
        MeasurePolicy(config, task_dir, absl::StrCat("constant_action_", action, ".txt"), episodes,
                      action));
    if (score.episodes == 0) continue;
    if (!best || metric(score) > metric(*best)) best = score;
  }
  return best;
}

// The levels drawn on a task's plots and written into its CSVs: the baselines measured (random
// policy, best constant action), the anchor and the target.
std::vector<services::CurveLevel> Levels(const bench::LearningTask& task,
                                         const std::vector<services::CurveLevel>& baselines) {
  std::vector<services::CurveLevel> levels = baselines;
  if (task.has_anchor) levels.push_back({task.anchor_label, task.anchor});
  if (task.target != 0) levels.push_back({"target", task.target});
  return levels;
}

services::PlotSeries ScoreSeries(const bench::LearningTask& task, const services::Curve& curve,
                                 const std::string& label) {
  services::PlotSeries series;
  series.label = label;
  for (const services::CurveRow& row : curve.rows) {
    series.points.emplace_back(static_cast<double>(row.env_steps), bench::Score(task, row));
  }
  return series;
}

// A run's series: its training score, and its greedy evaluations when it has any.
void AddRunSeries(const bench::LearningTask& task, const services::Curve& curve,
                  const std::string& score_label, const std::string& greedy_label,
                  std::vector<services::PlotSeries>* series) {
  series->push_back(ScoreSeries(task, curve, score_label));
  services::PlotSeries greedy =
      services::EvalSeries(curve, bench::GreedyEvalName(task), greedy_label);
  if (!greedy.points.empty()) series->push_back(std::move(greedy));
}

services::PlotOptions PlotOptionsFor(const bench::LearningTask& task,
                                     const std::vector<services::CurveLevel>& baselines) {
  services::PlotOptions options;
  options.title = task.name;
  options.y_label = task.metric == "success" ? "success rate (last 100 episodes)"
                                             : "mean return (last 100 episodes)";
  options.levels = Levels(task, baselines);
  return options;
}

// <run_dir>/curve.png of one seed: its training score and its greedy evaluations.
void PlotRun(const bench::LearningTask& task, const services::Curve& curve, int64_t seed,
             const std::vector<services::CurveLevel>& baselines, const std::string& run_dir) {
  std::vector<services::PlotSeries> series;
  AddRunSeries(task, curve, absl::StrCat("seed ", seed, " training episodes"), "greedy evaluation",
               &series);
  absl::Status plotted =
      services::PlotPng(series, PlotOptionsFor(task, baselines), run_dir + "/curve.png");
  if (!plotted.ok()) std::cerr << "bench_learning: " << plotted << "\n";
}

// --via=up: the seed as a cluster, `dreamfleet up` (the binary next to this one) on the task's
// config with run.dir = run_dir, stopped at the budget by --max-env-steps; its progress.csv (same
// columns) is the run's curve. A second start resumes it (learner checkpoint, replay WAL).
absl::StatusOr<bool> RunSeedViaUp(const bench::LearningTask& task, const Flags& flags, int64_t seed,
                                  const std::vector<services::CurveLevel>& baselines,
                                  const std::string& run_dir) {
  std::error_code error;
  const fs::path self = fs::read_symlink("/proc/self/exe", error);
  const std::string dreamfleet = (self.parent_path() / "dreamfleet").string();
  if (error || access(dreamfleet.c_str(), X_OK) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("--via=up needs the dreamfleet binary at ", dreamfleet, " (build it)"));
  }
  fs::create_directories(run_dir, error);
  if (error) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create ", run_dir, ": ", error.message()));
  }
  const std::string csv = run_dir + "/progress.csv";
  // The levels go in first; `up` appends its rows below them.
  RETURN_IF_ERROR(services::CurveWriter::Open(csv, Levels(task, baselines), task.metric).status());
  std::vector<std::string> args = {dreamfleet, "up", "--config",
                                   ResolveConfig(task.config, flags.suite)};
  std::vector<std::string> sets = SeedOverrides(task, flags, seed);
  sets.push_back("run.dir=" + run_dir);
  for (const std::string& set : sets) {
    args.push_back("--set");
    args.push_back(set);
  }
  args.push_back(absl::StrCat("--max-env-steps=", task.env_steps));
  std::printf("[%s seed %lld] %s\n", task.name.c_str(), static_cast<long long>(seed),
              absl::StrJoin(args, " ").c_str());
  std::fflush(stdout);
  std::vector<char*> argv;
  for (std::string& arg : args) argv.push_back(arg.data());
  argv.push_back(nullptr);
  const pid_t pid = fork();
  if (pid < 0) return absl::InternalError("fork failed");
  if (pid == 0) {
    execv(argv[0], argv.data());
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    return absl::InternalError(
        absl::StrCat("dreamfleet up ended with status ", status, "; see ", run_dir, "/logs/"));
  }
  absl::StatusOr<services::Curve> curve = services::ReadCurve(csv);
  const bool done =
      curve.ok() && !curve->rows.empty() && curve->rows.back().env_steps >= task.env_steps;
  if (curve.ok() && !curve->rows.empty()) PlotRun(task, *curve, seed, baselines, run_dir);
  return done;
}

// The open-loop report of the agent now (learner/openloop.h), over the previous one in run_dir;
// a failure is reported and the run goes on.
void WriteOpenLoop(const bench::LearningTask& task, int64_t seed, const services::Config& config,
                   learner::DreamerAgent& agent, int64_t env_steps, const std::string& run_dir) {
#ifdef DREAMFLEET_HAVE_OPENLOOP_FILES
  absl::StatusOr<learner::OpenLoopReport> report =
      learner::WriteRunOpenLoop(config, agent, run_dir);
  if (!report.ok()) {
    std::printf("[%s seed %lld] no open-loop report: %s\n", task.name.c_str(),
                static_cast<long long>(seed), std::string(report.status().message()).c_str());
    return;
  }
  std::printf("[%s seed %lld] open loop at %lld env steps (%s/openloop.gif): %s\n",
              task.name.c_str(), static_cast<long long>(seed), static_cast<long long>(env_steps),
              run_dir.c_str(), learner::OpenLoopSummary(*report).c_str());
#endif
}

constexpr char kForesightHeader[] =
    "env_steps,lead,ends,end_chance_at_ends,others,end_chance_elsewhere,rewarded,"
    "reward_at_rewarded,unrewarded,reward_elsewhere";

constexpr char kForesightCellsHeader[] =
    "env_steps,lead,channel,occupied,kept,arrived,arrived_kept,spurious_per_step";

// Appends `rows` to the CSV at `path`, with `header` first when the file is new; false when it
// cannot be written.
bool AppendCsv(const std::string& path, const char* header, const std::string& rows) {
  std::error_code error;
  const bool fresh = !std::filesystem::exists(path, error);
  std::ofstream out(path, std::ios::app);
  if (fresh) out << header << "\n";
  out << rows;
  return static_cast<bool>(out.flush());
}

// A resumed run's foresight.csv (or foresight_cells.csv) without the rows after the resumed step
// (they come again).
absl::Status TruncateForesight(const std::string& path, int64_t env_steps) {
  std::ifstream in(path);
  if (!in) return absl::OkStatus();
  std::string kept, line;
  while (std::getline(in, line)) {
    int64_t at = 0;
    const std::string first = line.substr(0, line.find(','));
    if (absl::SimpleAtoi(first, &at) && at > env_steps) continue;
    absl::StrAppend(&kept, line, "\n");
  }
  return services::ReplaceFileDurably(path, kept);
}

// How far ahead the agent's world model sees episode ends and rewards (`dreamfleet report
// foresight`, 8 episodes of at most 1,000 steps): a line, a row per lead in foresight.csv and, for
// a grid observation, a row per lead and channel in foresight_cells.csv.
void WriteForesight(const bench::LearningTask& task, int64_t seed, const services::Config& config,
                    learner::DreamerAgent& agent, int64_t env_steps, const std::string& run_dir) {
  learner::ForesightOptions options;
  options.episodes = 8;
  options.max_steps = 1000;
  absl::StatusOr<learner::ForesightReport> report = learner::Foresight(config, agent, options);
  if (!report.ok()) {
    std::printf("[%s seed %lld] no foresight report: %s\n", task.name.c_str(),
                static_cast<long long>(seed), std::string(report.status().message()).c_str());
    return;
  }
  std::printf("[%s seed %lld] foresight at %lld env steps: %s\n", task.name.c_str(),
              static_cast<long long>(seed), static_cast<long long>(env_steps),
              learner::ForesightLine(*report).c_str());
  std::string rows, cells;
  for (const learner::ForesightLead& l : report->leads) {
    absl::StrAppendFormat(&rows, "%d,%d,%d,%.6g,%d,%.6g,%d,%.6g,%d,%.6g\n", env_steps, l.lead,
                          l.ends, l.end_chance_at_ends, l.others, l.end_chance_elsewhere,
                          l.rewarded, l.reward_at_rewarded, l.unrewarded, l.reward_elsewhere);
    for (size_t ch = 0; ch < l.cells.size(); ++ch) {
      const learner::ForesightCells& c = l.cells[ch];
      absl::StrAppendFormat(&cells, "%d,%d,%d,%d,%.6g,%d,%.6g,%.6g\n", env_steps, l.lead, ch,
                            c.occupied, c.kept, c.arrived, c.arrived_kept, c.spurious_per_step);
    }
  }
  // A grid observation's cells (none otherwise) go to a file of their own.
  const std::pair<std::string, std::string> files[] = {{"foresight.csv", rows},
                                                       {"foresight_cells.csv", cells}};
  for (const auto& [name, text] : files) {
    if (text.empty()) continue;
    const std::string path = run_dir + "/" + name;
    if (!AppendCsv(path, name == "foresight.csv" ? kForesightHeader : kForesightCellsHeader,
                   text)) {
      std::printf("[%s seed %lld] cannot write %s\n", task.name.c_str(),
                  static_cast<long long>(seed), path.c_str());
    }
  }
}

// Trains one seed to the task's budget (or resumes it); returns false when a shutdown was
// requested before the budget.
absl::StatusOr<bool> RunSeed(const bench::LearningTask& task, const Flags& flags, int64_t seed,
                             const std::vector<services::CurveLevel>& baselines,
                             const std::string& run_dir) {
  ASSIGN_OR_RETURN(services::Config config, TaskConfig(task, flags, seed));
  const std::string csv = run_dir + "/progress.csv";
  // A run whose curve reached the budget is done (its last checkpoint may hold an earlier step).
  if (absl::StatusOr<services::Curve> done = services::ReadCurve(csv);
      done.ok() && !done->rows.empty() && done->rows.back().env_steps >= task.env_steps) {
    std::printf("[%s seed %lld] already at its budget of %lld env steps\n", task.name.c_str(),
                static_cast<long long>(seed), static_cast<long long>(task.env_steps));
    return true;
  }
  if (flags.via == "up") return RunSeedViaUp(task, flags, seed, baselines, run_dir);
  std::error_code error;
  fs::create_directories(run_dir, error);
  if (error) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot create ", run_dir, ": ", error.message()));
  }
  // The run's whole config, for `dreamfleet play --run` and anyone repeating the run.
  if (std::ofstream out(run_dir + "/config.yaml"); !(out << services::ConfigToYaml(config))) {
    return absl::PermissionDeniedError(absl::StrCat("cannot write ", run_dir, "/config.yaml"));
  }
  learner::LocalTrainerOptions run;
  run.steps = task.env_steps;
  run.checkpoint_dir = run_dir + "/checkpoint";
  run.save_every = flags.save_every;
  run.episode_window = kEpisodeWindow;
  run.episode_log = run_dir + "/episodes.csv";  // carries the window over a resume
  if (flags.replay_log) run.replay_log = run_dir + "/replay";  // carries replay over a resume
  run.eval_every = flags.eval_every;
  run.eval_episodes = flags.eval_episodes;
  if (flags.eval_every > 0) run.best_dir = run_dir + "/best";  // the best greedy evaluation's agent
  ASSIGN_OR_RETURN(std::unique_ptr<learner::LocalTrainer> trainer,
                   learner::LocalTrainer::Create(config, run));
  if (!flags.replay_log && fs::exists(run_dir + "/replay")) {
    // Steps trained on from here would be missing from it: a later start with the log would
    // refill replay across that gap.
    fs::remove_all(run_dir + "/replay", error);
    if (error) {
      return absl::PermissionDeniedError(
          absl::StrCat("--replay-log=false: cannot delete the earlier log ", run_dir,
                       "/replay: ", error.message()));
    }
    std::printf("[%s seed %lld] --replay-log=false: deleted the earlier replay log %s/replay\n",
                task.name.c_str(), static_cast<long long>(seed), run_dir.c_str());
  }
  services::CurveOffsets offsets;
  if (trainer->resumed()) {
    const int64_t at = trainer->Progress().env_steps;
    ASSIGN_OR_RETURN(offsets, services::ResumeCurve(csv, at));
    // The episode log counted the run's episodes up to the checkpoint itself (the CSV's last
    // row kept may be up to --csv-every env steps older).
    if (trainer->episodes_from_log()) offsets.episodes = 0;
    RETURN_IF_ERROR(TruncateForesight(run_dir + "/foresight.csv", at));
    RETURN_IF_ERROR(TruncateForesight(run_dir + "/foresight_cells.csv", at));
    std::printf(
        "[%s seed %lld] resumed from %s at env step %lld, update %lld, with %lld steps "
        "of replay%s%s\n",
        task.name.c_str(), static_cast<long long>(seed), run.checkpoint_dir.c_str(),
        static_cast<long long>(at), static_cast<long long>(trainer->agent().updates()),
        static_cast<long long>(trainer->restored_replay_steps()),
        run.replay_log.empty() ? " (--replay-log=false)" : " from ", run.replay_log.c_str());
  }
  if (!trainer->resumed()) {  // a fresh run starts a fresh curve
    fs::remove(csv, error);
    fs::remove(run_dir + "/foresight.csv", error);
    fs::remove(run_dir + "/foresight_cells.csv", error);
  }
  if (trainer->done()) {
    std::printf("[%s seed %lld] already at its budget of %lld env steps\n", task.name.c_str(),
                static_cast<long long>(seed), static_cast<long long>(run.steps));
    return true;
  }
  ASSIGN_OR_RETURN(services::CurveWriter writer,
                   services::CurveWriter::Open(csv, Levels(task, baselines), task.metric));
  const auto& spec = trainer->spec();
  const auto& model = trainer->agent().config();
  std::printf(
      "[%s seed %lld] %s: %lld env steps, %d envs, obs image %dx%dx%d vector %d, %d actions, "
      "preset %s (units %d, hidden %d, latent %dx%d), batch %dx%d, train ratio %g\n",
      task.name.c_str(), static_cast<long long>(seed), task.config.c_str(),
      static_cast<long long>(run.steps),
      static_cast<int>(config.actor.count * config.actor.envs_per_actor), spec.image_height,
      spec.image_width, spec.image_channels, spec.vector_size, spec.num_actions,
      config.learner.preset.c_str(), model.units, model.hidden, model.stoch, model.classes,
      model.batch_size, model.batch_length, config.replay.samples_per_insert);
  std::fflush(stdout);

  int64_t next_row = (trainer->Progress().env_steps / flags.csv_every + 1) * flags.csv_every;
  double last_print = Now();
  learner::LocalProgress last = trainer->Progress();
  int64_t last_eval = -1;  // env steps of the latest evaluation printed
  while (!trainer->done() && !services::ShutdownRequested()) {
    RETURN_IF_ERROR(trainer->Tick());
    const learner::LocalProgress p = trainer->Progress();
    if (p.env_steps >= next_row || trainer->done()) {
      RETURN_IF_ERROR(writer.Append(offsets.Apply(learner::CurveRowOf(p))));
      next_row += flags.csv_every;
    }
    if (p.eval.env_steps >= 0 && p.eval.env_steps != last_eval) {
      last_eval = p.eval.env_steps;
      std::printf(
          "[%s seed %lld] evaluation at %lld env steps, %lld episodes each: greedy return %.3f "
          "success %.2f, sampled return %.3f success %.2f%s (%.0fs)\n",
          task.name.c_str(), static_cast<long long>(seed), static_cast<long long>(p.eval.env_steps),
          static_cast<long long>(p.eval.episodes), p.eval.greedy_return, p.eval.greedy_success,
          p.eval.sampled_return, p.eval.sampled_success,
          p.eval.cut > 0 ? absl::StrCat(", ", p.eval.cut, " cut at the step limit").c_str() : "",
          p.eval.seconds);
      WriteOpenLoop(task, seed, config, trainer->agent(), p.eval.env_steps, run_dir);
      WriteForesight(task, seed, config, trainer->agent(), p.eval.env_steps, run_dir);
      std::fflush(stdout);
    }
    if (Now() - last_print >= flags.progress_seconds || trainer->done()) {
      const double seconds = std::max(1e-9, p.wall_seconds - last.wall_seconds);
      const double steps_per_s = (p.env_steps - last.env_steps) / seconds;
      const double eta = steps_per_s > 0 ? (run.steps - p.env_steps) / steps_per_s : 0;
      auto loss = [&](const char* name) {
        auto it = p.losses.find(name);
        return it == p.losses.end() ? 0.0 : it->second;
      };
      auto stat = [&](const char* name) {
        auto it = p.stats.find(name);
        return it == p.stats.end() ? 0.0 : it->second;
      };
      // " name=share" of the count's growth since the last line per unit of `total`'s growth,
      // or nothing when the setting behind it is off.
      auto share_since_last = [](bool on, const char* name, int precision, int64_t grown,
                                 int64_t total) {
        return on ? absl::StrFormat(" %s=%.*f", name, precision,
                                    static_cast<double>(grown) / std::max<int64_t>(1, total))
                  : std::string();
      };
      // With actor.explore_prob: the share of the env steps since the last line that took a
      // held random action.
      const std::string explored =
          share_since_last(config.actor.explore_prob > 0, "explored", 3,
                           p.explored_steps - last.explored_steps, p.env_steps - last.env_steps);
      // With learner.disagreement_scale: the ensemble's mean disagreement and loss.
      const std::string disag =
          config.learner.disagreement_scale > 0
              ? absl::StrFormat(" disag=%.4f disag_loss=%.4f", stat("disag"), loss("disag"))
              : "";
      // With replay.rewarded_share: the share of the windows trained on since the last line that
      // were drawn around a rewarded step (below the setting until the replay holds rewards).
      const std::string rewarded =
          share_since_last(config.replay.rewarded_share > 0, "rewarded_windows", 2,
                           p.rewarded_windows - last.rewarded_windows,
                           (p.updates - last.updates) * config.learner.batch_size);
      // With the replay log: the share of the wall time since the last line spent writing it.
      const std::string logged =
          run.replay_log.empty() ? ""
          : p.replay_logging
              ? absl::StrFormat(" replay_log=%.2f%%",
                                100 * (p.replay_log_seconds - last.replay_log_seconds) / seconds)
              : " replay_log=off(failed)";
      std::printf(
          "[%s seed %lld] env_steps=%lld/%lld updates=%lld episodes=%lld return=%.3f "
          "success=%.2f updates/s=%.2f env_steps/s=%.0f wall=%.0fs eta=%.0fmin rew=%.3f "
          "dyn=%.2f policy=%.3f value=%.3f entropy=%.3f retnorm=%.2f%s%s%s%s\n",
          task.name.c_str(), static_cast<long long>(seed), static_cast<long long>(p.env_steps),
          static_cast<long long>(run.steps), static_cast<long long>(p.updates),
          static_cast<long long>(offsets.episodes + p.episodes), p.mean_return, p.success,
          (p.updates - last.updates) / seconds, steps_per_s, offsets.wall_seconds + p.wall_seconds,
          eta / 60, loss("rew"), loss("dyn"), loss("policy"), loss("value"), stat("entropy"),
          stat("retnorm_scale"), explored.c_str(), disag.c_str(), rewarded.c_str(), logged.c_str());
      std::fflush(stdout);
      last = p;
      last_print = Now();
    }
  }
  RETURN_IF_ERROR(trainer->Save());
  if (absl::StatusOr<services::Curve> curve = services::ReadCurve(csv);
      curve.ok() && !curve->rows.empty()) {
    PlotRun(task, *curve, seed, baselines, run_dir);
  }
  return trainer->done();
}

absl::StatusOr<std::vector<int64_t>> ParseSeeds(const std::string& text) {
  std::vector<int64_t> seeds;
  for (absl::string_view s : absl::StrSplit(text, ',', absl::SkipEmpty())) {
    int64_t seed = 0;
    if (!absl::SimpleAtoi(s, &seed) || seed < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("--seeds: \"", s, "\" is not a seed (a whole number >= 0)"));
    }
    if (std::find(seeds.begin(), seeds.end(), seed) == seeds.end()) seeds.push_back(seed);
  }
  if (seeds.empty()) return absl::InvalidArgumentError("--seeds lists no seed");
  return seeds;
}

int Main(int argc, char** argv) {
  Flags flags;
  services::CommandLine command_line(
      "bench_learning [flags]",
      "The learning benchmark: trains the suite's tasks in one process each (the config's envs, "
      "agent and train ratio), measures each task's random policy, writes progress.csv and "
      "curve.png per run under --out, resumes runs from their checkpoints, and prints a Markdown "
      "summary (also <out>/summary.md).");
  command_line.AddString("suite", &flags.suite, "suite YAML (tasks: config, set, env_steps, ...)");
  command_line.AddString("out", &flags.out, "output directory: <out>/<task>/seed<k>/");
  command_line.AddString("tasks", &flags.tasks, "comma-separated task names (\"\" = every task)");
  command_line.AddString("seeds", &flags.seeds, "comma-separated seeds (\"\" = the suite's)");
  command_line.AddInt("steps", &flags.steps, "env-step budget per seed (0 = the suite's)");
  command_line.AddRepeated("set", &flags.sets,
                           "section.key=value applied after the task's overrides; may repeat");
  command_line.AddInt("random-episodes", &flags.random_episodes,
                      "episodes of the random policy per task (0 = skip the baseline)");
  command_line.AddInt("constant-episodes", &flags.constant_episodes,
                      "episodes of each always-the-same-action policy per task; the best one is "
                      "printed and drawn as a level (Freeway: always up; 0 = skip)");
  command_line.AddDouble("progress-seconds", &flags.progress_seconds,
                         "a progress line at least this often");
  command_line.AddInt("csv-every", &flags.csv_every, "a progress.csv row every N env steps");
  command_line.AddInt("save-every", &flags.save_every, "checkpoint every N updates");
  command_line.AddInt("eval-every", &flags.eval_every,
                      "evaluate the policy every N env steps, greedy and sampled, on envs of its "
                      "own (0 = never; --via=local only)");
  command_line.AddInt("eval-episodes", &flags.eval_episodes,
                      "episodes per evaluation and mode (run in parallel envs)");
  command_line.AddString("via", &flags.via,
                         "local: one process per run (LocalTrainer); up: each run as a local "
                         "cluster, `dreamfleet up` stopped at the budget");
  command_line.AddBool("replay-log", &flags.replay_log,
                       "log every training step to <run>/replay/ so that a resumed run keeps its "
                       "replay (45-290 bytes a step on disk; false: a resume starts with an empty "
                       "replay, and a log left by an earlier start is deleted, as it would fall "
                       "behind; --via=local only)");
  command_line.AddBool("summary-only", &flags.summary_only,
                       "train nothing: summarise and plot the runs already under --out");
  int exit_code = 0;
  if (!services::ParseCommandLineOrExit(command_line, argc, argv, &exit_code)) return exit_code;
  if (flags.via != "local" && flags.via != "up") {
    std::cerr << "bench_learning: --via must be local or up, got " << flags.via << "\n";
    return 2;
  }
  if (flags.csv_every < 1 || flags.save_every < 1 || flags.progress_seconds <= 0 ||
      flags.random_episodes < 0 || flags.constant_episodes < 0 || flags.steps < 0 ||
      flags.eval_every < 0 || flags.eval_episodes < 1) {
    std::cerr << "bench_learning: need --csv-every >= 1, --save-every >= 1, --progress-seconds "
                 "> 0, --random-episodes >= 0, --constant-episodes >= 0, --steps >= 0, "
                 "--eval-every >= 0, --eval-episodes "
                 ">= 1\n";
    return 2;
  }
  absl::StatusOr<std::vector<bench::LearningTask>> suite = bench::LoadLearningSuite(flags.suite);
  if (!suite.ok()) {
    std::cerr << "bench_learning: " << suite.status() << "\n";
    return 2;
  }
  std::vector<bench::LearningTask> tasks;
  const std::vector<std::string> wanted = absl::StrSplit(flags.tasks, ',', absl::SkipEmpty());
  for (const std::string& name : wanted) {
    auto it = std::find_if(suite->begin(), suite->end(),
                           [&](const bench::LearningTask& t) { return t.name == name; });
    if (it == suite->end()) {
      std::vector<std::string> names;
      for (const auto& t : *suite) names.push_back(t.name);
      std::cerr << "bench_learning: no task " << name << " in " << flags.suite
                << " (tasks: " << absl::StrJoin(names, ", ") << ")\n";
      return 2;
    }
    tasks.push_back(*it);
  }
  if (wanted.empty()) tasks = *suite;
  if (!flags.seeds.empty()) {
    absl::StatusOr<std::vector<int64_t>> seeds = ParseSeeds(flags.seeds);
    if (!seeds.ok()) {
      std::cerr << "bench_learning: " << seeds.status().message() << "\n";
      return 2;
    }
    for (bench::LearningTask& task : tasks) task.seeds = *seeds;
  }
  if (flags.steps > 0) {
    for (bench::LearningTask& task : tasks) task.env_steps = flags.steps;
  }
  services::InstallShutdownHandler();

  std::vector<bench::TaskSummary> summaries;
  std::vector<double> random_scores;
  for (const bench::LearningTask& task : tasks) {
    const std::string task_dir = flags.out + "/" + task.name;
    std::error_code error;
    fs::create_directories(task_dir, error);
    if (error) {
      std::cerr << "bench_learning: cannot create " << task_dir << ": " << error.message() << "\n";
      return 1;
    }
    double random_score = NAN;
    std::vector<services::CurveLevel> baselines;
    // The baselines play the task's config at run.seed 0 (their cache is keyed by it).
    const absl::StatusOr<services::Config> config = TaskConfig(task, flags, 0);
    if (flags.random_episodes > 0) {
      absl::StatusOr<PolicyScore> random =
          config.ok() ? MeasurePolicy(*config, task_dir, "random_policy.txt", flags.random_episodes,
                                      /*action=*/-1)
                      : absl::StatusOr<PolicyScore>(config.status());
      if (absl::IsCancelled(random.status())) return 130;
      if (random.ok() && random->episodes == 0) {
        random = absl::FailedPreconditionError("it ended no episode in 1M steps");
      }
      if (!random.ok()) {
        std::cerr << "bench_learning: " << task.name << ": random policy: " << random.status()
                  << "\n";
        return 1;
      }
      random_score = task.metric == "success" ? random->success : random->mean_return;
      std::printf("[%s] random policy: return %.3f, success %.2f over %lld episodes\n",
                  task.name.c_str(), random->mean_return, random->success,
                  static_cast<long long>(random->episodes));
      std::fflush(stdout);
      baselines.push_back({"random policy", random_score});
    }
    if (flags.constant_episodes > 0 && !services::ShutdownRequested()) {
      absl::StatusOr<envs::EnvSpec> spec =
          config.ok() ? envs::LookupEnvSpec(envs::EnvOptionsFromConfig(*config, 0))
                      : absl::StatusOr<envs::EnvSpec>(config.status());
      absl::StatusOr<std::optional<PolicyScore>> best =
          spec.ok() ? MeasureBestConstantAction(task, *config, task_dir, flags.constant_episodes,
                                                spec->num_actions)
                    : absl::StatusOr<std::optional<PolicyScore>>(spec.status());
      if (absl::IsCancelled(best.status())) return 130;
      if (!best.ok()) {
        std::cerr << "bench_learning: " << task.name << ": best constant action: " << best.status()
                  << "\n";
        return 1;
      }
      if (!best->has_value()) {
        std::printf("[%s] no constant action ends an episode within 1M steps: no level drawn\n",
                    task.name.c_str());
      } else {
        const PolicyScore& b = **best;
        const std::vector<std::string>& names = spec->action_names;
        const std::string action = b.action < static_cast<int>(names.size())
                                       ? absl::StrCat(b.action, " (", names[b.action], ")")
                                       : absl::StrCat(b.action);
        const double level = task.metric == "success" ? b.success : b.mean_return;
        // A level at or below the random policy's says nothing the random one does not.
        const bool drawn = !(level <= random_score);
        std::printf(
            "[%s] best constant action: always %s, return %.3f, success %.2f over %lld "
            "episodes%s\n",
            task.name.c_str(), action.c_str(), b.mean_return, b.success,
            static_cast<long long>(b.episodes),
            drawn ? "" : " (not above the random policy: no level drawn)");
        if (drawn) baselines.push_back({absl::StrCat("always action ", action), level});
      }
      std::fflush(stdout);
    }
    std::vector<bench::SeedResult> results;
    for (int64_t seed : task.seeds) {
      const std::string run_dir = absl::StrCat(task_dir, "/seed", seed);
      if (!flags.summary_only && !services::ShutdownRequested()) {
        absl::StatusOr<bool> finished = RunSeed(task, flags, seed, baselines, run_dir);
        if (!finished.ok()) {
          std::cerr << "bench_learning: " << task.name << " seed " << seed << ": "
                    << finished.status() << "\n";
          return 1;
        }
      }
      bench::SeedResult result;
      result.seed = seed;
      if (absl::StatusOr<services::Curve> curve = services::ReadCurve(run_dir + "/progress.csv");
          curve.ok()) {
        result.curve = std::move(*curve);
      } else if (!absl::IsNotFound(curve.status())) {
        std::cerr << "bench_learning: " << curve.status() << "\n";
      }
      results.push_back(std::move(result));
    }
    std::vector<services::PlotSeries> series;
    for (const bench::SeedResult& r : results) {
      if (!r.curve.rows.empty()) {
        AddRunSeries(task, r.curve, absl::StrCat("seed ", r.seed),
                     absl::StrCat("seed ", r.seed, " greedy evaluation"), &series);
      }
    }
    if (!series.empty()) {
      absl::Status plotted =
          services::PlotPng(series, PlotOptionsFor(task, baselines), task_dir + "/curve.png");
      if (!plotted.ok()) std::cerr << "bench_learning: " << plotted << "\n";
    }
    summaries.push_back(bench::Summarize(task, results));
    random_scores.push_back(random_score);
  }
  const std::string markdown = bench::SummaryMarkdown(tasks, summaries, random_scores);
  std::printf("\n%s", markdown.c_str());
  if (std::ofstream out(flags.out + "/summary.md"); !(out << markdown)) {
    std::cerr << "bench_learning: cannot write " << flags.out << "/summary.md\n";
    return 1;
  }
  return services::ShutdownRequested() ? 130 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  services::EnsureThreadEnvironment(argc, argv);
  return Main(argc, argv);
}
