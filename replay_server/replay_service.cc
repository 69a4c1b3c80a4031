// The ReplayService handlers: gRPC peers for InsertStream / SampleStream, unary calls straight to
// the Table, rejection and latency metrics.
#include "replay_server/replay_service.h"

#include <utility>

#include "services/grpc_util.h"
#include "services/logging.h"

namespace dreamfleet::replay {
namespace {

// An Insert call's gRPC stream as InsertStream's peer.
class GrpcInsertPeer final : public InsertStream::Peer {
 public:
  GrpcInsertPeer(grpc::ServerContext* context,
                 grpc::ServerReaderWriter<v1::InsertResponse, v1::InsertRequest>* stream)
      : context_(context), stream_(stream) {}
  bool Read(v1::InsertRequest* request) override { return stream_->Read(request); }
  bool Write(const v1::InsertResponse& ack) override { return stream_->Write(ack); }
  bool IsCancelled() override { return context_->IsCancelled(); }

 private:
  grpc::ServerContext* const context_;
  grpc::ServerReaderWriter<v1::InsertResponse, v1::InsertRequest>* const stream_;
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

ReplayServiceImpl::ReplayServiceImpl(ReplayShard* shard, services::Metrics* metrics,
                                     ReplayServiceOptions options)
    : shard_(shard), metrics_(metrics), options_(std::move(options)) {
  for (const char* method :
       {"Insert", "Sample", "UpdatePriorities", "Info", "ListEpisodes", "GetEpisode"}) {
    Latency(method);
  }
  SampleStreams();
  insert_options_.max_message_bytes = options_.max_message_bytes;
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

grpc::Status ReplayServiceImpl::Insert(
    grpc::ServerContext* context,
    grpc::ServerReaderWriter<v1::InsertResponse, v1::InsertRequest>* stream) {
  GrpcInsertPeer peer(context, stream);
  const InsertStream::Outcome outcome = InsertStream(shard_, &peer, insert_options_).Run();
  if (outcome.rejection.empty()) return services::ToGrpcStatus(outcome.status);
  DF_LOG(WARNING) << "rejected insert: " << outcome.status.message();
  return Reject(outcome.status, outcome.rejection);
}

grpc::Status ReplayServiceImpl::Sample(grpc::ServerContext* context,
                                       const v1::SampleRequest* request,
                                       grpc::ServerWriter<v1::SampleResponse>* writer) {
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
