#include "learner/learner_loop.h"

#include <torch/torch.h>

#include <deque>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "actor/env_config.h"
#include "actor/envs/registry.h"
#include "learner/dreamer_agent.h"
#include "learner/weights_convert.h"
#include "replay_server/sharded_replay_client.h"
#include "services/logging.h"
#include "services/shutdown.h"

namespace dreamfleet::learner {
namespace {

absl::StatusOr<AgentConfig> MakeAgentConfig(const services::Config& config) {
  absl::StatusOr<std::unique_ptr<actor::Environment>> env =
      actor::MakeEnvironment(actor::EnvOptionsFromConfig(config, 0));
  if (!env.ok()) return env.status();
  const actor::EnvSpec& spec = (*env)->spec();
  AgentConfig agent;
  if (absl::Status status = ApplyPreset(config.learner.preset, &agent); !status.ok()) return status;
  ApplyEnvSpec(spec, &agent);
  agent.lr = static_cast<float>(config.learner.lr);
  agent.ac_lr = static_cast<float>(config.learner.actor_critic_lr);
  agent.scale_rec = static_cast<float>(config.learner.reconstruction_scale);
  agent.agc = static_cast<float>(config.learner.agc);
  agent.warmup = static_cast<int>(config.learner.warmup_updates);
  agent.imag_horizon = static_cast<int>(config.learner.imagination_horizon);
  agent.horizon = static_cast<float>(config.learner.horizon);
  agent.lambda = static_cast<float>(config.learner.lambda);
  agent.actent = static_cast<float>(config.learner.entropy);
  agent.batch_size = static_cast<int>(config.learner.batch_size);
  agent.batch_length = static_cast<int>(config.learner.batch_length);
  agent.seed = static_cast<uint64_t>(config.run.seed);
  agent.threads = static_cast<int>(config.learner.threads);
  if (absl::Status status = agent.Validate(); !status.ok()) return status;
  return agent;
}

torch::Device ChooseDevice(const std::string& device) {
  if (device == "cuda" || (device == "auto" && torch::cuda::is_available())) {
    return torch::Device(torch::kCUDA);
  }
  return torch::Device(torch::kCPU);
}

// Wraps a sampled field as a tensor that owns a copy of its bytes.
absl::StatusOr<torch::Tensor> FieldTensor(const replay::SampledBatch& sample, const char* name,
                                          torch::ScalarType type, bool required) {
  const replay::Tensor* field = sample.Find(name);
  if (field == nullptr) {
    if (required) return absl::InvalidArgumentError(absl::StrCat("batch has no field \"", name, "\""));
    return torch::Tensor();
  }
  torch::Tensor tensor = torch::empty(field->shape, torch::TensorOptions().dtype(type));
  if (static_cast<size_t>(tensor.nbytes()) != field->data.size()) {
    return absl::InvalidArgumentError(absl::StrCat("batch field \"", name, "\" has ",
                                                   field->data.size(), " bytes for its shape"));
  }
  std::memcpy(tensor.data_ptr(), field->data.data(), field->data.size());
  return tensor;
}

absl::StatusOr<Batch> ToBatch(const replay::SampledBatch& sample) {
  Batch batch;
  struct Field {
    const char* name;
    torch::ScalarType type;
    bool required;
    torch::Tensor* out;
  };
  torch::Tensor action_int32;
  for (const Field& f : {Field{"image", torch::kByte, false, &batch.image},
                         Field{"vector", torch::kFloat, false, &batch.vector},
                         Field{"text", torch::kInt, false, &batch.text},
                         Field{"action", torch::kInt, true, &action_int32},
                         Field{"reward", torch::kFloat, true, &batch.reward},
                         Field{"is_first", torch::kBool, true, &batch.is_first},
                         Field{"is_last", torch::kBool, true, &batch.is_last},
                         Field{"is_terminal", torch::kBool, true, &batch.is_terminal}}) {
    absl::StatusOr<torch::Tensor> tensor = FieldTensor(sample, f.name, f.type, f.required);
    if (!tensor.ok()) return tensor.status();
    *f.out = *tensor;
  }
  batch.action = action_int32.to(torch::kLong);
  return batch;
}

// Background sampling into a bounded queue; records how long the trainer waits.
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

absl::Status RunLearner(const services::Config& config, ParameterServiceImpl* service,
                        services::Metrics* metrics) {
  absl::StatusOr<AgentConfig> agent_config = MakeAgentConfig(config);
  if (!agent_config.ok()) return agent_config.status();
  const torch::Device device = ChooseDevice(config.learner.device);
  absl::StatusOr<std::unique_ptr<DreamerAgent>> agent_or = DreamerAgent::Create(*agent_config, device);
  if (!agent_or.ok()) return agent_or.status();
  DreamerAgent& agent = **agent_or;
  const std::string checkpoint_dir = config.run.dir + "/learner";
  if (absl::Status status = agent.Restore(checkpoint_dir); status.ok()) {
    DF_LOG(INFO) << "resumed from " << checkpoint_dir << " at update " << agent.updates();
  } else if (absl::IsNotFound(status)) {
    DF_LOG(INFO) << "no checkpoint in " << checkpoint_dir << "; starting fresh";
  } else {
    return status;
  }
  DF_LOG(INFO) << "training preset " << config.learner.preset << " on " << device.str()
               << ", batch " << agent_config->batch_size << "x" << agent_config->batch_length;

  const replay::ReplayClientOptions replay_options =
      replay::ReplayClientOptionsFromConfig(config, metrics);
  absl::StatusOr<std::unique_ptr<replay::ShardedReplayClient>> client =
      replay::ShardedReplayClient::Create(replay_options);
  if (!client.ok()) return client.status();

  auto& updates_total = metrics->Counter("dreamfleet_learner_updates_total", "Updates done.");
  auto& skipped_total = metrics->Counter("dreamfleet_learner_skipped_updates_total",
                                         "Updates skipped because a batch or loss was not finite.");
  auto& wm_seconds = metrics->Histogram("dreamfleet_learner_update_seconds", "Update time.",
                                        services::Metrics::LatencyBuckets(), {{"part", "world_model"}});
  auto& ac_seconds = metrics->Histogram("dreamfleet_learner_update_seconds", "Update time.",
                                        services::Metrics::LatencyBuckets(), {{"part", "actor_critic"}});
  auto& data_wait = metrics->Gauge("dreamfleet_learner_data_wait_fraction",
                                   "Fraction of the last 10 s the trainer waited for batches.");
  auto& replayed = metrics->Counter("dreamfleet_learner_replayed_steps_total",
                                    "Steps replayed (B x T per update).");
  auto& train_ratio = metrics->Gauge("dreamfleet_learner_train_ratio",
                                     "Replayed steps per env step inserted into replay.");
  auto& entropy = metrics->Gauge("dreamfleet_learner_entropy", "Policy entropy.");
  auto& ret = metrics->Gauge("dreamfleet_learner_return", "Mean imagined lambda-return.");
  auto& updates_per_second = metrics->Gauge("dreamfleet_learner_updates_per_second",
                                            "Updates per second, last 10 s.");

  // Status snapshot shared with the gRPC Status handler.
  absl::Mutex status_mu;
  v1::StatusResponse status_snapshot;
  const absl::Time started = absl::Now();
  service->SetStatusProvider([&] {
    absl::MutexLock lock(&status_mu);
    v1::StatusResponse response = status_snapshot;
    response.set_uptime_seconds(absl::ToDoubleSeconds(absl::Now() - started));
    return response;
  });

  const int batch_size = agent_config->batch_size;
  const int length = agent_config->batch_length;
  Prefetcher prefetcher(client->get(), batch_size, length,
                        static_cast<int>(config.learner.prefetch_batches), 1);
  const bool prioritized = config.replay.selector == "prioritized";

  int64_t version = std::max<int64_t>(service->version(), agent.updates());
  absl::Time last_publish = absl::InfinitePast();
  int64_t updates_since_publish = 0;
  absl::Time last_checkpoint = absl::Now();
  absl::Time window_start = absl::Now();
  absl::Duration window_wait;
  int64_t window_updates = 0;
  absl::Time last_info = absl::InfinitePast();
  double env_steps = 0;
  double replayed_steps = static_cast<double>(agent.counters()["replayed_steps"]);

  auto publish = [&]() -> absl::Status {
    absl::StatusOr<std::shared_ptr<const services::WeightsVersion>> weights =
        ToWeightsVersion(agent.ExportPolicy(), ++version, agent.config().Serialize());
    if (!weights.ok()) return weights.status();
    if (absl::Status status = service->Publish(*weights); !status.ok()) return status;
    last_publish = absl::Now();
    updates_since_publish = 0;
    return absl::OkStatus();
  };
  auto checkpoint = [&]() {
    agent.counters()["replayed_steps"] = static_cast<int64_t>(replayed_steps);
    if (absl::Status status = agent.Save(checkpoint_dir); !status.ok()) {
      DF_LOG(ERROR) << "checkpoint failed: " << status;
    } else {
      DF_LOG(INFO) << "checkpoint at update " << agent.updates();
    }
    last_checkpoint = absl::Now();
  };

  while (!services::ShutdownRequested()) {
    if (config.learner.max_updates > 0 && agent.updates() >= config.learner.max_updates) {
      DF_LOG(INFO) << "reached learner.max_updates = " << config.learner.max_updates;
      break;
    }
    const absl::Time wait_start = absl::Now();
    std::optional<replay::SampledBatch> sample = prefetcher.Next(absl::Milliseconds(500));
    window_wait += absl::Now() - wait_start;
    const absl::Time now = absl::Now();
    if (now - last_info > absl::Seconds(5)) {
      double inserted = 0;
      for (const replay::ShardStats& shard : (*client)->Info()) inserted += shard.inserted_steps;
      env_steps = inserted;
      last_info = now;
    }
    if (now - window_start > absl::Seconds(10)) {
      data_wait.Set(absl::ToDoubleSeconds(window_wait) / absl::ToDoubleSeconds(now - window_start));
      updates_per_second.Set(window_updates / absl::ToDoubleSeconds(now - window_start));
      window_start = now;
      window_wait = absl::ZeroDuration();
      window_updates = 0;
    }
    if (!sample.has_value()) continue;
    absl::StatusOr<Batch> batch = ToBatch(*sample);
    if (!batch.ok()) {
      DF_LOG(ERROR) << "dropping a malformed batch: " << batch.status();
      continue;
    }
    absl::StatusOr<TrainMetrics> result = agent.Train(*batch);
    if (!result.ok()) {
      DF_LOG(ERROR) << "dropping a batch the model cannot take: " << result.status();
      continue;
    }
    if (result->skipped) {
      skipped_total.Increment();
      DF_LOG(WARNING) << "update skipped: " << result->skip_reason;
      continue;
    }
    updates_total.Increment();
    ++window_updates;
    ++updates_since_publish;
    wm_seconds.Observe(result->world_model_seconds);
    ac_seconds.Observe(result->actor_critic_seconds);
    replayed_steps += static_cast<double>(batch_size) * length;
    replayed.Increment(static_cast<double>(batch_size) * length);
    for (const auto& [name, value] : result->losses) {
      metrics->Gauge("dreamfleet_learner_loss", "Loss terms of the latest update.", {{"name", name}})
          .Set(value);
    }
    if (auto it = result->metrics.find("entropy"); it != result->metrics.end()) entropy.Set(it->second);
    if (auto it = result->metrics.find("ret"); it != result->metrics.end()) ret.Set(it->second);
    if (env_steps > 0) train_ratio.Set(replayed_steps / env_steps);
    if (prioritized && result->sequence_losses.size() == sample->keys.size()) {
      // An item's priority is how badly the world model predicted it in this update.
      absl::StatusOr<uint64_t> updated =
          (*client)->UpdatePriorities(sample->shard, sample->keys, result->sequence_losses);
      if (!updated.ok()) DF_LOG(WARNING) << "priority update failed: " << updated.status();
    }
    if (updates_since_publish >= config.learner.publish_every_updates ||
        now - last_publish >= absl::Seconds(config.learner.publish_every_seconds)) {
      if (absl::Status status = publish(); !status.ok()) return status;
    }
    {
      absl::MutexLock lock(&status_mu);
      status_snapshot.set_weights_version(version);
      status_snapshot.set_updates(agent.updates());
      status_snapshot.set_replayed_steps(static_cast<int64_t>(replayed_steps));
      status_snapshot.set_env_steps(static_cast<int64_t>(env_steps));
      status_snapshot.set_train_ratio(env_steps > 0 ? replayed_steps / env_steps : 0);
      status_snapshot.set_updates_per_second(updates_per_second.Value());
      status_snapshot.set_data_wait_fraction(data_wait.Value());
      status_snapshot.set_entropy(entropy.Value());
      status_snapshot.set_episode_return(ret.Value());
      status_snapshot.mutable_losses()->clear();
      for (const auto& [name, value] : result->losses) (*status_snapshot.mutable_losses())[name] = value;
    }
    if (now - last_checkpoint >= absl::Minutes(config.learner.checkpoint_minutes)) checkpoint();
  }
  if (agent.updates() > 0) checkpoint();
  return absl::OkStatus();
}

}  // namespace dreamfleet::learner
