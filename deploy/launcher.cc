#include "deploy/launcher.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "deploy/cluster_status.h"
#include "deploy/process_supervisor.h"
#include "services/checkpoint_layout.h"
#include "services/command_line.h"
#include "services/config.h"
#include "services/durable_file.h"
#include "services/learning_curve.h"
#include "services/logging.h"
#include "services/shutdown.h"

namespace dreamfleet::deploy {
namespace {

// <run.dir>/progress.csv of a cluster run: a row at most every 10 s (and one at the end) from the
// status the progress view shows (env steps inserted into replay, learner updates and losses, the
// actors' mean return and success over their last 100 episodes, the learner's latest evaluation),
// and curve.png of it when the run stops. A run started again on the same run.dir appends, its wall
// clock continuing from the last row (the shards' inserted steps continue by themselves).
class ClusterCurve {
 public:
  explicit ClusterCurve(const std::string& run_dir)
      : csv_(run_dir + "/progress.csv"), png_(run_dir + "/curve.png") {
    if (absl::StatusOr<services::Curve> before = services::ReadCurve(csv_);
        before.ok() && !before->rows.empty()) {
      wall_offset_ = before->rows.back().wall_seconds;
      last_steps_ = static_cast<double>(before->rows.back().env_steps);
      last_updates_ = before->rows.back().updates;
    }
    absl::StatusOr<services::CurveWriter> writer = services::CurveWriter::Open(csv_);
    if (writer.ok()) {
      writer_.emplace(std::move(*writer));
    } else {
      std::cerr << "dreamfleet up: no learning curve: " << writer.status().message() << "\n";
    }
  }

  // `force`: record even within 10 s of the last row (the final status of a run).
  void Record(const ClusterStatus& status, absl::Duration elapsed, bool force = false) {
    // Env steps are the steps the shards inserted: they survive restarts of actors and of the
    // run, where the actors' own counters start again from 0.
    const double steps = static_cast<double>(status.replay_steps());
    if (!writer_ || steps <= 0 || steps < last_steps_) return;
    if (!force && elapsed - last_ < absl::Seconds(10)) return;
    // A learner not (yet) answering reports no updates or losses: no row, rather than a dip.
    if (!force && !status.learner.up) return;
    // The final status of a run that made no progress since the last row adds nothing.
    if (steps == last_steps_ && status.learner.updates == last_updates_) return;
    last_ = elapsed;
    last_steps_ = steps;
    last_updates_ = status.learner.updates;
    services::CurveRow row;
    row.env_steps = static_cast<int64_t>(steps);
    row.updates = status.learner.updates;
    row.wall_seconds = wall_offset_ + absl::ToDoubleSeconds(elapsed);
    for (const ActorStatus& actor : status.actors) row.episodes += static_cast<int64_t>(actor.episodes);
    row.mean_return = status.episode_return();
    row.success = status.success_rate();
    row.losses = services::CurveLosses(status.learner.losses);
    if (status.learner.updates > 0) row.stats["entropy"] = status.learner.entropy;
    if (const LearnerStatus::Evaluation& e = status.learner.evaluation; e.env_steps >= 0) {
      row.eval = {{"env_steps", static_cast<double>(e.env_steps)},
                  {"greedy_return", e.greedy_return},
                  {"greedy_success", e.greedy_success},
                  {"sampled_return", e.sampled_return},
                  {"sampled_success", e.sampled_success}};
    }
    if (absl::Status appended = writer_->Append(row); !appended.ok()) {
      std::cerr << "dreamfleet up: " << appended.message() << "\n";
      writer_.reset();
    }
  }

  void Plot(const std::string& title) const {
    absl::StatusOr<services::Curve> curve = services::ReadCurve(csv_);
    if (!curve.ok() || curve->rows.size() < 2) return;
    services::PlotOptions options;
    options.title = title;
    options.y_label = "mean return (actors, last 100 episodes)";
    // The learner's greedy evaluations, as dots, when it evaluated.
    std::vector<services::PlotSeries> series = {services::ReturnSeries(*curve, "")};
    services::PlotSeries greedy =
        services::EvalSeries(*curve, "greedy_return", "greedy evaluation");
    if (!greedy.points.empty()) {
      series[0].label = "actors' episodes";
      series.push_back(std::move(greedy));
    }
    if (absl::Status plotted = services::PlotPng(series, options, png_); !plotted.ok()) {
      std::cerr << "dreamfleet up: " << plotted.message() << "\n";
    }
  }

  const std::string& png() const { return png_; }

 private:
  std::string csv_, png_;
  std::optional<services::CurveWriter> writer_;
  double wall_offset_ = 0;
  double last_steps_ = 0;
  int64_t last_updates_ = -1;
  absl::Duration last_ = -absl::InfiniteDuration();
};

bool Executable(const std::string& path) { return access(path.c_str(), X_OK) == 0; }

struct Plan {
  std::vector<ProcessSpec> specs;
  std::vector<std::string> missing;
  int actors = 0;
};

Plan MakePlan(const services::Config& config, const std::string& config_path,
              const std::string& log_dir) {
  Plan plan;
  const std::string bin = BinDir();
  const std::string replay = bin + "/dreamfleet-replay";
  const std::string learner = bin + "/dreamfleet-learner";
  const std::string actor = bin + "/dreamfleet-actor";
  auto add = [&](const std::string& name, const std::string& binary,
                 std::vector<std::string> extra) {
    ProcessSpec spec;
    spec.name = name;
    spec.argv = {binary, "--config", config_path};
    spec.argv.insert(spec.argv.end(), extra.begin(), extra.end());
    spec.log_path = absl::StrCat(log_dir, "/", name, ".log");
    plan.specs.push_back(std::move(spec));
  };
  if (Executable(replay)) {
    for (int64_t i = 0; i < config.replay.shards; ++i) {
      add(absl::StrCat("replay-", i), replay, {"--shard-index", absl::StrCat(i)});
    }
  } else {
    plan.missing.push_back(replay);
  }
  if (Executable(learner)) {
    add("learner", learner, {});
  } else {
    plan.missing.push_back(learner);
  }
  if (Executable(actor)) {
    for (int64_t i = 0; i < config.actor.count; ++i) {
      add(absl::StrCat("actor-", i), actor,
          {"--actor-index", absl::StrCat(i), "--actor-id", absl::StrCat("actor-", i)});
    }
    plan.actors = static_cast<int>(config.actor.count);
  } else {
    plan.missing.push_back(actor);
  }
  return plan;
}

std::string ProgressText(const ClusterStatus& status, const ProcessSupervisor& supervisor,
                         absl::Duration elapsed, double steps_per_second) {
  std::string out = absl::StrFormat(
      "dreamfleet up  %s elapsed | env steps %.0f (%.0f/s; %d in replay) | updates %d (%.2f/s) | "
      "weights v%d | return %.3f | success %.0f%%\n",
      absl::FormatDuration(absl::Trunc(elapsed, absl::Seconds(1))), status.env_steps(),
      steps_per_second, status.replay_steps(), status.learner.updates,
      status.learner.updates_per_second, status.learner.weights_version, status.episode_return(),
      100 * status.success_rate());
  if (const LearnerStatus::Evaluation& e = status.learner.evaluation; e.env_steps >= 0) {
    out.pop_back();  // the evaluation goes on the same line
    absl::StrAppend(&out, absl::StrFormat(" | eval greedy %.2f sampled %.2f (best %.2f)\n",
                                          e.greedy_return, e.sampled_return, e.best_return));
  }
  std::string processes = "  processes:";
  for (const ProcessState& state : supervisor.States()) {
    absl::StrAppend(&processes, " ", state.name, state.pid > 0 ? "" : "(down)");
    if (state.restarts > 0) absl::StrAppend(&processes, "[", state.restarts, " restarts]");
  }
  return out + processes + "\n";
}

}  // namespace

std::string BinDir() {
  std::error_code error;
  auto self = std::filesystem::read_symlink("/proc/self/exe", error);
  return error ? std::string("build/bin") : self.parent_path().string();
}

namespace {

// Replaces this process with `program` from BinDir(), passing argv[first..].
int ExecFromBinDir(const std::string& program, int argc, char** argv, int first) {
  const std::string binary = BinDir() + "/" + program;
  std::vector<char*> args = {const_cast<char*>(binary.c_str())};
  for (int i = first; i < argc; ++i) args.push_back(argv[i]);
  args.push_back(nullptr);
  execv(binary.c_str(), args.data());
  std::cerr << "error: cannot run " << binary << ": " << std::strerror(errno)
            << " (it is built with the learner and the replay server)\n";
  return 1;
}

}  // namespace

int RunPlay(int argc, char** argv) { return ExecFromBinDir("dreamfleet-play", argc, argv, 1); }

int RunReport(int argc, char** argv) { return ExecFromBinDir("dreamfleet-report", argc, argv, 1); }

int RunUp(int argc, char** argv) {
  std::string config_path;
  double max_minutes = 0;
  double until_success = 0;
  int64_t max_env_steps = 0;
  bool json = false;
  services::CommandLine command_line(
      "dreamfleet up [--config FILE] [--set section.key=value]... [flags]",
      "Runs a local cluster: replay.shards replay shards, one learner and actor.count actors, from "
      "one config (default: the embedded configs/default.yaml). Logs go to <run.dir>/logs/, the "
      "merged config to <run.dir>/config.yaml, process ids to <run.dir>/processes.txt and the final "
      "summary to <run.dir>/summary.json. "
      "Ctrl-C stops every process cleanly.");
  command_line.AddConfigFlags();
  command_line.AddDouble("max-minutes", &max_minutes, "Stop after this many minutes (0 = never).");
  command_line.AddDouble("until-success", &until_success,
                         "Stop once the actors' success rate reaches this fraction, e.g. 0.9 "
                         "(0 = never).");
  command_line.AddInt("max-env-steps", &max_env_steps,
                      "Stop once the shards hold this many inserted env steps (0 = never): the "
                      "progress line's \"in replay\" figure, which the actors' own count runs a "
                      "little ahead of while the rate limiter holds them; bench_learning "
                      "--via=up uses it as the budget.");
  command_line.AddBool("json", &json, "Print the final summary as JSON only.");
  std::string resume = "latest";
  command_line.AddString(
      "resume", &resume,
      "Where the learner of an existing run.dir starts: latest (its latest checkpoint in "
      "<run.dir>/learner) or best (the agent of the best greedy evaluation, <run.dir>/best: the "
      "learner's checkpoints are moved aside to <run.dir>/learner.before-best-<time>/, a copy of "
      "the best agent becomes its latest checkpoint, and the run carries on from it with the "
      "replay it has).");
  int exit_code = 0;
  if (!services::ParseCommandLineOrExit(command_line, argc, argv, &exit_code)) return exit_code;
  if (resume != "latest" && resume != "best") {
    std::cerr << "error: --resume must be latest or best, got \"" << resume << "\"\n";
    return 2;
  }
  std::optional<services::Config> config =
      services::LoadConfigOrExit(command_line, "error", /*validate_cluster=*/true, &exit_code);
  if (!config) return exit_code;
  services::InstallShutdownHandler();
  services::SetLogComponent("up");

  const std::string run_dir = config->run.dir;
  const std::string log_dir = run_dir + "/logs";
  std::error_code error;
  std::filesystem::create_directories(log_dir, error);
  if (error) {
    std::cerr << "error: cannot create run directory " << log_dir << ": " << error.message() << "\n";
    return 1;
  }
  const std::string merged_path = run_dir + "/config.yaml";
  {
    std::ofstream out(merged_path);
    out << "# Merged config written by `dreamfleet up`; every process of this run reads it.\n"
        << services::ConfigToYaml(*config);
    if (!out) {
      std::cerr << "error: cannot write " << merged_path << "\n";
      return 1;
    }
  }

  Plan plan = MakePlan(*config, std::filesystem::absolute(merged_path).string(), log_dir);
  if (resume == "best") {
    // Nothing moves unless a learner will start from it.
    for (const std::string& missing : plan.missing) {
      if (missing.find("dreamfleet-learner") != std::string::npos) {
        std::cerr << "error: --resume best: " << missing << " is not built\n";
        return 2;
      }
    }
    std::string moved_to;
    absl::StatusOr<std::string> resumed = PrepareResumeFromBest(run_dir, &moved_to);
    if (!resumed.ok()) {
      std::cerr << "error: --resume best: " << resumed.status().message() << "\n";
      return 2;
    }
    if (!moved_to.empty()) {
      std::cerr << "dreamfleet up: moved the learner's checkpoints aside to " << moved_to << "\n";
    }
    std::cerr << "dreamfleet up: the learner resumes from a copy of the best agent, " << *resumed
              << "\n";
  }
  for (const std::string& missing : plan.missing) {
    std::cerr << "dreamfleet up: " << missing
              << " is not built; starting the cluster without it\n";
  }
  if (plan.specs.empty()) {
    std::cerr << "error: no dreamfleet binaries found next to " << BinDir() << "\n";
    return 1;
  }
  ProcessSupervisor supervisor;
  for (const ProcessSpec& spec : plan.specs) {
    if (absl::Status status = supervisor.Start(spec); !status.ok()) {
      std::cerr << "error: " << status.message() << "\n";
      supervisor.Stop();
      return 1;
    }
  }
  std::cerr << "dreamfleet up: started " << plan.specs.size() << " processes; logs in " << log_dir
            << "; Ctrl-C to stop\n";

  const bool tty = isatty(STDOUT_FILENO) && !json;
  const absl::Time start = absl::Now();
  absl::Time last_report = absl::InfinitePast();
  double last_steps = 0;
  absl::Time last_steps_time = start;
  ClusterStatus status;
  ClusterCurve curve(run_dir);
  std::string stop_reason = "interrupted";
  int exit_status = 0;
  int printed_lines = 0;
  // <run.dir>/processes.txt: "name pid restarts" per line, rewritten whenever a pid changes (for
  // scripts and tests that need to find a process of the run).
  std::string last_processes;
  auto write_processes = [&] {
    std::string text;
    for (const ProcessState& state : supervisor.States()) {
      absl::StrAppend(&text, state.name, " ", state.pid, " ", state.restarts, "\n");
    }
    if (text == last_processes) return;
    last_processes = text;
    if (absl::Status written = services::ReplaceFileDurably(run_dir + "/processes.txt", text);
        !written.ok()) {
      DF_LOG(WARNING) << written;
    }
  };
  write_processes();
  while (!services::WaitForShutdown(absl::Milliseconds(500))) {
    supervisor.Poll();
    write_processes();
    std::string failed;
    for (const ProcessState& state : supervisor.States()) {
      if (state.rejected_start) failed = state.name;
    }
    if (!failed.empty()) {
      // A process rejected the config or a file it names: say why and stop the run.
      std::string last_error;
      std::ifstream log(log_dir + "/" + failed + ".log");
      for (std::string line; std::getline(log, line);) {
        if (!line.empty() && (line[0] == 'E' || line[0] == 'F')) last_error = line;
      }
      std::cerr << "dreamfleet up: " << failed << " cannot start: "
                << (last_error.empty() ? "see " + log_dir + "/" + failed + ".log" : last_error)
                << "\n";
      stop_reason = failed + " failed";
      exit_status = 1;
      break;
    }
    const absl::Time now = absl::Now();
    if (now - last_report < absl::Seconds(tty ? 2 : 10)) continue;
    status = QueryCluster(*config, plan.actors);
    const double steps = status.env_steps();
    const double rate = (steps - last_steps) / std::max(1e-9, absl::ToDoubleSeconds(now - last_steps_time));
    last_steps = steps;
    last_steps_time = now;
    last_report = now;
    curve.Record(status, now - start);
    const std::string text = ProgressText(status, supervisor, now - start, rate);
    if (tty) {
      if (printed_lines > 0) std::cout << "\x1b[" << printed_lines << "F\x1b[J";
      printed_lines = 2;
      std::cout << text << std::flush;
    } else if (!json) {
      std::cout << text << std::flush;
    }
    if (max_minutes > 0 && now - start >= absl::Minutes(max_minutes)) {
      stop_reason = "max-minutes reached";
      break;
    }
    if (until_success > 0 && status.success_rate() >= until_success) {
      stop_reason = "success rate reached";
      break;
    }
    if (max_env_steps > 0 && status.replay_steps() >= static_cast<uint64_t>(max_env_steps)) {
      stop_reason = "max-env-steps reached";
      break;
    }
  }
  const absl::Duration elapsed = absl::Now() - start;
  status = QueryCluster(*config, plan.actors);
  std::cerr << "dreamfleet up: stopping (" << stop_reason << ")\n";
  // Actors first (they hand their last steps to replay), then the learner (it checkpoints), then
  // the shards (they checkpoint their tables).
  supervisor.Stop(absl::Seconds(20), "actor-");
  supervisor.Stop(absl::Seconds(60), "learner");
  supervisor.Stop(absl::Seconds(60));
  curve.Record(status, elapsed, /*force=*/true);
  const std::string summary = absl::StrCat(
      "{\"stop_reason\":\"", stop_reason, "\",\"wall_seconds\":", absl::ToDoubleSeconds(elapsed),
      ",\"env_steps\":", status.env_steps(), ",\"updates\":", status.learner.updates,
      ",\"weights_version\":", status.learner.weights_version,
      ",\"success_rate\":", status.success_rate(), ",\"episode_return\":", status.episode_return(),
      ",\"replay_inserted_steps\":", status.replay_steps(), ",\"cluster\":", status.ToJson(), "}");
  std::ofstream(run_dir + "/summary.json") << summary << "\n";
  curve.Plot(config->run.name);
  if (json) {
    std::cout << summary << "\n";
  } else {
    std::cout << absl::StrFormat(
        "\nSummary (%s): %.1f min, %.0f env steps (%d in replay), %d updates, weights v%d, "
        "success %.0f%%, return %.3f\nDetails: %s/summary.json, learning curve: %s/progress.csv "
        "(dreamfleet plot %s), logs: %s\n",
        stop_reason, absl::ToDoubleMinutes(elapsed), status.env_steps(), status.replay_steps(),
        status.learner.updates, status.learner.weights_version, 100 * status.success_rate(),
        status.episode_return(), run_dir, run_dir, run_dir, log_dir);
  }
  return exit_status;
}

int RunStatus(int argc, char** argv) {
  bool json = false;
  int64_t actors = -1;
  services::CommandLine command_line(
      "dreamfleet status [--config FILE] [--set ...] [--json]",
      "Shows the learner, every replay shard and every actor of a running cluster, found through "
      "the addresses in the config.");
  command_line.AddConfigFlags();
  command_line.AddBool("json", &json, "Print JSON instead of the table.");
  command_line.AddInt("actors", &actors, "Actors to scrape (default: actor.count).");
  int exit_code = 0;
  if (!services::ParseCommandLineOrExit(command_line, argc, argv, &exit_code)) return exit_code;
  std::optional<services::Config> config =
      services::LoadConfigOrExit(command_line, "error", /*validate_cluster=*/false, &exit_code);
  if (!config) return exit_code;
  ClusterStatus status =
      QueryCluster(*config, actors >= 0 ? static_cast<int>(actors) : static_cast<int>(config->actor.count));
  std::cout << (json ? status.ToJson() + "\n" : status.ToText());
  bool any_up = status.learner.up;
  for (const auto& shard : status.shards) any_up |= shard.up;
  return any_up ? 0 : 1;
}

absl::StatusOr<std::string> PrepareResumeFromBest(const std::string& run_dir,
                                                  std::string* moved_to) {
  namespace fs = std::filesystem;
  moved_to->clear();
  std::error_code error;
  const fs::path run = fs::path(run_dir);
  const fs::path best = run / "best";
  // The learner's BestAgent writes a checkpoint directory there (services/checkpoint_layout.h).
  absl::StatusOr<std::string> best_dir = services::LatestCheckpointDir(best.string());
  if (absl::IsNotFound(best_dir.status()) ||
      (best_dir.ok() && !fs::is_directory(*best_dir, error))) {
    return absl::NotFoundError(absl::StrCat(
        "no best agent in ", best.string(),
        ": the learner keeps one once it has evaluated (learner.eval_every_updates > 0)"));
  }
  if (!best_dir.ok()) return best_dir.status();
  const std::string name = fs::path(*best_dir).filename().string();
  // The copy is named by the agent's update count, as the learner names its own checkpoints, so
  // the learner's next checkpoints sort after it.
  std::string target = name;
  if (absl::StatusOr<std::map<std::string, int64_t>> counters =
          services::ReadCheckpointCounters(*best_dir);
      counters.ok() && counters->count("updates")) {
    target = services::CheckpointName(counters->at("updates"));
  }
  // Copy first, beside; then move the old checkpoints aside and the copy into place.
  const fs::path learner = run / "learner";
  const fs::path staging = run / "learner.from-best.tmp";
  fs::remove_all(staging, error);
  fs::create_directories(staging, error);
  if (!error) fs::copy(*best_dir, staging / target, fs::copy_options::recursive, error);
  bool failed = static_cast<bool>(error);
  std::string why = error.message();
  if (!failed) {
    if (absl::Status pointed = services::PointLatestAt(staging.string(), target); !pointed.ok()) {
      failed = true;
      why = pointed.ToString();
    }
  }
  if (failed) {
    fs::remove_all(staging, error);
    return absl::FailedPreconditionError(
        absl::StrCat("cannot copy ", *best_dir, " to ", staging.string(), ": ", why));
  }
  if (fs::exists(learner, error)) {
    const std::string stamp = absl::FormatTime("%Y%m%d-%H%M%S", absl::Now(), absl::LocalTimeZone());
    fs::path aside = run / ("learner.before-best-" + stamp);
    for (int i = 2; fs::exists(aside, error); ++i) {
      aside = run / absl::StrCat("learner.before-best-", stamp, "-", i);
    }
    fs::rename(learner, aside, error);
    if (error) {
      const std::string reason = error.message();
      fs::remove_all(staging, error);
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot move ", learner.string(), " aside to ", aside.string(), ": ", reason));
    }
    *moved_to = aside.string();
  }
  fs::rename(staging, learner, error);
  if (error) {
    return absl::FailedPreconditionError(absl::StrCat("cannot move ", staging.string(), " to ",
                                                      learner.string(), ": ", error.message()));
  }
  // The renames survive a crash; the copied files themselves are not fsynced (the old checkpoints
  // stay aside, whole, to go back to).
  if (absl::Status synced = services::SyncDirectory(run.string()); !synced.ok()) return synced;
  return (learner / target).string();
}

}  // namespace dreamfleet::deploy
