#include "actor/actor_loop.h"

#include <algorithm>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "actor/chunk_builder.h"
#include "actor/policy_runner.h"
#include "broadcast/parameter_client.h"
#include "dreamfleet/v1/parameter.grpc.pb.h"
#include "envs/env_config.h"
#include "envs/episode_window.h"
#include "envs/vector_env.h"
#include "replay_server/sharded_replay_client.h"
#include "services/grpc_util.h"
#include "services/logging.h"
#include "services/shutdown.h"
#include "services/status_macros.h"

namespace dreamfleet::actor {

struct ActorLoop::Impl {
  ActorOptions options;
  std::string actor_id;
  int num_envs = 0;
  std::unique_ptr<envs::VectorEnv> envs;
  std::unique_ptr<PolicyRunner> policy;
  replay::ReplayClientOptions replay_options;
  std::unique_ptr<replay::ShardedReplayClient> replay_client;
  std::vector<ChunkBuilder> builders;
  std::vector<std::unique_ptr<replay::InsertWriter>> writers;
  std::unique_ptr<broadcast::ParameterClient> weights;
  std::unique_ptr<v1::ParameterService::Stub> learner_stub;
  bool flushed = false;

  prometheus::Counter* env_steps_total = nullptr;
  prometheus::Counter* explored_steps_total = nullptr;
  int64_t explored_reported = 0;
  prometheus::Counter* episodes_total = nullptr;
  prometheus::Gauge* episode_return = nullptr;
  prometheus::Gauge* episode_length = nullptr;
  prometheus::Gauge* success_rate = nullptr;
  prometheus::Gauge* weights_version = nullptr;
  prometheus::Gauge* weights_lag = nullptr;
  prometheus::Counter* blocked = nullptr;
  prometheus::Histogram* inference = nullptr;
  prometheus::Gauge* steps_per_second = nullptr;
  prometheus::Gauge* unacknowledged = nullptr;

  std::mt19937_64 rng;
  std::vector<int> actions;
  envs::EpisodeWindow window{100};
  int64_t steps = 0;
  absl::Time rate_start = absl::Now();
  int64_t rate_steps = 0;
  absl::Time last_lag_check = absl::InfinitePast();
  bool logged_first_weights = false;
};

ActorLoop::ActorLoop(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

ActorLoop::~ActorLoop() {
  if (!impl_->flushed) Flush(absl::ZeroDuration());
}

absl::StatusOr<std::unique_ptr<ActorLoop>> ActorLoop::Create(const ActorOptions& options,
                                                             services::Metrics* metrics) {
  auto impl = std::make_unique<Impl>();
  Impl& s = *impl;
  s.options = options;
  const services::Config& config = options.config;
  s.actor_id =
      options.actor_id.empty() ? absl::StrCat("actor-", options.actor_index) : options.actor_id;
  s.num_envs = static_cast<int>(config.actor.envs_per_actor);

  ASSIGN_OR_RETURN(s.envs, envs::VectorEnv::Create(
                               envs::EnvOptionsFromConfig(config, options.actor_index * s.num_envs),
                               s.num_envs));
  const envs::EnvSpec& spec = s.envs->spec();
  DF_LOG(INFO) << s.actor_id << ": " << s.num_envs << " x " << spec.name << " (" << spec.num_actions
               << " actions, " << spec.image_height << "x" << spec.image_width << "x"
               << spec.image_channels << " images)";
  ASSIGN_OR_RETURN(s.policy,
                   PolicyRunner::Create(
                       s.num_envs, static_cast<int>(config.actor.threads),
                       static_cast<uint64_t>(config.run.seed) * 1000003u + options.actor_index,
                       {config.actor.explore_prob, static_cast<int>(config.actor.explore_hold)}));

  // Replay: one stream per env and process incarnation (a restarted actor starts new streams, so
  // the shard never mistakes its chunks for retransmissions of the old ones), routed by its id.
  const int64_t incarnation = absl::ToUnixMillis(absl::Now());
  s.replay_options = replay::ReplayClientOptionsFromConfig(config, metrics);
  ASSIGN_OR_RETURN(s.replay_options.security,
                   services::MakeClientSecurity(config.security, services::Role::kActor));
  ASSIGN_OR_RETURN(s.replay_client, replay::ShardedReplayClient::Create(s.replay_options));
  for (int i = 0; i < s.num_envs; ++i) {
    const std::string stream = absl::StrCat(s.actor_id, "/env-", i, "/", incarnation);
    s.builders.emplace_back(stream, spec, static_cast<int>(config.actor.chunk_steps));
    s.writers.push_back(s.replay_client->NewWriter(stream, s.actor_id));
  }

  // Weights.
  const std::string learner_address =
      services::JoinHostPort(config.learner.host, static_cast<int>(config.learner.port));
  broadcast::ParameterClient::Options weights_options;
  weights_options.address = learner_address;
  weights_options.actor_id = s.actor_id;
  weights_options.channel_options.security = s.replay_options.security;
  ASSIGN_OR_RETURN(s.weights, broadcast::ParameterClient::Create(weights_options));
  s.learner_stub = v1::ParameterService::NewStub(
      services::CreateChannel(learner_address, weights_options.channel_options));

  s.env_steps_total = &metrics->Counter("dreamfleet_actor_env_steps_total", "Env steps taken.");
  s.explored_steps_total =
      &metrics->Counter("dreamfleet_actor_explored_steps_total",
                        "Env steps taken with a held random action (actor.explore_prob).");
  s.episodes_total = &metrics->Counter("dreamfleet_actor_episodes_total", "Episodes finished.");
  s.episode_return =
      &metrics->Gauge("dreamfleet_actor_episode_return", "Mean return of the last 100 episodes.");
  s.episode_length = &metrics->Gauge("dreamfleet_actor_episode_length_steps",
                                     "Length of the latest finished episode.");
  s.success_rate = &metrics->Gauge("dreamfleet_actor_success_rate",
                                   "Fraction of the last 100 episodes that reached the goal.");
  s.weights_version = &metrics->Gauge("dreamfleet_actor_weights_version",
                                      "Policy weights version in use (0 = random prefill).");
  s.weights_lag = &metrics->Gauge("dreamfleet_actor_weights_lag_versions",
                                  "Learner's newest version minus the version in use.");
  s.blocked = &metrics->Counter("dreamfleet_actor_limiter_blocked_seconds_total",
                                "Time spent waiting to hand chunks to replay (rate limiter "
                                "and back pressure).");
  s.inference =
      &metrics->Histogram("dreamfleet_actor_inference_seconds", "Batched policy step time.",
                          services::Metrics::LatencyBuckets());
  s.steps_per_second =
      &metrics->Gauge("dreamfleet_actor_env_steps_per_second", "Env steps per second, last 10 s.");
  s.unacknowledged = &metrics->Gauge(
      "dreamfleet_actor_replay_unacknowledged_chunks",
      "Chunks handed to replay and not yet acknowledged (bounded by the writers' in-flight "
      "window; full while the actor's shard is down or its rate limiter blocks).");

  s.rng.seed(static_cast<uint64_t>(config.run.seed) * 7919u + options.actor_index);
  s.actions.assign(s.num_envs, 0);
  RETURN_IF_ERROR(s.envs->Reset());
  return std::unique_ptr<ActorLoop>(new ActorLoop(std::move(impl)));
}

void ActorLoop::SwapInWeights() {
  Impl& s = *impl_;
  std::shared_ptr<const broadcast::WeightsVersion> latest = s.weights->Latest();
  if (latest == nullptr || latest->version == s.policy->version()) return;
  if (absl::Status status = s.policy->Load(*latest); !status.ok()) {
    DF_LOG(ERROR) << "ignoring weights version " << latest->version << ": " << status;
    return;
  }
  if (!s.logged_first_weights) {
    DF_LOG(INFO) << "first weights (version " << latest->version << ") after " << s.steps
                 << " random prefill steps";
    s.logged_first_weights = true;
  }
  s.weights_version->Set(static_cast<double>(s.policy->version()));
}

absl::Status ActorLoop::ChooseActions() {
  Impl& s = *impl_;
  if (s.policy->ready()) {
    const absl::Time start = absl::Now();
    RETURN_IF_ERROR(s.policy->Act(*s.envs, &s.actions));
    s.inference->Observe(absl::ToDoubleSeconds(absl::Now() - start));
    const int64_t explored = s.policy->explored_steps();
    s.explored_steps_total->Increment(static_cast<double>(explored - s.explored_reported));
    s.explored_reported = explored;
    return absl::OkStatus();
  }
  std::uniform_int_distribution<int> random_action(0, s.envs->spec().num_actions - 1);
  for (int& action : s.actions) action = random_action(s.rng);
  return absl::OkStatus();
}

absl::Status ActorLoop::RecordSteps() {
  Impl& s = *impl_;
  // Record the current observation of every env with the action about to be taken.
  for (int i = 0; i < s.num_envs; ++i) {
    s.builders[i].Append(s.envs->Record(i, s.actions[i]));
    if (!s.builders[i].full()) continue;
    const absl::Time start = absl::Now();
    // Wait for room in the writer (the rate limiter holds acknowledgements back, or the shard is
    // down and the writer reconnects) without making shutdown wait: Send itself would block
    // until a chunk is acknowledged. Newly published weights are still taken meanwhile.
    absl::Time next_log = absl::Now() + absl::Seconds(30);
    while (s.writers[i]->in_flight() >= s.replay_options.max_chunks_in_flight &&
           !services::ShutdownRequested()) {
      // A permanent error (a refused chunk) ends the wait: Send below reports it, and the actor
      // exits for its supervisor instead of waiting on acknowledgements that will never come.
      if (absl::Status flushed = s.writers[i]->Flush(absl::Milliseconds(100));
          !flushed.ok() && !absl::IsDeadlineExceeded(flushed)) {
        break;
      }
      SwapInWeights();
      if (absl::Now() >= next_log) {
        DF_LOG(WARNING) << "replay shard " << s.writers[i]->shard() << " has acknowledged none of "
                        << s.writers[i]->in_flight() << " chunks for "
                        << absl::FormatDuration(absl::Trunc(absl::Now() - start, absl::Seconds(1)))
                        << " (down, or its rate limiter waits for the learner); holding them";
        next_log = absl::Now() + absl::Seconds(30);
      }
    }
    if (services::ShutdownRequested()) return absl::OkStatus();
    if (absl::Status status = s.writers[i]->Send(s.builders[i].Take(s.policy->version()));
        !status.ok()) {
      return absl::Status(status.code(),
                          absl::StrCat("replay rejected a chunk of ", s.builders[i].stream_id(),
                                       ": ", status.message()));
    }
    s.blocked->Increment(absl::ToDoubleSeconds(absl::Now() - start));
  }
  return absl::OkStatus();
}

absl::Status ActorLoop::StepEnvs() {
  Impl& s = *impl_;
  RETURN_IF_ERROR(s.envs->Step(s.actions));
  s.steps += s.num_envs;
  s.rate_steps += s.num_envs;
  s.env_steps_total->Increment(s.num_envs);
  for (const envs::EpisodeStats& stats : s.envs->finished_episodes()) {
    s.window.Add(stats);
    s.episodes_total->Increment();
    s.episode_length->Set(static_cast<double>(stats.length));
  }
  if (!s.envs->finished_episodes().empty()) {
    s.success_rate->Set(s.window.success_rate());
    s.episode_return->Set(s.window.mean_return());
  }
  size_t unacknowledged = 0;
  for (const auto& writer : s.writers) unacknowledged += writer->in_flight();
  s.unacknowledged->Set(static_cast<double>(unacknowledged));
  const absl::Time now = absl::Now();
  if (now - s.rate_start >= absl::Seconds(10)) {
    s.steps_per_second->Set(s.rate_steps / absl::ToDoubleSeconds(now - s.rate_start));
    s.rate_start = now;
    s.rate_steps = 0;
  }
  return absl::OkStatus();
}

void ActorLoop::ReportLag() {
  Impl& s = *impl_;
  const absl::Time now = absl::Now();
  if (now - s.last_lag_check < absl::Seconds(5)) return;
  s.last_lag_check = now;
  grpc::ClientContext context;
  services::SetDeadline(&context, absl::Seconds(1));
  v1::StatusResponse response;
  if (s.learner_stub->Status(&context, v1::StatusRequest(), &response).ok()) {
    s.weights_lag->Set(std::max<double>(0, response.weights_version() - s.policy->version()));
  }
}

absl::Status ActorLoop::Tick() {
  SwapInWeights();
  RETURN_IF_ERROR(ChooseActions());
  RETURN_IF_ERROR(RecordSteps());
  if (services::ShutdownRequested()) return absl::OkStatus();
  RETURN_IF_ERROR(StepEnvs());
  ReportLag();
  return absl::OkStatus();
}

absl::Status ActorLoop::Run() {
  const int64_t max_steps = impl_->options.config.actor.max_env_steps;
  absl::Status status;
  while (!services::ShutdownRequested()) {
    if (status = Tick(); !status.ok()) break;
    if (max_steps > 0 && impl_->steps >= max_steps) {
      DF_LOG(INFO) << "reached actor.max_env_steps = " << max_steps;
      break;
    }
  }
  // The launcher and compose allow actors 20-30 s to stop. After an error (a chunk replay
  // rejected, a failed env or policy step) the process exits at once.
  Flush(status.ok() ? absl::Seconds(10) : absl::ZeroDuration());
  return status;
}

void ActorLoop::Flush(absl::Duration timeout) {
  Impl& s = *impl_;
  if (s.flushed) return;
  s.flushed = true;
  int partial = 0;
  for (int i = 0; i < s.num_envs; ++i) {
    if (s.builders[i].size() > 0 &&
        s.writers[i]->in_flight() < s.replay_options.max_chunks_in_flight) {
      if (s.writers[i]->Send(s.builders[i].Take(s.policy->version())).ok()) ++partial;
    }
  }
  const absl::Time deadline = absl::Now() + timeout;
  size_t unacknowledged = 0;
  for (auto& writer : s.writers) {
    absl::Status status = writer->Close(std::max(absl::ZeroDuration(), deadline - absl::Now()));
    // Chunks still unacknowledged at the deadline are counted in one line below (one per writer
    // said the same thing once per env); any other error is its own.
    if (!status.ok() && !absl::IsDeadlineExceeded(status)) {
      DF_LOG(WARNING) << "closing replay stream: " << status;
    }
    unacknowledged += writer->in_flight();
  }
  if (unacknowledged > 0) {
    // After an error the actor does not wait (timeout zero): say so instead of "within 0".
    DF_LOG(WARNING) << unacknowledged << " chunks not acknowledged "
                    << (timeout > absl::ZeroDuration()
                            ? absl::StrCat("within ", absl::FormatDuration(timeout), " of the stop")
                            : std::string("when the actor stopped on an error"))
                    << " (a shard's rate limiter held them for the learner, or a shard was down); "
                       "their steps may not be stored";
  }
  DF_LOG(INFO) << "flushed " << s.num_envs << " replay streams (" << partial
               << " partial chunks sent, " << acknowledged_chunks() << " chunks acknowledged, "
               << unacknowledged << " unacknowledged)";
  s.weights->Stop();
}

bool ActorLoop::WaitForWeights(int64_t version, absl::Duration timeout) {
  return impl_->weights->WaitForVersion(version, timeout).ok();
}

int64_t ActorLoop::env_steps() const { return impl_->steps; }
int64_t ActorLoop::weights_version() const { return impl_->policy->version(); }
const std::string& ActorLoop::actor_id() const { return impl_->actor_id; }

uint64_t ActorLoop::acknowledged_chunks() const {
  uint64_t total = 0;
  for (const auto& writer : impl_->writers) total += writer->acknowledged();
  return total;
}

absl::Status RunActor(const ActorOptions& options, services::Metrics* metrics) {
  ASSIGN_OR_RETURN(std::unique_ptr<ActorLoop> loop, ActorLoop::Create(options, metrics));
  return loop->Run();
}

}  // namespace dreamfleet::actor
