// The learner's weight broadcast (gRPC ParameterService, callback API, no LibTorch).
// Learner thread: Publish(version) -> split into parts and serialize once -> every Subscribe
// reactor is told; each reactor writes the parts of the newest version it does not have, one write
// in flight at a time. A subscriber still writing version 5 when 6 and 7 arrive gets 7 next.
// Status answers from a provider the learner installs.
// Stopping: service.Shutdown() (ends every stream once its write in flight completes), then
// server->Shutdown(deadline) (the deadline cancels a subscriber too stuck to take that write),
// then destroy the service.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "broadcast/weights.h"
#include "dreamfleet/v1/parameter.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "services/metrics.h"
#include "services/security.h"

namespace dreamfleet::broadcast {

// One published version in wire form, shared by every subscriber (the ByteBuffers' slices are
// reference counted, so writing a part to N subscribers copies no payload).
struct EncodedVersion {
  int64_t version = 0;
  std::vector<grpc::ByteBuffer> parts;  // serialized ParameterUpdate, part 0 .. n-1
  size_t total_bytes = 0;               // sum of the parts' sizes
};

// The parts SplitIntoUpdates(*weights, max_message_bytes) would give, serialized, with every
// tensor's bytes referenced rather than copied (each part keeps `weights` alive): publishing a
// version copies only names, shapes and small tensors.
// Every part carries `learner_run`.
std::shared_ptr<const EncodedVersion> EncodeVersion(
    std::shared_ptr<const broadcast::WeightsVersion> weights, size_t max_message_bytes,
    const std::string& learner_run = "");

// Subscribe is a raw (ByteBuffer) callback method so each part is serialized once per version;
// on the wire it is the ParameterService contract unchanged. Status is a typed callback method.
class ParameterServiceImpl final
    : public v1::ParameterService::WithRawCallbackMethod_Subscribe<
          v1::ParameterService::WithCallbackMethod_Status<v1::ParameterService::Service>> {
 public:
  struct Options {
    // Size of one ParameterUpdate; must stay below the server's and clients' message limits.
    size_t max_message_bytes = broadcast::kDefaultUpdateMessageBytes;
    // Where the dreamfleet_learner_* metrics go; nullptr = a private registry.
    services::Metrics* metrics = nullptr;
    // Names this learner process on every ParameterUpdate; empty = random. A subscriber's
    // have_version is honoured only when it names the same run.
    std::string learner_run;
    // Checks every call's bearer token (every role may read weights and status). nullptr = no
    // check. Must outlive the service.
    const services::Authorizer* authorizer = nullptr;
  };

  ParameterServiceImpl();
  explicit ParameterServiceImpl(Options options);
  // Ends every stream (Shutdown) and waits until gRPC has released every reactor: destroy this
  // after grpc::Server::Shutdown, or while the server is still running, never before it starts.
  ~ParameterServiceImpl() override;
  ParameterServiceImpl(const ParameterServiceImpl&) = delete;
  ParameterServiceImpl& operator=(const ParameterServiceImpl&) = delete;

  // Makes `weights` the newest version (validated; its version must exceed the current one) and
  // has every subscriber woken. Frames the parts on the caller's thread (tensor bytes are
  // referenced, not copied: ~0.1 ms); never waits for a subscriber. Thread-safe.
  absl::Status Publish(std::shared_ptr<const broadcast::WeightsVersion> weights);

  // The newest published version (nullptr before the first Publish).
  std::shared_ptr<const broadcast::WeightsVersion> latest() const;
  int64_t version() const;
  const std::string& learner_run() const { return options_.learner_run; }
  int subscribers() const;
  // Blocks until exactly `count` subscribers are connected or `timeout` passes; false on timeout.
  // A subscriber counts from its Subscribe call until gRPC is done with its stream.
  bool WaitForSubscribers(int count, absl::Duration timeout) const;

  // Fills Status responses. weights_version and subscribers are set by this service when the
  // provider leaves them 0.
  void SetStatusProvider(std::function<v1::StatusResponse()> provider);

  // Finishes every open stream with UNAVAILABLE ("learner shutting down") and refuses new ones,
  // so that grpc::Server::Shutdown returns promptly. Idempotent.
  void Shutdown();

  // gRPC entry points.
  grpc::ServerWriteReactor<grpc::ByteBuffer>* Subscribe(grpc::CallbackServerContext* context,
                                                        const grpc::ByteBuffer* request) override;
  grpc::ServerUnaryReactor* Status(grpc::CallbackServerContext* context,
                                   const v1::StatusRequest* request,
                                   v1::StatusResponse* response) override;

 private:
  class SubscribeReactor;
  friend class SubscribeReactor;

  std::shared_ptr<const EncodedVersion> latest_encoded() const;
  // OK, or the refusal (logged and counted) of a call without an allowed role's token.
  grpc::Status Authorize(const grpc::CallbackServerContext* context, absl::string_view method);
  void Remove(SubscribeReactor* reactor);

  const Options options_;
  std::unique_ptr<services::Metrics> own_metrics_;
  prometheus::Gauge* subscribers_gauge_;
  prometheus::Gauge* version_gauge_;
  prometheus::Counter* sent_bytes_;
  prometheus::Counter* refused_unauthenticated_;
  prometheus::Counter* refused_permission_denied_;

  // Lock order: reactors_mu_ -> a reactor's mutex -> latest_mu_.
  mutable absl::Mutex latest_mu_;
  std::shared_ptr<const broadcast::WeightsVersion> latest_ ABSL_GUARDED_BY(latest_mu_);
  std::shared_ptr<const EncodedVersion> latest_encoded_ ABSL_GUARDED_BY(latest_mu_);
  std::function<v1::StatusResponse()> status_provider_ ABSL_GUARDED_BY(latest_mu_);

  mutable absl::Mutex reactors_mu_;
  std::set<SubscribeReactor*> reactors_ ABSL_GUARDED_BY(reactors_mu_);
  bool shutting_down_ ABSL_GUARDED_BY(reactors_mu_) = false;
  int live_reactors_ ABSL_GUARDED_BY(reactors_mu_) = 0;  // created and not yet done

  absl::Mutex publish_mu_;  // serializes Publish calls (version order)

  // Subscribers are woken for a new version on this thread, not Publish's: a write started by a
  // wake-up may run the transport inline, and the learner's thread should not pay for that.
  void NotifyLoop();
  absl::Mutex notify_mu_;
  int64_t notify_requests_ ABSL_GUARDED_BY(notify_mu_) = 0;
  bool notify_stop_ ABSL_GUARDED_BY(notify_mu_) = false;
  // Replaced versions, freed on the notifier thread too (unmapping ~30 MB costs milliseconds).
  std::vector<std::shared_ptr<const void>> to_release_ ABSL_GUARDED_BY(notify_mu_);
  std::thread notifier_;
};

}  // namespace dreamfleet::broadcast
