#include "actor/actor_process.h"

#include <algorithm>
#include <deque>
#include <memory>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "actor/chunk_builder.h"
#include "actor/env_config.h"
#include "actor/envs/registry.h"
#include "actor/envs/vector_env.h"
#include "actor/parameter_client.h"
#include "actor/policy_runner.h"
#include "dreamfleet/v1/parameter.grpc.pb.h"
#include "replay_server/sharded_replay_client.h"
#include "services/grpc_util.h"
#include "services/logging.h"
#include "services/shutdown.h"

namespace dreamfleet::actor {
namespace {

// Recent-episode statistics for the success-rate and return gauges.
class EpisodeWindow {
 public:
  explicit EpisodeWindow(size_t size) : size_(size) {}
  void Add(const EpisodeStats& stats) {
    episodes_.push_back(stats);
    if (episodes_.size() > size_) episodes_.pop_front();
  }
  double success_rate() const {
    if (episodes_.empty()) return 0;
    double successes = 0;
    for (const auto& e : episodes_) successes += e.success ? 1 : 0;
    return successes / episodes_.size();
  }
  double mean_return() const {
    if (episodes_.empty()) return 0;
    double total = 0;
    for (const auto& e : episodes_) total += e.episode_return;
    return total / episodes_.size();
  }

 private:
  size_t size_;
  std::deque<EpisodeStats> episodes_;
};

}  // namespace

absl::Status RunActor(const ActorOptions& options, services::Metrics* metrics) {
  const services::Config& config = options.config;
  const std::string actor_id =
      options.actor_id.empty() ? absl::StrCat("actor-", options.actor_index) : options.actor_id;
  const int num_envs = static_cast<int>(config.actor.envs_per_actor);

  absl::StatusOr<std::unique_ptr<VectorEnv>> envs =
      VectorEnv::Create(EnvOptionsFromConfig(config, options.actor_index * num_envs), num_envs);
  if (!envs.ok()) return envs.status();
  const EnvSpec& spec = (*envs)->spec();
  DF_LOG(INFO) << actor_id << ": " << num_envs << " x " << spec.name << " (" << spec.num_actions
               << " actions, " << spec.image_height << "x" << spec.image_width << "x"
               << spec.image_channels << " images)";

  absl::StatusOr<std::unique_ptr<PolicyRunner>> policy = PolicyRunner::Create(
      num_envs, static_cast<int>(config.actor.threads),
      static_cast<uint64_t>(config.run.seed) * 1000003u + options.actor_index);
  if (!policy.ok()) return policy.status();

  // Replay: one stream per env and process incarnation (a restarted actor starts new streams, so
  // the shard never mistakes its chunks for retransmissions of the old ones), routed by its id.
  const int64_t incarnation = absl::ToUnixMillis(absl::Now());
  const replay::ReplayClientOptions replay_options =
      replay::ReplayClientOptionsFromConfig(config, metrics);
  absl::StatusOr<std::unique_ptr<replay::ShardedReplayClient>> replay_client =
      replay::ShardedReplayClient::Create(replay_options);
  if (!replay_client.ok()) return replay_client.status();
  std::vector<ChunkBuilder> builders;
  std::vector<std::unique_ptr<replay::InsertWriter>> writers;
  for (int i = 0; i < num_envs; ++i) {
    const std::string stream = absl::StrCat(actor_id, "/env-", i, "/", incarnation);
    builders.emplace_back(stream, spec, static_cast<int>(config.actor.chunk_steps));
    writers.push_back((*replay_client)->NewWriter(stream));
  }

  // Weights.
  const std::string learner_address =
      services::JoinHostPort(config.learner.host, static_cast<int>(config.learner.port));
  ParameterClient::Options weights_options;
  weights_options.address = learner_address;
  weights_options.actor_id = actor_id;
  absl::StatusOr<std::unique_ptr<ParameterClient>> weights_client =
      ParameterClient::Create(std::move(weights_options));
  if (!weights_client.ok()) return weights_client.status();
  ParameterClient& weights = **weights_client;
  auto learner_stub = v1::ParameterService::NewStub(services::CreateChannel(learner_address));

  // Metrics.
  auto& env_steps = metrics->Counter("dreamfleet_actor_env_steps_total", "Env steps taken.");
  auto& episodes = metrics->Counter("dreamfleet_actor_episodes_total", "Episodes finished.");
  auto& episode_return =
      metrics->Gauge("dreamfleet_actor_episode_return", "Mean return of the last 100 episodes.");
  auto& episode_length = metrics->Gauge("dreamfleet_actor_episode_length_steps",
                                        "Length of the latest finished episode.");
  auto& success_rate = metrics->Gauge("dreamfleet_actor_success_rate",
                                      "Fraction of the last 100 episodes that reached the goal.");
  auto& weights_version =
      metrics->Gauge("dreamfleet_actor_weights_version", "Policy weights version in use (0 = random prefill).");
  auto& weights_lag = metrics->Gauge("dreamfleet_actor_weights_lag_versions",
                                     "Learner's newest version minus the version in use.");
  auto& blocked = metrics->Counter("dreamfleet_actor_limiter_blocked_seconds_total",
                                   "Time spent waiting to hand chunks to replay (rate limiter "
                                   "and back pressure).");
  auto& inference = metrics->Histogram("dreamfleet_actor_inference_seconds",
                                       "Batched policy step time.", services::Metrics::LatencyBuckets());
  auto& steps_per_second =
      metrics->Gauge("dreamfleet_actor_env_steps_per_second", "Env steps per second, last 10 s.");

  std::mt19937_64 rng(static_cast<uint64_t>(config.run.seed) * 7919u + options.actor_index);
  std::uniform_int_distribution<int> random_action(0, spec.num_actions - 1);
  std::vector<int> actions(num_envs, 0);
  EpisodeWindow window(100);
  int64_t steps = 0;
  absl::Time rate_start = absl::Now();
  int64_t rate_steps = 0;
  absl::Time last_lag_check = absl::InfinitePast();
  bool warned_prefill = false;

  if (absl::Status status = (*envs)->Reset(); !status.ok()) return status;
  while (!services::ShutdownRequested()) {
    // Newest weights, if any arrived: swapped between ticks, never waited for.
    if (std::shared_ptr<const services::WeightsVersion> latest = weights.Latest();
        latest != nullptr && latest->version != (*policy)->version()) {
      if (absl::Status status = (*policy)->Load(*latest); !status.ok()) {
        DF_LOG(ERROR) << "ignoring weights version " << latest->version << ": " << status;
      } else {
        if ((*policy)->version() == latest->version && !warned_prefill) {
          DF_LOG(INFO) << "first weights (version " << latest->version << ") after " << steps
                       << " random prefill steps";
          warned_prefill = true;
        }
        weights_version.Set(static_cast<double>((*policy)->version()));
      }
    }
    if ((*policy)->ready()) {
      const absl::Time start = absl::Now();
      if (absl::Status status = (*policy)->Act(**envs, &actions); !status.ok()) return status;
      inference.Observe(absl::ToDoubleSeconds(absl::Now() - start));
    } else {
      for (int& action : actions) action = random_action(rng);
    }
    // Record the current observation of every env with the action about to be taken.
    for (int i = 0; i < num_envs; ++i) {
      const uint8_t* image = (*envs)->image() + static_cast<int64_t>(i) * spec.image_bytes();
      const float* vector = spec.vector_size ? (*envs)->vector() + i * spec.vector_size : nullptr;
      const int32_t* text = spec.text_length ? (*envs)->text() + i * spec.text_length : nullptr;
      builders[i].Append(image, vector, text, actions[i], (*envs)->reward()[i],
                         (*envs)->is_first()[i], (*envs)->is_last()[i], (*envs)->is_terminal()[i]);
      if (builders[i].full()) {
        const absl::Time start = absl::Now();
        // Wait for room in the writer (the rate limiter holds acknowledgements back) without
        // making shutdown wait: Send itself would block until a chunk is acknowledged.
        while (writers[i]->in_flight() >= replay_options.max_chunks_in_flight &&
               !services::ShutdownRequested()) {
          (void)writers[i]->Flush(absl::Milliseconds(100));
        }
        if (services::ShutdownRequested()) break;
        if (absl::Status status = writers[i]->Send(builders[i].Take((*policy)->version()));
            !status.ok()) {
          return absl::Status(status.code(),
                              absl::StrCat("replay rejected a chunk of ", builders[i].stream_id(),
                                           ": ", status.message()));
        }
        blocked.Increment(absl::ToDoubleSeconds(absl::Now() - start));
      }
    }
    if (absl::Status status = (*envs)->Step(actions); !status.ok()) return status;
    steps += num_envs;
    rate_steps += num_envs;
    env_steps.Increment(num_envs);
    for (const EpisodeStats& stats : (*envs)->finished_episodes()) {
      window.Add(stats);
      episodes.Increment();
      episode_length.Set(static_cast<double>(stats.length));
    }
    if (!(*envs)->finished_episodes().empty()) {
      success_rate.Set(window.success_rate());
      episode_return.Set(window.mean_return());
    }
    const absl::Time now = absl::Now();
    if (now - rate_start >= absl::Seconds(10)) {
      steps_per_second.Set(rate_steps / absl::ToDoubleSeconds(now - rate_start));
      rate_start = now;
      rate_steps = 0;
    }
    if (now - last_lag_check >= absl::Seconds(5)) {
      last_lag_check = now;
      grpc::ClientContext context;
      services::SetDeadline(&context, absl::Seconds(1));
      v1::StatusResponse response;
      if (learner_stub->Status(&context, v1::StatusRequest(), &response).ok()) {
        weights_lag.Set(std::max<double>(0, response.weights_version() - (*policy)->version()));
      }
    }
    if (config.actor.max_env_steps > 0 && steps >= config.actor.max_env_steps) {
      DF_LOG(INFO) << "reached actor.max_env_steps = " << config.actor.max_env_steps;
      break;
    }
  }
  // Hand the partial chunks over where there is room, then give the shards a few seconds to
  // acknowledge (the launcher allows actors 20 s to stop); steps still unacknowledged then are
  // lost, never half-stored.
  for (int i = 0; i < num_envs; ++i) {
    if (builders[i].size() > 0 &&
        writers[i]->in_flight() < replay_options.max_chunks_in_flight) {
      (void)writers[i]->Send(builders[i].Take((*policy)->version()));
    }
  }
  const absl::Time flush_deadline = absl::Now() + absl::Seconds(10);
  for (auto& writer : writers) {
    if (absl::Status status =
            writer->Close(std::max(absl::ZeroDuration(), flush_deadline - absl::Now()));
        !status.ok()) {
      DF_LOG(WARNING) << "closing replay stream: " << status;
    }
  }
  weights.Stop();
  return absl::OkStatus();
}

}  // namespace dreamfleet::actor
