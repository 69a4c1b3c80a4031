// The actor's side of the weight broadcast (no LibTorch).
// Background thread: Subscribe(have_version) stream to the learner -> WeightsAssembler ->
// newest complete WeightsVersion, which the actor picks up between env steps with Latest().
// When the learner is away or restarts, the thread logs and resubscribes with backoff, naming the
// version it holds and the learner run it came from (a restarted learner sends its newest).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "broadcast/weights.h"
#include "dreamfleet/v1/parameter.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "services/grpc_util.h"
#include "services/metrics.h"

namespace dreamfleet::broadcast {

class ParameterClient {
 public:
  struct Options {
    std::string address;   // the learner's "host:port"
    std::string actor_id;  // shown in the learner's logs
    // Used to make the channel unless `channel` is given.
    services::ChannelOptions channel_options;
    // A channel to use instead (e.g. one with its own connection per client in a benchmark).
    std::shared_ptr<grpc::Channel> channel;
    absl::Duration initial_backoff = absl::Milliseconds(100);
    absl::Duration max_backoff = absl::Seconds(5);
    // Where dreamfleet_actor_weights_version goes; nullptr = not exported.
    services::Metrics* metrics = nullptr;
    // Called on the stream thread with each assembled version (after Latest() returns it).
    std::function<void(const std::shared_ptr<const broadcast::WeightsVersion>&)> on_version;
    // Test hook: called on the stream thread after each message is read and before the next
    // read; blocking in it makes this subscriber slow.
    std::function<void(const v1::ParameterUpdate&)> on_message_for_test;
  };

  // Starts the stream thread. Fails only on bad options; an absent learner is retried.
  static absl::StatusOr<std::unique_ptr<ParameterClient>> Create(Options options);
  ~ParameterClient();  // Stop()
  ParameterClient(const ParameterClient&) = delete;
  ParameterClient& operator=(const ParameterClient&) = delete;

  // Cancels the stream and joins the thread. Idempotent.
  void Stop();

  // The newest complete version received (nullptr before the first). Never blocks on the
  // network: a short mutex around a shared_ptr copy.
  std::shared_ptr<const broadcast::WeightsVersion> Latest() const ABSL_LOCKS_EXCLUDED(latest_mu_);
  // Its version; 0 before the first. Lock-free.
  int64_t latest_version() const { return latest_version_.load(std::memory_order_acquire); }

  // Blocks until a version >= min_version has arrived, up to `timeout` (DeadlineExceeded), or the
  // client is stopped (Cancelled).
  absl::StatusOr<std::shared_ptr<const broadcast::WeightsVersion>> WaitForVersion(
      int64_t min_version, absl::Duration timeout) ABSL_LOCKS_EXCLUDED(latest_mu_);

  // Streams opened after the first (learner away, restarted, or a broken version).
  int64_t reconnects() const { return reconnects_.load(std::memory_order_relaxed); }

 private:
  explicit ParameterClient(Options options);
  void Run();
  // One Subscribe stream until it ends; returns its status and whether it delivered a version.
  grpc::Status RunStream(bool* got_version);
  void Install(std::shared_ptr<const broadcast::WeightsVersion> weights);

  const Options options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::ParameterService::Stub> stub_;
  prometheus::Gauge* version_gauge_ = nullptr;

  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;  // the open stream's

  mutable absl::Mutex latest_mu_;
  std::shared_ptr<const broadcast::WeightsVersion> latest_ ABSL_GUARDED_BY(latest_mu_);
  bool stopped_ ABSL_GUARDED_BY(latest_mu_) = false;  // wakes WaitForVersion on Stop
  std::atomic<int64_t> latest_version_{0};
  std::atomic<int64_t> reconnects_{0};
  std::string learner_run_;  // the run latest_ came from (stream thread only)

  std::thread thread_;
};

}  // namespace dreamfleet::broadcast
