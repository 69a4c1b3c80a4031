// The ReplayService handlers: gRPC peers for InsertStream / SampleStream, unary calls straight to
// the Table, rejection and latency metrics.
#include "replay_server/replay_service.h"

#include <grpcpp/impl/codegen/proto_utils.h>
#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/method_handler.h>
#include <grpcpp/support/proto_buffer_reader.h>
#include <grpcpp/support/proto_buffer_writer.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "services/config.h"
#include "services/grpc_util.h"
#include "services/logging.h"

namespace dreamfleet::replay {
namespace {

// An Insert call's gRPC stream as InsertStream's peer. The stream carries raw bytes and the peer
// parses them: gRPC's own parsing would end the reading of a message that does not parse as if
// the client had finished, and the call would end OK.
class GrpcInsertPeer final : public InsertStream::Peer {
 public:
  GrpcInsertPeer(grpc::ServerContext* context, RawInsertStream* stream)
      : context_(context), stream_(stream) {}
  bool Read(v1::InsertRequest* request) override {
    grpc::ByteBuffer buffer;
    if (!stream_->Read(&buffer)) return false;
    ++messages_;
    const size_t bytes = buffer.Length();
    if (grpc::Status parsed =
            grpc::GenericDeserialize<grpc::ProtoBufferReader, v1::InsertRequest>(&buffer, request);
        !parsed.ok()) {
      error_ = absl::InvalidArgumentError(
          absl::StrCat("message ", messages_, " of the Insert stream (", bytes,
                       " bytes) is not an InsertRequest: it does not parse"));
      return false;
    }
    return true;
  }
  absl::Status ReadError() override { return error_; }
  bool Write(const v1::InsertResponse& ack) override {
    grpc::ByteBuffer buffer;
    bool own_buffer = false;
    if (!grpc::GenericSerialize<grpc::ProtoBufferWriter, v1::InsertResponse>(ack, &buffer,
                                                                             &own_buffer)
             .ok()) {
      return false;
    }
    return stream_->Write(buffer);
  }
  bool IsCancelled() override { return context_->IsCancelled(); }

 private:
  grpc::ServerContext* const context_;
  RawInsertStream* const stream_;
  uint64_t messages_ = 0;
  absl::Status error_;
};

// A Sample call's gRPC writer as SampleStream's peer.
class GrpcSamplePeer final : public SampleStream::Peer {
 public:
  GrpcSamplePeer(grpc::ServerContext* context, grpc::ServerWriter<v1::SampleResponse>* writer)
      : context_(context), writer_(writer) {}
  bool Write(const v1::SampleResponse& batch) override { return writer_->Write(batch); }
  bool IsCancelled() override { return context_->IsCancelled(); }

 private:
  grpc::ServerContext* const context_;
  grpc::ServerWriter<v1::SampleResponse>* const writer_;
};

}  // namespace

// One open stream of the shard's count; releases it when the handler returns.
class ReplayServiceImpl::StreamSlot {
 public:
  StreamSlot() = default;
  StreamSlot(const StreamSlot&) = delete;
  StreamSlot& operator=(const StreamSlot&) = delete;
  ~StreamSlot() {
    if (service_ == nullptr) return;
    service_->open_streams_gauge_->Decrement();
    absl::MutexLock lock(&service_->streams_mu_);
    --service_->open_.calls;
    if (insert_) --service_->open_.inserts;
    if (client_.empty()) return;
    auto it = service_->client_streams_.find(client_);
    if (it == service_->client_streams_.end()) return;
    if (insert_) --it->second.inserts;
    if (--it->second.calls <= 0) service_->client_streams_.erase(it);
  }

 private:
  friend class ReplayServiceImpl;
  ReplayServiceImpl* service_ = nullptr;  // set once the call holds a place
  bool insert_ = false;
  std::string client_;  // counted in client_streams_ when set
};

namespace {

// The client address of a call without its port: "ipv4:10.0.0.7", "ipv6:[::1]", "unix:/path".
std::string ClientAddress(const grpc::ServerContext* context) {
  std::string peer = context->peer();
  const size_t scheme = peer.find(':');
  const size_t port = peer.rfind(':');
  if (scheme != std::string::npos && port != scheme && (peer.rfind("ipv", 0) == 0)) {
    peer.resize(port);
  }
  return peer;
}

}  // namespace

grpc::Status ReplayServiceImpl::OpenStream(absl::string_view method,
                                           const grpc::ServerContext* context, StreamSlot* slot) {
  // Insert calls leave a few places free (services::InsertStreamPlaces), so a full set of actors
  // never locks out the learner's Sample or a reader. UNAVAILABLE: clients back off and retry, as
  // they would for a shard that is down.
  const bool insert = method == "Insert";
  const std::string client =
      options_.max_streams_per_client > 0 ? ClientAddress(context) : std::string();
  absl::MutexLock lock(&streams_mu_);
  // The refusal when this call would pass `cap` (config key `key`), with `held` open already by
  // `holder` ("this shard already serves", "client ... already holds"); OK when it fits.
  auto check_cap = [&](const OpenCount& held, int64_t cap, absl::string_view key,
                       absl::string_view holder, absl::string_view where,
                       absl::string_view reason) -> grpc::Status {
    if (held.calls >= cap) {
      return Reject(absl::UnavailableError(absl::StrCat(
                        method, " refused: ", holder, " ", held.calls, " streams", where, " (", key,
                        " ", cap, "); retry later or raise the limit")),
                    std::string(reason));
    }
    if (insert && held.inserts >= services::InsertStreamPlaces(cap)) {
      return Reject(absl::UnavailableError(absl::StrCat(
                        "Insert refused: ", holder, " ", held.inserts, " Insert streams", where,
                        ", all that ", key, " (", cap,
                        ") lets Insert calls hold (the rest stay free for Sample and readers); "
                        "retry later or raise the limit")),
                    std::string(reason));
    }
    return grpc::Status::OK;
  };
  if (options_.max_streams > 0) {
    grpc::Status fits = check_cap(open_, options_.max_streams, "replay.max_streams",
                                  "this shard already serves", "", "too_many_streams");
    if (!fits.ok()) return fits;
  }
  if (options_.max_streams_per_client > 0) {
    auto it = client_streams_.find(client);
    grpc::Status fits =
        check_cap(it == client_streams_.end() ? OpenCount() : it->second,
                  options_.max_streams_per_client, "replay.max_streams_per_client",
                  absl::StrCat("client ", services::QuoteClientText(client), " already holds"),
                  " on this shard", "too_many_client_streams");
    if (!fits.ok()) return fits;
    OpenCount& count = client_streams_[client];
    ++count.calls;
    if (insert) ++count.inserts;
    slot->client_ = client;
  }
  ++open_.calls;
  if (insert) ++open_.inserts;
  slot->service_ = this;
  slot->insert_ = insert;
  open_streams_gauge_->Increment();
  return grpc::Status::OK;
}

ReplayServiceImpl::ReplayServiceImpl(ReplayShard* shard, services::Metrics* metrics,
                                     ReplayServiceOptions options)
    : shard_(shard), metrics_(metrics), options_(std::move(options)) {
  // Method 0 of ReplayService (the order of replay.proto) is Insert; its handler gets the
  // serialized messages (the generated WithRawMethod_Insert names the same index).
  MarkMethodStreamed(
      0, new grpc::internal::BidiStreamingHandler<ReplayServiceImpl, grpc::ByteBuffer,
                                                  grpc::ByteBuffer>(
             [](ReplayServiceImpl* service, grpc::ServerContext* context, RawInsertStream* stream) {
               return service->ServeInsert(context, stream);
             },
             this));
  for (const char* method :
       {"Insert", "Sample", "UpdatePriorities", "Info", "ListEpisodes", "GetEpisode"}) {
    Latency(method);
  }
  SampleStreams();
  open_streams_gauge_ = &metrics_->Gauge(
      "dreamfleet_replay_open_streams",
      "Insert, Sample and GetEpisode calls open now (replay.max_streams caps them).");
  insert_options_.max_message_bytes = options_.max_message_bytes;
  insert_options_.max_actor_id_bytes = options_.max_actor_id_bytes;
  insert_options_.on_ack = [latency = &Latency("Insert")](absl::Duration since_read) {
    latency->Observe(absl::ToDoubleSeconds(since_read));
  };
  sample_options_.shard_name = options_.shard_name;
  sample_options_.max_message_bytes = options_.max_message_bytes;
  sample_options_.default_timeout = options_.default_sample_timeout;
  sample_options_.on_batch = [latency = &Latency("Sample")](absl::Duration since_last) {
    latency->Observe(absl::ToDoubleSeconds(since_last));
  };
}

prometheus::Counter& ReplayServiceImpl::SampleStreams() {
  return metrics_->Counter("dreamfleet_replay_sample_streams_total",
                           "Sample RPCs opened; each streams batches until cancelled or until "
                           "num_batches (0 = unbounded) are sent.");
}

prometheus::Histogram& ReplayServiceImpl::Latency(const std::string& method) {
  return metrics_->Histogram("dreamfleet_replay_rpc_latency_seconds",
                             "Latency per RPC; per chunk (read to durable ack) for Insert and "
                             "per batch for Sample.",
                             services::Metrics::LatencyBuckets(), {{"method", method}});
}

grpc::Status ReplayServiceImpl::Reject(const absl::Status& status, const std::string& reason) {
  metrics_->Counter("dreamfleet_replay_rejected_total", "Requests rejected, by reason.",
                    {{"reason", reason}})
      .Increment();
  return services::ToGrpcStatus(status);
}

grpc::Status ReplayServiceImpl::Authorize(const grpc::ServerContext* context,
                                          absl::string_view method,
                                          std::initializer_list<services::Role> allowed) {
  if (options_.authorizer == nullptr) return grpc::Status::OK;
  grpc::Status status = options_.authorizer->Check(*context, method, allowed);
  if (status.ok()) return status;
  DF_LOG(WARNING) << "refused " << method << " from " << services::QuoteClientText(context->peer())
                  << ": " << status.error_message();
  metrics_
      ->Counter("dreamfleet_replay_rejected_total", "Requests rejected, by reason.",
                {{"reason", status.error_code() == grpc::StatusCode::PERMISSION_DENIED
                                ? "permission_denied"
                                : "unauthenticated"}})
      .Increment();
  return status;
}

grpc::Status ReplayServiceImpl::ServeInsert(grpc::ServerContext* context, RawInsertStream* stream) {
  if (grpc::Status denied = Authorize(context, "Insert", {services::Role::kActor}); !denied.ok()) {
    return denied;
  }
  StreamSlot slot;
  if (grpc::Status full = OpenStream("Insert", context, &slot); !full.ok()) return full;
  GrpcInsertPeer peer(context, stream);
  const InsertStream::Outcome outcome = InsertStream(shard_, &peer, insert_options_).Run();
  if (outcome.rejection.empty()) return services::ToGrpcStatus(outcome.status);
  DF_LOG(WARNING) << "rejected insert: " << outcome.status.message();
  return Reject(outcome.status, outcome.rejection);
}

grpc::Status ReplayServiceImpl::Sample(grpc::ServerContext* context,
                                       const v1::SampleRequest* request,
                                       grpc::ServerWriter<v1::SampleResponse>* writer) {
  if (grpc::Status denied = Authorize(context, "Sample", {services::Role::kLearner});
      !denied.ok()) {
    return denied;
  }
  StreamSlot slot;
  if (grpc::Status full = OpenStream("Sample", context, &slot); !full.ok()) return full;
  SampleStreams().Increment();
  GrpcSamplePeer peer(context, writer);
  const SampleStream::Outcome outcome =
      SampleStream(shard_->table(), &peer, sample_options_).Run(*request);
  if (outcome.rejection.empty()) return services::ToGrpcStatus(outcome.status);
  return Reject(outcome.status, outcome.rejection);
}

grpc::Status ReplayServiceImpl::UpdatePriorities(grpc::ServerContext* context,
                                                 const v1::UpdatePrioritiesRequest* request,
                                                 v1::UpdatePrioritiesResponse* response) {
  if (grpc::Status denied = Authorize(context, "UpdatePriorities", {services::Role::kLearner});
      !denied.ok()) {
    return denied;
  }
  const absl::Time start = absl::Now();
  if (absl::Status s = shard_->table()->CheckName(request->table()); !s.ok()) {
    return Reject(s, "unknown_table");
  }
  absl::StatusOr<v1::UpdatePrioritiesResponse> result =
      shard_->table()->UpdatePriorities(*request);
  if (!result.ok()) return Reject(result.status(), "bad_request");
  *response = std::move(*result);
  Latency("UpdatePriorities").Observe(absl::ToDoubleSeconds(absl::Now() - start));
  return grpc::Status::OK;
}

grpc::Status ReplayServiceImpl::Info(grpc::ServerContext* context, const v1::InfoRequest* request,
                                     v1::InfoResponse* response) {
  if (grpc::Status denied =
          Authorize(context, "Info",
                    {services::Role::kActor, services::Role::kLearner, services::Role::kReader});
      !denied.ok()) {
    return denied;
  }
  const absl::Time start = absl::Now();
  if (absl::Status s = shard_->table()->CheckName(request->table()); !s.ok()) {
    return Reject(s, "unknown_table");
  }
  *response->add_tables() = shard_->table()->Info();
  response->set_shard(options_.shard_name);
  Latency("Info").Observe(absl::ToDoubleSeconds(absl::Now() - start));
  return grpc::Status::OK;
}

grpc::Status ReplayServiceImpl::ListEpisodes(grpc::ServerContext* context,
                                             const v1::ListEpisodesRequest* request,
                                             v1::ListEpisodesResponse* response) {
  if (grpc::Status denied =
          Authorize(context, "ListEpisodes",
                    {services::Role::kActor, services::Role::kLearner, services::Role::kReader});
      !denied.ok()) {
    return denied;
  }
  const absl::Time start = absl::Now();
  if (absl::Status s = shard_->table()->CheckName(request->table()); !s.ok()) {
    return Reject(s, "unknown_table");
  }
  absl::StatusOr<v1::ListEpisodesResponse> result = shard_->table()->ListEpisodes(*request);
  if (!result.ok()) return Reject(result.status(), "bad_request");
  *response = std::move(*result);
  Latency("ListEpisodes").Observe(absl::ToDoubleSeconds(absl::Now() - start));
  return grpc::Status::OK;
}

grpc::Status ReplayServiceImpl::GetEpisode(grpc::ServerContext* context,
                                           const v1::GetEpisodeRequest* request,
                                           grpc::ServerWriter<v1::GetEpisodeResponse>* writer) {
  if (grpc::Status denied =
          Authorize(context, "GetEpisode",
                    {services::Role::kActor, services::Role::kLearner, services::Role::kReader});
      !denied.ok()) {
    return denied;
  }
  StreamSlot slot;
  if (grpc::Status full = OpenStream("GetEpisode", context, &slot); !full.ok()) return full;
  const absl::Time start = absl::Now();
  if (absl::Status s = shard_->table()->CheckName(request->table()); !s.ok()) {
    return Reject(s, "unknown_table");
  }
  absl::Status status = shard_->table()->GetEpisode(
      request->episode_id(), request->max_steps_per_message(),
      [&](const v1::GetEpisodeResponse& message) { return writer->Write(message); });
  if (absl::IsNotFound(status)) return Reject(status, "unknown_episode");
  if (!status.ok()) return services::ToGrpcStatus(status);
  Latency("GetEpisode").Observe(absl::ToDoubleSeconds(absl::Now() - start));
  return grpc::Status::OK;
}

}  // namespace dreamfleet::replay
