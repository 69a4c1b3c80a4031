#include "replay_server/replay_service.h"

#include <deque>
#include <future>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
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

// Blocking table calls wait in slices of this length so a cancelled call is noticed.
constexpr absl::Duration kWaitSlice = absl::Milliseconds(500);

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
  insert_options_.wait_slice = kWaitSlice;
  insert_options_.on_ack = [latency = &Latency("Insert")](absl::Duration since_read) {
    latency->Observe(absl::ToDoubleSeconds(since_read));
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

absl::Status ReplayServiceImpl::CheckTable(const std::string& table) const {
  return shard_->table()->CheckName(table);
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
  if (absl::Status s = CheckTable(request->table()); !s.ok()) return Reject(s, "unknown_table");
  const int batch_size = request->batch_size() == 0 ? 16 : request->batch_size();
  const int sequence_length = request->sequence_length() == 0 ? shard_->table()->sequence_length()
                                                              : request->sequence_length();
  if (std::optional<Signature> signature = shard_->table()->signature()) {
    const double bytes = static_cast<double>(signature->step_bytes()) * batch_size *
                         std::max(sequence_length, 1);
    if (bytes > static_cast<double>(options_.max_message_bytes)) {
      return Reject(absl::InvalidArgumentError(absl::StrCat(
                        "a batch of ", batch_size, " x ", sequence_length, " steps is ", bytes,
                        " bytes, above replay.max_message_mb (", options_.max_message_bytes,
                        " bytes)")),
                    "oversized");
    }
  }
  const absl::Duration timeout = request->timeout_ms() > 0
                                     ? absl::Milliseconds(request->timeout_ms())
                                     : options_.default_sample_timeout;
  prometheus::Histogram& latency = Latency("Sample");
  // One batch is gathered ahead on a helper thread while the previous one is being written, so
  // copying out of the table overlaps the transport. The two responses are reused: their buffers
  // keep their capacity between batches.
  v1::SampleResponse buffers[2];
  auto produce = [&](v1::SampleResponse* response) -> absl::Status {
    const absl::Time deadline = absl::Now() + timeout;
    while (true) {
      absl::Status status = shard_->table()->Sample(
          batch_size, sequence_length, std::min(deadline, absl::Now() + kWaitSlice), response);
      if (!absl::IsDeadlineExceeded(status) || absl::Now() >= deadline ||
          context->IsCancelled()) {
        return status;
      }
    }
  };
  const int64_t wanted = request->num_batches();
  absl::Time start = absl::Now();
  std::future<absl::Status> next = std::async(std::launch::async, produce, &buffers[0]);
  for (int64_t sent = 0; wanted == 0 || sent < wanted; ++sent) {
    const absl::Status status = next.get();
    if (context->IsCancelled()) return grpc::Status::CANCELLED;
    if (!status.ok()) {
      return absl::IsInvalidArgument(status) ? Reject(status, "bad_request")
                                             : services::ToGrpcStatus(status);
    }
    v1::SampleResponse& response = buffers[sent % 2];
    const bool more = wanted == 0 || sent + 1 < wanted;
    if (more) next = std::async(std::launch::async, produce, &buffers[(sent + 1) % 2]);
    response.set_shard(options_.shard_name);
    const bool written = writer->Write(response);
    latency.Observe(absl::ToDoubleSeconds(absl::Now() - start));
    start = absl::Now();
    if (!written) {
      context->TryCancel();  // stops the batch being gathered (it polls for cancellation)
      if (more) (void)next.get();
      break;
    }
  }
  return grpc::Status::OK;
}

grpc::Status ReplayServiceImpl::UpdatePriorities(grpc::ServerContext* context,
                                                 const v1::UpdatePrioritiesRequest* request,
                                                 v1::UpdatePrioritiesResponse* response) {
  const absl::Time start = absl::Now();
  if (absl::Status s = CheckTable(request->table()); !s.ok()) return Reject(s, "unknown_table");
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
  if (absl::Status s = CheckTable(request->table()); !s.ok()) return Reject(s, "unknown_table");
  *response->add_tables() = shard_->table()->Info();
  response->set_shard(options_.shard_name);
  Latency("Info").Observe(absl::ToDoubleSeconds(absl::Now() - start));
  return grpc::Status::OK;
}

grpc::Status ReplayServiceImpl::ListEpisodes(grpc::ServerContext* context,
                                             const v1::ListEpisodesRequest* request,
                                             v1::ListEpisodesResponse* response) {
  const absl::Time start = absl::Now();
  if (absl::Status s = CheckTable(request->table()); !s.ok()) return Reject(s, "unknown_table");
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
  if (absl::Status s = CheckTable(request->table()); !s.ok()) return Reject(s, "unknown_table");
  absl::Status status = shard_->table()->GetEpisode(
      request->episode_id(), request->max_steps_per_message(),
      [&](const v1::GetEpisodeResponse& message) { return writer->Write(message); });
  if (absl::IsNotFound(status)) return Reject(status, "unknown_episode");
  if (!status.ok()) return services::ToGrpcStatus(status);
  Latency("GetEpisode").Observe(absl::ToDoubleSeconds(absl::Now() - start));
  return grpc::Status::OK;
}

}  // namespace dreamfleet::replay
