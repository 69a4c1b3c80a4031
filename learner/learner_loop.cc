#include "learner/learner_loop.h"

#include <torch/torch.h>

#include <cmath>
#include <deque>
#include <optional>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "dreamer/tensor_convert.h"
#include "envs/env_config.h"
#include "envs/registry.h"
#include "learner/dreamer_agent.h"
#include "learner/evaluator.h"
#ifdef DREAMFLEET_HAVE_OPENLOOP_FILES
#include "learner/openloop.h"
#include "learner/openloop_files.h"
#endif
#include "replay_server/sharded_replay_client.h"
#include "services/logging.h"
#include "services/shutdown.h"
#include "services/status_macros.h"

namespace dreamfleet::learner {
namespace {

absl::StatusOr<dreamer::AgentConfig> MakeAgentConfig(const services::Config& config) {
  ASSIGN_OR_RETURN(envs::EnvSpec spec, envs::LookupEnvSpec(envs::EnvOptionsFromConfig(config, 0)));
  return dreamer::AgentConfigFromConfig(config, spec);
}

torch::Device ChooseDevice(const std::string& device) {
  if (device == "cuda" || (device == "auto" && torch::cuda::is_available())) {
    return torch::Device(torch::kCUDA);
  }
  return torch::Device(torch::kCPU);
}

// Background sampling into a bounded queue.
class Prefetcher {
 public:
  Prefetcher(replay::ShardedReplayClient* client, int batch_size, int length, int capacity,
             int threads)
      : client_(client), batch_size_(batch_size), length_(length), capacity_(capacity) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { Run(); });
  }
  ~Prefetcher() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    for (auto& thread : threads_) thread.join();
  }

  // Waits up to `timeout` for a batch; nullopt on timeout.
  std::optional<replay::SampledBatch> Next(absl::Duration timeout) {
    absl::MutexLock lock(&mu_);
    auto ready = [this] { return !queue_.empty(); };
    if (!mu_.AwaitWithTimeout(absl::Condition(&ready), timeout)) return std::nullopt;
    replay::SampledBatch batch = std::move(queue_.front());
    queue_.pop_front();
    return batch;
  }

 private:
  void Run() {
    absl::Time last_warning = absl::InfinitePast();
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        auto room = [this] { return stopping_ || static_cast<int>(queue_.size()) < capacity_; };
        mu_.Await(absl::Condition(&room));
        if (stopping_) return;
      }
      absl::StatusOr<replay::SampledBatch> batch =
          client_->Sample(batch_size_, length_, absl::Seconds(2));
      if (!batch.ok()) {
        // Expected while replay fills up or a shard restarts: say so now and then, retry.
        if (absl::Now() - last_warning > absl::Seconds(30)) {
          DF_LOG(INFO) << "waiting for replay data: " << batch.status().message();
          last_warning = absl::Now();
        }
        absl::MutexLock lock(&mu_);
        auto stopping = [this] { return stopping_; };
        mu_.AwaitWithTimeout(absl::Condition(&stopping), absl::Milliseconds(200));
        if (stopping_) return;
        continue;
      }
      absl::MutexLock lock(&mu_);
      queue_.push_back(*std::move(batch));
    }
  }

  replay::ShardedReplayClient* client_;
  const int batch_size_, length_, capacity_;
  absl::Mutex mu_;
  std::deque<replay::SampledBatch> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

}  // namespace

struct LearnerLoop::Impl {
  services::Config config;
  broadcast::ParameterServiceImpl* service = nullptr;
  services::Metrics* metrics = nullptr;
  std::unique_ptr<DreamerAgent> agent;
  std::string checkpoint_dir;
  bool resumed = false;
  std::unique_ptr<replay::ShardedReplayClient> client;
  std::unique_ptr<Prefetcher> prefetcher;  // destroyed before the client (declared after it)
  bool prioritized = false;

  prometheus::Counter* updates_total = nullptr;
  prometheus::Counter* skipped_total = nullptr;
  prometheus::Histogram* wm_seconds = nullptr;
  prometheus::Histogram* ac_seconds = nullptr;
  prometheus::Gauge* data_wait = nullptr;
  prometheus::Counter* replayed = nullptr;
  prometheus::Gauge* train_ratio = nullptr;
  prometheus::Gauge* entropy = nullptr;
  prometheus::Gauge* ret = nullptr;
  prometheus::Gauge* disagreement = nullptr;
  prometheus::Gauge* updates_per_second = nullptr;

  // Evaluation (learner.eval_every_updates > 0): its envs, the best agent, the latest result.
  std::unique_ptr<Evaluator> evaluator;
  std::optional<BestAgent> best;
  prometheus::Gauge* eval_return[2] = {nullptr, nullptr};   // greedy, sampled
  prometheus::Gauge* eval_success[2] = {nullptr, nullptr};  // greedy, sampled
  prometheus::Gauge* eval_env_steps = nullptr;
  prometheus::Gauge* eval_best = nullptr;

  // Plays the evaluation episodes, exports them and keeps the best agent (failures are logged:
  // evaluating never stops training).
  void Evaluate() {
    dreamer::Policy policy = agent->policy();
    absl::StatusOr<EvalResult> result = evaluator->Run(policy, static_cast<int64_t>(env_steps));
    if (!result.ok()) {
      DF_LOG(ERROR) << "evaluation at update " << agent->updates()
                    << " failed: " << result.status();
      return;
    }
    eval_return[0]->Set(result->greedy_return);
    eval_return[1]->Set(result->sampled_return);
    eval_success[0]->Set(result->greedy_success);
    eval_success[1]->Set(result->sampled_success);
    eval_env_steps->Set(static_cast<double>(result->env_steps));
    absl::StatusOr<bool> saved = best->Offer(*agent, *result);
    if (!saved.ok()) DF_LOG(ERROR) << "best checkpoint: " << saved.status();
    eval_best->Set(best->score());
    {
      absl::MutexLock lock(&status->mu);
      v1::Evaluation& evaluation = *status->snapshot.mutable_evaluation();
      evaluation.set_env_steps(result->env_steps);
      evaluation.set_updates(agent->updates());
      evaluation.set_episodes(result->episodes);
      evaluation.set_greedy_return(result->greedy_return);
      evaluation.set_greedy_success(result->greedy_success);
      evaluation.set_sampled_return(result->sampled_return);
      evaluation.set_sampled_success(result->sampled_success);
      evaluation.set_best_return(std::isfinite(best->score()) ? best->score() : 0);
    }
    DF_LOG(INFO) << "evaluation at update " << agent->updates() << " (" << result->env_steps
                 << " env steps), " << result->episodes << " episodes each: greedy return "
                 << result->greedy_return << " success " << result->greedy_success
                 << ", sampled return " << result->sampled_return << " success "
                 << result->sampled_success
                 << (saved.ok() && *saved ? absl::StrCat("; new best agent in ", best->dir())
                                          : std::string())
                 << " (" << result->seconds << " s)";
    WriteOpenLoopReport();
  }

  // The open-loop report of the agent now into <run.dir>/openloop.{gif,png}. Failures are logged.
  bool openloop_supported = true;  // false once the model turned out to have nothing to show
  void WriteOpenLoopReport() {
#ifdef DREAMFLEET_HAVE_OPENLOOP_FILES
    if (!openloop_supported) return;
    absl::StatusOr<OpenLoopReport> report = WriteRunOpenLoop(config, *agent, config.run.dir);
    if (absl::IsUnimplemented(report.status())) {
      DF_LOG(INFO) << "no open-loop reports: " << report.status().message();
      openloop_supported = false;
    } else if (!report.ok()) {
      DF_LOG(ERROR) << "open-loop report at update " << agent->updates() << ": " << report.status();
    } else {
      DF_LOG(INFO) << "open-loop report at update " << agent->updates() << " (" << config.run.dir
                   << "/openloop.gif): " << OpenLoopSummary(*report);
    }
#endif
  }

  // What the Status RPC reports. Shared with the service's status provider, which may still be
  // answering a call after this loop is gone.
  struct StatusBoard {
    absl::Mutex mu;
    v1::StatusResponse snapshot ABSL_GUARDED_BY(mu);
    const absl::Time started = absl::Now();
  };
  std::shared_ptr<StatusBoard> status = std::make_shared<StatusBoard>();

  int64_t version = 0;
  absl::Time last_publish = absl::InfinitePast();
  int64_t updates_since_publish = 0;
  absl::Time last_checkpoint = absl::Now();
  absl::Time window_start = absl::Now();
  absl::Duration window_wait;
  int64_t window_updates = 0;
  absl::Time last_info = absl::InfinitePast();
  double env_steps = 0;
  double replayed_steps = 0;

  // Counters over the last 10 s, env steps from the shards every 5 s.
  void UpdateRates(absl::Time now) {
    if (now - last_info > absl::Seconds(5)) {
      double inserted = 0;
      for (const replay::ShardStats& shard : client->Info()) inserted += shard.inserted_steps;
      env_steps = inserted;
      last_info = now;
    }
    if (now - window_start > absl::Seconds(10)) {
      data_wait->Set(absl::ToDoubleSeconds(window_wait) /
                     absl::ToDoubleSeconds(now - window_start));
      updates_per_second->Set(window_updates / absl::ToDoubleSeconds(now - window_start));
      window_start = now;
      window_wait = absl::ZeroDuration();
      window_updates = 0;
    }
  }

  void RecordUpdate(const TrainMetrics& result) {
    const int64_t batch_steps = int64_t{agent->config().batch_size} * agent->config().batch_length;
    updates_total->Increment();
    ++window_updates;
    ++updates_since_publish;
    wm_seconds->Observe(result.world_model_seconds);
    ac_seconds->Observe(result.actor_critic_seconds);
    replayed_steps += static_cast<double>(batch_steps);
    replayed->Increment(static_cast<double>(batch_steps));
    for (const auto& [name, value] : result.losses) {
      metrics->Gauge("dreamfleet_learner_loss", "Loss terms of the latest update.", {{"name", name}})
          .Set(value);
    }
    if (auto it = result.metrics.find("entropy"); it != result.metrics.end()) {
      entropy->Set(it->second);
    }
    if (auto it = result.metrics.find("ret"); it != result.metrics.end()) ret->Set(it->second);
    if (auto it = result.metrics.find("disag"); it != result.metrics.end()) {
      disagreement->Set(it->second);
    }
    if (env_steps > 0) train_ratio->Set(replayed_steps / env_steps);
  }

  // The Status RPC's view after an update (and its publishing, so the version is current).
  void UpdateStatus(const TrainMetrics& result) {
    absl::MutexLock lock(&status->mu);
    v1::StatusResponse& status_snapshot = status->snapshot;
    status_snapshot.set_weights_version(version);
    status_snapshot.set_updates(agent->updates());
    status_snapshot.set_replayed_steps(static_cast<int64_t>(replayed_steps));
    status_snapshot.set_env_steps(static_cast<int64_t>(env_steps));
    status_snapshot.set_train_ratio(env_steps > 0 ? replayed_steps / env_steps : 0);
    status_snapshot.set_updates_per_second(updates_per_second->Value());
    status_snapshot.set_data_wait_fraction(data_wait->Value());
    status_snapshot.set_entropy(entropy->Value());
    status_snapshot.set_episode_return(ret->Value());
    status_snapshot.mutable_losses()->clear();
    for (const auto& [name, value] : result.losses) {
      (*status_snapshot.mutable_losses())[name] = value;
    }
  }
};

LearnerLoop::LearnerLoop(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

LearnerLoop::~LearnerLoop() {
  impl_->prefetcher.reset();
  impl_->service->SetStatusProvider(nullptr);
}

absl::StatusOr<std::unique_ptr<LearnerLoop>> LearnerLoop::Create(
    const services::Config& config, broadcast::ParameterServiceImpl* service,
    services::Metrics* metrics, const std::string& init_from) {
  auto impl = std::make_unique<Impl>();
  Impl& s = *impl;
  s.config = config;
  s.service = service;
  s.metrics = metrics;
  ASSIGN_OR_RETURN(dreamer::AgentConfig agent_config, MakeAgentConfig(config));
  const torch::Device device = ChooseDevice(config.learner.device);
  ASSIGN_OR_RETURN(s.agent, DreamerAgent::Create(agent_config, device));
  s.checkpoint_dir = config.run.dir + "/learner";
  ASSIGN_OR_RETURN(const StartedFrom started,
                   RestoreOrInitialize(*s.agent, s.checkpoint_dir, init_from));
  s.resumed = started != StartedFrom::kFresh;
  if (started == StartedFrom::kCheckpoint) {
    DF_LOG(INFO) << "resumed from " << s.checkpoint_dir << " at update " << s.agent->updates()
                 << (init_from.empty() ? ""
                                       : " (it holds this run's checkpoint: --init-from "
                                         "is not used)");
  } else if (started == StartedFrom::kInitFrom) {
    DF_LOG(INFO) << "started from the agent in " << init_from << " at update " << s.agent->updates()
                 << " (no checkpoint in " << s.checkpoint_dir << " yet)";
  } else {
    DF_LOG(INFO) << "no checkpoint in " << s.checkpoint_dir << "; starting fresh";
  }
  DF_LOG(INFO) << "training preset " << config.learner.preset << " on " << device.str()
               << ", batch " << agent_config.batch_size << "x" << agent_config.batch_length;
  replay::ReplayClientOptions replay_options =
      replay::ReplayClientOptionsFromConfig(config, metrics);
  ASSIGN_OR_RETURN(replay_options.security,
                   services::MakeClientSecurity(config.security, services::Role::kLearner));
  ASSIGN_OR_RETURN(s.client, replay::ShardedReplayClient::Create(std::move(replay_options)));

  s.updates_total = &metrics->Counter("dreamfleet_learner_updates_total", "Updates done.");
  s.skipped_total = &metrics->Counter("dreamfleet_learner_skipped_updates_total",
                                      "Updates skipped because a batch or loss was not finite.");
  s.wm_seconds =
      &metrics->Histogram("dreamfleet_learner_update_seconds", "Update time.",
                          services::Metrics::LatencyBuckets(), {{"part", "world_model"}});
  s.ac_seconds =
      &metrics->Histogram("dreamfleet_learner_update_seconds", "Update time.",
                          services::Metrics::LatencyBuckets(), {{"part", "actor_critic"}});
  s.data_wait = &metrics->Gauge("dreamfleet_learner_data_wait_fraction",
                                "Fraction of the last 10 s the trainer waited for batches.");
  s.replayed = &metrics->Counter("dreamfleet_learner_replayed_steps_total",
                                 "Steps replayed (B x T per update).");
  s.train_ratio = &metrics->Gauge("dreamfleet_learner_train_ratio",
                                  "Replayed steps per env step inserted into replay.");
  s.entropy = &metrics->Gauge("dreamfleet_learner_entropy", "Policy entropy.");
  s.ret = &metrics->Gauge("dreamfleet_learner_return", "Mean imagined lambda-return.");
  s.disagreement = &metrics->Gauge(
      "dreamfleet_learner_disagreement",
      "Mean disagreement of the exploration ensemble (learner.disagreement_scale) on imagined "
      "steps; falls as the world model's transitions become familiar. 0 without the ensemble.");
  s.updates_per_second =
      &metrics->Gauge("dreamfleet_learner_updates_per_second", "Updates per second, last 10 s.");

  service->SetStatusProvider([board = s.status] {
    absl::MutexLock lock(&board->mu);
    v1::StatusResponse response = board->snapshot;
    response.set_uptime_seconds(absl::ToDoubleSeconds(absl::Now() - board->started));
    return response;
  });
  if (config.learner.eval_every_updates > 0) {
    ASSIGN_OR_RETURN(s.evaluator,
                     Evaluator::Create(envs::EnvOptionsFromConfig(config, 0),
                                       config.learner.eval_episodes, config.learner.eval_max_steps,
                                       static_cast<uint64_t>(config.run.seed) + 29));
    ASSIGN_OR_RETURN(s.best, BestAgent::Open(config.run.dir + "/best", /*fresh=*/!s.resumed));
    const char* help_return = "Mean return of the latest evaluation episodes.";
    const char* help_success = "Success rate of the latest evaluation episodes.";
    s.eval_return[0] =
        &metrics->Gauge("dreamfleet_learner_eval_return", help_return, {{"mode", "greedy"}});
    s.eval_return[1] =
        &metrics->Gauge("dreamfleet_learner_eval_return", help_return, {{"mode", "sampled"}});
    s.eval_success[0] =
        &metrics->Gauge("dreamfleet_learner_eval_success", help_success, {{"mode", "greedy"}});
    s.eval_success[1] =
        &metrics->Gauge("dreamfleet_learner_eval_success", help_success, {{"mode", "sampled"}});
    s.eval_env_steps = &metrics->Gauge("dreamfleet_learner_eval_env_steps",
                                       "Env steps in replay when the latest evaluation ran.");
    s.eval_best = &metrics->Gauge("dreamfleet_learner_eval_best_return",
                                  "Greedy evaluation return of the agent kept in <run.dir>/best.");
    if (std::isfinite(s.best->score())) s.eval_best->Set(s.best->score());
  }
  s.prefetcher = std::make_unique<Prefetcher>(s.client.get(), agent_config.batch_size,
                                              agent_config.batch_length,
                                              static_cast<int>(config.learner.prefetch_batches), 1);
  s.prioritized = config.replay.selector == "prioritized";
  s.version = std::max<int64_t>(service->version(), s.agent->updates());
  s.replayed_steps = static_cast<double>(s.agent->counters()["replayed_steps"]);
  return std::unique_ptr<LearnerLoop>(new LearnerLoop(std::move(impl)));
}

absl::Status LearnerLoop::Publish() {
  Impl& s = *impl_;
  ASSIGN_OR_RETURN(std::vector<services::NamedTensor> tensors,
                   dreamer::ToNamedTensors(s.agent->ExportPolicy()));
  RETURN_IF_ERROR(s.service->Publish(broadcast::NewWeightsVersion(
      s.version + 1, s.agent->config().Serialize(), std::move(tensors))));
  ++s.version;
  s.last_publish = absl::Now();
  s.updates_since_publish = 0;
  return absl::OkStatus();
}

void LearnerLoop::Checkpoint() {
  Impl& s = *impl_;
  s.agent->counters()["replayed_steps"] = static_cast<int64_t>(s.replayed_steps);
  if (absl::Status status = s.agent->Save(s.checkpoint_dir); !status.ok()) {
    DF_LOG(ERROR) << "checkpoint failed: " << status;
  } else {
    DF_LOG(INFO) << "checkpoint at update " << s.agent->updates();
  }
  s.last_checkpoint = absl::Now();
}

absl::StatusOr<bool> LearnerLoop::Step(absl::Duration wait) {
  Impl& s = *impl_;
  const absl::Time wait_start = absl::Now();
  std::optional<replay::SampledBatch> sample = s.prefetcher->Next(wait);
  s.window_wait += absl::Now() - wait_start;
  const absl::Time now = absl::Now();
  s.UpdateRates(now);
  if (!sample.has_value()) return false;
  absl::StatusOr<dreamer::Batch> batch = dreamer::BatchFromFields(sample->fields);
  if (!batch.ok()) {
    DF_LOG(ERROR) << "dropping a malformed batch: " << batch.status();
    return false;
  }
  absl::StatusOr<TrainMetrics> result = s.agent->Train(*batch);
  if (!result.ok()) {
    DF_LOG(ERROR) << "dropping a batch the model cannot take: " << result.status();
    return false;
  }
  if (result->skipped) {
    s.skipped_total->Increment();
    DF_LOG(WARNING) << "update skipped: " << result->skip_reason;
    return false;
  }
  s.RecordUpdate(*result);
  if (s.prioritized && result->sequence_losses.size() == sample->keys.size()) {
    // An item's priority is how badly the world model predicted it in this update.
    absl::StatusOr<uint64_t> updated =
        s.client->UpdatePriorities(sample->shard, sample->keys, result->sequence_losses);
    if (!updated.ok()) DF_LOG(WARNING) << "priority update failed: " << updated.status();
  }
  if (s.updates_since_publish >= s.config.learner.publish_every_updates ||
      now - s.last_publish >= absl::Seconds(s.config.learner.publish_every_seconds)) {
    RETURN_IF_ERROR(Publish());
  }
  s.UpdateStatus(*result);
  if (now - s.last_checkpoint >= absl::Minutes(s.config.learner.checkpoint_minutes)) Checkpoint();
  if (s.evaluator && s.agent->updates() % s.config.learner.eval_every_updates == 0) s.Evaluate();
  return true;
}

absl::Status LearnerLoop::Run() {
  const int64_t max_updates = impl_->config.learner.max_updates;
  while (!services::ShutdownRequested()) {
    if (max_updates > 0 && impl_->agent->updates() >= max_updates) {
      DF_LOG(INFO) << "reached learner.max_updates = " << max_updates;
      break;
    }
    RETURN_IF_ERROR(Step().status());
  }
  if (impl_->agent->updates() > 0) Checkpoint();
  return absl::OkStatus();
}

int64_t LearnerLoop::updates() const { return impl_->agent->updates(); }
int64_t LearnerLoop::weights_version() const { return impl_->version; }
bool LearnerLoop::resumed() const { return impl_->resumed; }

absl::Status RunLearner(const services::Config& config, broadcast::ParameterServiceImpl* service,
                        services::Metrics* metrics, const std::string& init_from) {
  ASSIGN_OR_RETURN(std::unique_ptr<LearnerLoop> loop,
                   LearnerLoop::Create(config, service, metrics, init_from));
  return loop->Run();
}

}  // namespace dreamfleet::learner
