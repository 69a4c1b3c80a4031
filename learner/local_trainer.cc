#include "learner/local_trainer.h"

#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "dreamer/exploration.h"
#include "dreamer/policy.h"
#include "envs/env_config.h"
#include "envs/episode_log.h"
#include "envs/episode_window.h"
#include "learner/checkpoint.h"
#include "learner/replay_log.h"
#include "learner/sequence_replay.h"
#include "services/logging.h"
#include "services/status_macros.h"

namespace dreamfleet::learner {
namespace {

double Now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

}  // namespace

services::CurveRow CurveRowOf(const LocalProgress& p) {
  services::CurveRow row;
  row.env_steps = p.env_steps;
  row.updates = p.updates;
  row.wall_seconds = p.wall_seconds;
  row.episodes = p.episodes;
  row.mean_return = p.mean_return;
  row.success = p.success;
  row.window_episodes = p.window_episodes;
  row.losses = services::CurveLosses(p.losses);
  if (p.eval.env_steps >= 0) {
    row.eval = {{"env_steps", static_cast<double>(p.eval.env_steps)},
                {"greedy_return", p.eval.greedy_return},
                {"greedy_success", p.eval.greedy_success},
                {"sampled_return", p.eval.sampled_return},
                {"sampled_success", p.eval.sampled_success}};
  }
  for (const std::string& name : services::CurveStatNames()) {
    if (auto it = p.stats.find(name); it != p.stats.end()) row.stats[name] = it->second;
  }
  return row;
}

absl::Status LocalTrainerOptions::Validate() const {
  if (eval_every < 0 || eval_episodes < 1 || eval_max_steps < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "need eval every >= 0 env steps, eval episodes >= 1, eval max steps >= 1; got eval every ",
        eval_every, ", eval episodes ", eval_episodes, ", eval max steps ", eval_max_steps));
  }
  if (!best_dir.empty() && std::filesystem::path(best_dir).lexically_normal() ==
                               std::filesystem::path(checkpoint_dir).lexically_normal()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the best-agent directory must differ from the checkpoint directory (both ",
                     best_dir, ")"));
  }
  if (!best_dir.empty() && eval_every == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "a best-agent directory (", best_dir, ") needs evaluations: set eval every > 0 env steps"));
  }
  if (explore_hold > std::numeric_limits<int>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat("exploration: a longest hold of ", explore_hold, " steps is too long"));
  }
  RETURN_IF_ERROR(dreamer::HeldRandomActions::Validate(
      {explore_prob, static_cast<int>(std::max<int64_t>(explore_hold, 0))}));
  if (!(priority_exponent >= 0.0) || !std::isfinite(priority_exponent)) {
    return absl::InvalidArgumentError(
        absl::StrCat("need a priority exponent >= 0, got ", priority_exponent));
  }
  if (!(rewarded_share >= 0.0 && rewarded_share <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("need a rewarded share in [0, 1], got ", rewarded_share));
  }
  if (envs < 1 || batch < 1 || length < 2 || train_ratio < 0 || steps < 0 || save_every < 1 ||
      episode_window < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "need --envs >= 1, --batch >= 1, --length >= 2, --train-ratio >= 0, --steps >= 0, "
        "--save-every >= 1, episode window >= 1; got envs ",
        envs, ", batch ", batch, ", length ", length, ", train-ratio ", train_ratio, ", steps ",
        steps, ", save-every ", save_every, ", episode window ", episode_window));
  }
  if (!replay_log.empty() && checkpoint_dir.empty()) {
    // Only a checkpoint resumes with it: without one the log would only fill the disk.
    return absl::InvalidArgumentError(absl::StrCat(
        "a replay log (", replay_log, ") needs a checkpoint directory to resume from"));
  }
  return absl::OkStatus();
}

struct LocalTrainer::State {
  State(const dreamer::AgentConfig& config, const LocalTrainerOptions& o)
      : replay(
            config, static_cast<int>(o.envs),
            std::min<int64_t>(std::max<int64_t>(o.steps / o.envs + o.length, 4 * o.length), 250000),
            static_cast<uint64_t>(o.seed) + 17, o.priority_exponent, o.rewarded_share),
        generator(at::detail::createCPUGenerator(static_cast<uint64_t>(o.seed) + 23)),
        explore(static_cast<int>(o.envs), {o.explore_prob, static_cast<int>(o.explore_hold)},
                static_cast<uint64_t>(o.seed) + 31),
        recent(static_cast<size_t>(o.episode_window)) {}
  SequenceReplay replay;
  dreamer::Policy policy{nullptr};
  dreamer::PolicyState policy_state;
  torch::Generator generator;
  dreamer::HeldRandomActions explore;
  envs::EpisodeWindow recent;
  std::optional<envs::EpisodeLog> episode_log;
  std::unique_ptr<ReplayLog> replay_log;      // null without options.replay_log, or once it failed
  double replay_log_seconds = 0;              // spent writing it (LocalProgress)

  // Runs one write to replay_log (if still open) and adds its time to replay_log_seconds. After a
  // failure training goes on but no further steps are logged: only a resume loses them.
  template <typename Write>
  void WriteReplayLog(const std::string& dir, Write&& write) {
    if (!replay_log) return;
    const double start = Now();
    const absl::Status status = write(*replay_log);
    replay_log_seconds += Now() - start;
    if (!status.ok()) {
      DF_LOG(ERROR) << "replay log " << dir << ": " << status
                    << "; no further steps are logged (a resume refills replay up to here)";
      replay_log.reset();
    }
  }
  std::vector<services::StepRecord> records;  // the current tick's steps
  std::vector<int> actions;
  int64_t env_steps = 0;
  int64_t episodes = 0;
  double credit = 0;
  double start = Now();
  std::map<std::string, double> losses;
  std::map<std::string, double> stats;
  EvalResult eval;
  int64_t next_eval = 0;  // env steps at which the next evaluation is due
};

absl::StatusOr<std::unique_ptr<LocalTrainer>> LocalTrainer::Create(const LocalTrainerOptions& o) {
  RETURN_IF_ERROR(o.Validate());
  envs::EnvOptions env_options;
  env_options.name = o.env;
  env_options.base_seed = static_cast<uint64_t>(o.seed);
  env_options.image_size = static_cast<int>(o.image_size);
  env_options.view = o.view;
  env_options.action_set = o.action_set;
  ASSIGN_OR_RETURN(std::unique_ptr<envs::VectorEnv> envs,
                   envs::VectorEnv::Create(env_options, static_cast<int>(o.envs)));

  dreamer::AgentConfig config;
  RETURN_IF_ERROR(dreamer::ApplyPreset(o.preset, &config));
  dreamer::ApplyEnvSpec(envs->spec(), &config);
  config.batch_size = static_cast<int>(o.batch);
  config.batch_length = static_cast<int>(o.length);
  config.seed = static_cast<uint64_t>(o.seed);
  config.threads = static_cast<int>(o.threads);
  config.lr = static_cast<float>(o.lr);
  config.warmup = static_cast<int>(o.warmup);
  for (const std::string& assignment : o.agent_sets) {
    const auto eq = assignment.find('=');
    if (eq == std::string::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat("--agent=", assignment, " is not of the form KEY=VALUE"));
    }
    RETURN_IF_ERROR(config.Set(assignment.substr(0, eq), assignment.substr(eq + 1)));
  }
  return Build(o, env_options, std::move(envs), config);
}

absl::StatusOr<std::unique_ptr<LocalTrainer>> LocalTrainer::Create(const services::Config& config,
                                                                   const LocalTrainerOptions& run) {
  RETURN_IF_ERROR(config.Validate());
  if (config.replay.samples_per_insert <= 0) {
    return absl::InvalidArgumentError(
        "replay.samples_per_insert is 0 (no rate limit); training in one process needs it as the "
        "train ratio (replayed steps per env step), e.g. --set replay.samples_per_insert=16");
  }
  LocalTrainerOptions o = run;
  if (config.replay.selector == "recency") {
    return absl::InvalidArgumentError(
        "replay.selector recency is not available in the single-process trainer (bench_learning, "
        "train_local): use uniform or prioritized here, or recency in `dreamfleet up`");
  }
  o.priority_exponent =
      config.replay.selector == "prioritized" ? config.replay.priority_exponent : 0.0;
  if (config.replay.selector == "prioritized" && o.priority_exponent == 0.0) {
    DF_LOG(WARNING) << "replay.selector prioritized with replay.priority_exponent 0 samples "
                       "uniformly";
  }
  o.rewarded_share = config.replay.rewarded_share;
  o.env = config.env.name;
  o.preset = config.learner.preset;
  o.envs = config.actor.count * config.actor.envs_per_actor;
  o.train_ratio = config.replay.samples_per_insert;
  o.batch = config.learner.batch_size;
  o.length = config.learner.batch_length;
  o.seed = config.run.seed;
  o.threads = config.learner.threads;
  o.explore_prob = config.actor.explore_prob;
  o.explore_hold = config.actor.explore_hold;
  o.agent_sets.clear();
  RETURN_IF_ERROR(o.Validate());
  const envs::EnvOptions env_options = envs::EnvOptionsFromConfig(config, 0);
  ASSIGN_OR_RETURN(std::unique_ptr<envs::VectorEnv> envs,
                   envs::VectorEnv::Create(env_options, static_cast<int>(o.envs)));
  ASSIGN_OR_RETURN(dreamer::AgentConfig agent, dreamer::AgentConfigFromConfig(config, envs->spec()));
  return Build(o, env_options, std::move(envs), agent);
}

absl::StatusOr<std::unique_ptr<LocalTrainer>> LocalTrainer::Build(
    const LocalTrainerOptions& o, const envs::EnvOptions& env_options,
    std::unique_ptr<envs::VectorEnv> envs, const dreamer::AgentConfig& config) {
  ASSIGN_OR_RETURN(std::unique_ptr<DreamerAgent> agent, DreamerAgent::Create(config));
  std::unique_ptr<LocalTrainer> trainer(new LocalTrainer(o, std::move(envs), std::move(agent)));
  if (o.eval_every > 0) {
    // Its own sampling seed: evaluating never changes training.
    ASSIGN_OR_RETURN(trainer->evaluator_,
                     Evaluator::Create(env_options, o.eval_episodes, o.eval_max_steps,
                                       static_cast<uint64_t>(o.seed) + 29));
  }
  ASSIGN_OR_RETURN(trainer->started_from_,
                   RestoreOrInitialize(*trainer->agent_, o.checkpoint_dir, o.init_from));
  if (trainer->resumed()) trainer->state_->env_steps = trainer->agent_->counters()["env_steps"];
  // Before the episode log, which a refused replay log must leave as it is.
  if (!o.replay_log.empty()) RETURN_IF_ERROR(trainer->OpenReplayLog());
  if (!o.episode_log.empty()) {
    State& s = *trainer->state_;
    if (trainer->started_from_ == StartedFrom::kCheckpoint) {
      // The episodes that ended up to the checkpoint carry on the window; later ones are played
      // again.
      std::vector<envs::LoggedEpisode> kept;
      ASSIGN_OR_RETURN(envs::EpisodeLog log,
                       envs::EpisodeLog::Resume(o.episode_log, s.env_steps, &kept));
      for (const envs::LoggedEpisode& e : kept) s.recent.Add(e.stats);
      s.episodes = static_cast<int64_t>(kept.size());
      trainer->episodes_from_log_ = true;
      s.episode_log.emplace(std::move(log));
    } else {
      std::error_code error;
      if (trainer->started_from_ == StartedFrom::kInitFrom &&
          std::filesystem::file_size(o.episode_log, error) > 0 && !error) {
        // Most likely the other run's own log: never emptied by a run that only starts from it.
        return absl::InvalidArgumentError(
            absl::StrCat("the episode log ", o.episode_log,
                         " already holds episodes; a run started from another run's agent "
                         "(init_from) needs a new one"));
      }
      ASSIGN_OR_RETURN(envs::EpisodeLog log, envs::EpisodeLog::Create(o.episode_log));
      s.episode_log.emplace(std::move(log));
    }
  }
  RETURN_IF_ERROR(trainer->envs_->Reset());
  if (o.eval_every > 0) {
    // The first evaluation after the start (or the resumed step) lands on a multiple of eval_every.
    trainer->state_->next_eval = (trainer->state_->env_steps / o.eval_every + 1) * o.eval_every;
  }
  if (!o.best_dir.empty()) {
    ASSIGN_OR_RETURN(trainer->best_, BestAgent::Open(o.best_dir, /*fresh=*/!trainer->resumed()));
  }
  return trainer;
}

absl::Status LocalTrainer::OpenReplayLog() {
  State& s = *state_;
  const std::string& dir = options_.replay_log;
  if (started_from_ == StartedFrom::kInitFrom) {
    // Most likely the other run's own log: never emptied by a run that only starts from it.
    ASSIGN_OR_RETURN(const bool holds_ticks, ReplayLog::HoldsTicks(dir));
    if (holds_ticks) {
      return absl::InvalidArgumentError(
          absl::StrCat("the replay log ", dir,
                       " already holds steps; a run started from another run's agent "
                       "(init_from) needs a new one"));
    }
  }
  const dreamer::AgentConfig& config = agent_->config();
  ReplayLogLayout layout;
  layout.shape = dreamer::StepShapeOf(config);
  layout.envs = static_cast<int>(options_.envs);
  if (s.replay.context()) {
    layout.deter = config.deter;
    layout.stoch = config.stoch;
    layout.classes = config.classes;
  }
  const bool own = started_from_ == StartedFrom::kCheckpoint;
  ReplayLogResume resumed;
  ASSIGN_OR_RETURN(s.replay_log,
                   ReplayLog::Open(
                       dir, layout, s.env_steps, own,
                       [&s](int env, const services::StepRecord& step, const float* deter,
                            const float* stoch) { s.replay.Add(env, step, deter, stoch); },
                       &resumed));
  restored_replay_steps_ = s.replay.size();  // what the ring kept of the logged ticks
  if (resumed.torn > 0) {
    DF_LOG(INFO) << "replay log " << dir << ": cut the torn tail its last writer left";
  }
  if (resumed.damaged > 0) {
    DF_LOG(WARNING) << "replay log " << dir << ": " << resumed.damaged
                    << " damaged stretch(es) skipped, the first: " << resumed.damage;
  }
  if (own && resumed.ticks == 0 && s.env_steps > 0) {
    DF_LOG(WARNING) << "replay log " << dir << " holds no steps before the checkpoint's env step "
                    << s.env_steps << ": replay starts empty";
  } else if (own && resumed.last_env_step + options_.envs < s.env_steps) {
    DF_LOG(WARNING) << "replay log " << dir << " ends at env step "
                    << resumed.last_env_step + options_.envs << ", before the checkpoint's "
                    << s.env_steps << ": replay resumes with the steps it has";
  }
  return absl::OkStatus();
}

int64_t LocalTrainer::replay_size() const { return state_->replay.size(); }

LocalTrainer::LocalTrainer(const LocalTrainerOptions& options,
                           std::unique_ptr<envs::VectorEnv> envs,
                           std::unique_ptr<DreamerAgent> agent)
    : options_(options), envs_(std::move(envs)), agent_(std::move(agent)) {
  state_ = std::make_unique<State>(agent_->config(), options_);
  state_->policy = agent_->policy();
  state_->policy_state = state_->policy->Initial(options_.envs);
}

LocalTrainer::~LocalTrainer() = default;

absl::Status LocalTrainer::Tick() {
  State& s = *state_;
  RETURN_IF_ERROR(dreamer::ActOnEnvs(s.policy, *envs_, &s.policy_state, s.generator, &s.actions,
                                     /*greedy=*/false, &s.explore));
  s.records.clear();
  for (int i = 0; i < options_.envs; ++i) s.records.push_back(envs_->Record(i, s.actions[i]));
  const float* deter_data = nullptr;  // [envs, deter] with replay context
  const float* stoch_data = nullptr;  // [envs, stoch x classes]
  torch::Tensor deter, stoch;
  if (s.replay.context()) {
    // The latent the policy just computed for each env's current step (replay context).
    deter = s.policy_state.deter.to(torch::kCPU, torch::kFloat).contiguous();
    stoch = s.policy_state.stoch.to(torch::kCPU, torch::kFloat).contiguous();
    deter_data = deter.data_ptr<float>();
    stoch_data = stoch.data_ptr<float>();
    for (int i = 0; i < options_.envs; ++i) {
      s.replay.Add(i, s.records[i], deter[i].data_ptr<float>(), stoch[i].data_ptr<float>());
    }
  } else {
    for (int i = 0; i < options_.envs; ++i) s.replay.Add(i, s.records[i]);
  }
  s.WriteReplayLog(options_.replay_log, [&](ReplayLog& log) {
    return log.Append(s.env_steps, s.records, deter_data, stoch_data);
  });
  if (absl::Status status = envs_->Step(s.actions); !status.ok()) {
    return absl::Status(status.code(), absl::StrCat("env step failed: ", status.message()));
  }
  s.env_steps += options_.envs;
  for (const envs::EpisodeStats& episode : envs_->finished_episodes()) {
    ++s.episodes;
    s.recent.Add(episode);
    if (s.episode_log.has_value()) RETURN_IF_ERROR(s.episode_log->Append(s.env_steps, episode));
  }
  RETURN_IF_ERROR(Train());
  if (evaluator_ && s.env_steps >= s.next_eval) {
    ASSIGN_OR_RETURN(s.eval, Evaluate());
    while (s.next_eval <= s.env_steps) s.next_eval += options_.eval_every;
    if (best_.has_value()) {
      agent_->counters()["env_steps"] = s.env_steps;
      // A failed best checkpoint does not stop training; the next better one may succeed.
      if (absl::StatusOr<bool> saved = best_->Offer(*agent_, s.eval); !saved.ok()) {
        DF_LOG(ERROR) << "best checkpoint: " << saved.status();
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<EvalResult> LocalTrainer::Evaluate() {
  if (!evaluator_) {
    return absl::FailedPreconditionError("no evaluation envs: the trainer runs with eval_every 0");
  }
  return evaluator_->Run(state_->policy, state_->env_steps);
}

absl::Status LocalTrainer::Train() {
  State& s = *state_;
  const int64_t replayed_per_update = options_.batch * options_.length;
  const int64_t train_fill = std::max<int64_t>(replayed_per_update, 1024);
  if (s.replay.size() < train_fill || !s.replay.CanSample(options_.length)) return absl::OkStatus();
  s.credit += options_.train_ratio * options_.envs;
  while (s.credit >= replayed_per_update) {
    s.credit -= replayed_per_update;
    absl::StatusOr<TrainMetrics> metrics =
        agent_->Train(s.replay.Sample(options_.batch, options_.length));
    if (!metrics.ok()) {
      return absl::Status(metrics.status().code(),
                          absl::StrCat("update failed: ", metrics.status().message()));
    }
    if (!metrics->skipped) {
      s.losses = metrics->losses;
      s.stats = metrics->metrics;
    }
    if (!metrics->skipped && s.replay.prioritized() &&
        !s.replay.SetPriorities(metrics->sequence_losses)) {
      return absl::InternalError("prioritised replay: the update's losses do not fit its batch");
    }
    if (!metrics->skipped && s.replay.context() &&
        !s.replay.WriteBack(metrics->posterior_deter, metrics->posterior_stoch)) {
      return absl::InternalError("replay context: the update's latents do not fit its batch");
    }
    if (!options_.checkpoint_dir.empty() && agent_->updates() % options_.save_every == 0) {
      // A failed periodic checkpoint does not stop training; the next one may succeed.
      if (absl::Status saved = Save(); !saved.ok()) DF_LOG(ERROR) << "checkpoint: " << saved;
    }
  }
  return absl::OkStatus();
}

bool LocalTrainer::reached_success() const {
  return options_.until_success > 0 && state_->recent.full() &&
         state_->recent.success_rate() >= options_.until_success;
}

bool LocalTrainer::done() const { return state_->env_steps >= options_.steps || reached_success(); }

LocalProgress LocalTrainer::Progress() const {
  LocalProgress p;
  p.env_steps = state_->env_steps;
  p.updates = agent_->updates();
  p.skipped_updates = agent_->skipped_updates();
  p.episodes = state_->episodes;
  p.mean_return = state_->recent.mean_return();
  p.success = state_->recent.success_rate();
  p.window_episodes = static_cast<int64_t>(state_->recent.size());
  p.explored_steps = state_->explore.explored_steps();
  p.rewarded_windows = state_->replay.rewarded_draws();
  p.wall_seconds = Now() - state_->start;
  p.replay_log_seconds = state_->replay_log_seconds;
  p.replay_logging = state_->replay_log != nullptr;
  p.losses = state_->losses;
  p.stats = state_->stats;
  p.eval = state_->eval;
  return p;
}

double LocalTrainer::best_eval_return() const {
  return best_.has_value() ? best_->score() : -std::numeric_limits<double>::infinity();
}

absl::Status LocalTrainer::Save() {
  if (options_.checkpoint_dir.empty()) return absl::OkStatus();
  State& s = *state_;
  agent_->counters()["env_steps"] = s.env_steps;
  // The steps the checkpoint resumes with reach the disk before it does.
  s.WriteReplayLog(options_.replay_log, [](ReplayLog& log) { return log.Sync(); });
  absl::Status status = agent_->Save(options_.checkpoint_dir);
  // A checkpoint of this very update already exists (saved on the last update, then at the end).
  if (absl::IsAlreadyExists(status)) return absl::OkStatus();
  if (status.ok() && s.replay_log) {
    // A resume from this checkpoint (or a later one) refills at most the replay's capacity.
    const int64_t keep_from = s.env_steps - s.replay.capacity_per_stream() * options_.envs;
    const double pruning = Now();
    if (absl::StatusOr<int> pruned = s.replay_log->Prune(keep_from); !pruned.ok()) {
      DF_LOG(WARNING) << "replay log " << options_.replay_log << ": " << pruned.status();
    }
    s.replay_log_seconds += Now() - pruning;
  }
  return status;
}

}  // namespace dreamfleet::learner
