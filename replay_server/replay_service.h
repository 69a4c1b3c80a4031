// gRPC front of one replay shard (sync API). Handlers are thin adapters: they wrap the call's
// stream for InsertStream / SampleStream (insert_stream.h, sample_stream.h, where the streaming
// protocols live and are tested without gRPC) or call ReplayShard / Table directly, convert the
// resulting status once through services::ToGrpcStatus, and record per-RPC latency and
// rejections.
#pragma once

#include <atomic>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "dreamfleet/v1/replay.grpc.pb.h"
#include "replay_server/insert_stream.h"
#include "replay_server/replay_shard.h"
#include "replay_server/sample_stream.h"
#include "services/metrics.h"
#include "services/security.h"

namespace dreamfleet::replay {

// An Insert call's stream as serialized messages (InsertRequest in, InsertResponse out).
using RawInsertStream = grpc::ServerReaderWriter<grpc::ByteBuffer, grpc::ByteBuffer>;

struct ReplayServiceOptions {
  std::string shard_name = "shard-0";   // reported in SampleResponse.shard and InfoResponse.shard
  size_t max_message_bytes = 64 << 20;  // larger requests are INVALID_ARGUMENT
  size_t max_actor_id_bytes = 256;      // so are chunks with a longer actor id
  // Insert, Sample and GetEpisode calls open at once (each holds server threads while open);
  // more are refused with UNAVAILABLE, which clients retry. 0 = no limit.
  int64_t max_streams = 0;
  // Of those, the calls one client address (the peer's IP) may hold open. 0 = no limit.
  int64_t max_streams_per_client = 0;
  absl::Duration default_sample_timeout = absl::Seconds(60);
  // Checks every call's bearer token (actors insert; the learner samples and updates priorities;
  // every role may query). nullptr = no check. Must outlive the service.
  const services::Authorizer* authorizer = nullptr;
};

class ReplayServiceImpl final : public v1::ReplayService::Service {
 public:
  ReplayServiceImpl(ReplayShard* shard, services::Metrics* metrics, ReplayServiceOptions options);

  // Insert is served raw (RawInsertStream): its messages are parsed by the handler, so one that
  // does not parse ends the call with INVALID_ARGUMENT instead of looking like the stream's end.
  grpc::Status ServeInsert(grpc::ServerContext* context, RawInsertStream* stream);
  grpc::Status Sample(grpc::ServerContext* context, const v1::SampleRequest* request,
                      grpc::ServerWriter<v1::SampleResponse>* writer) override;
  grpc::Status UpdatePriorities(grpc::ServerContext* context,
                                const v1::UpdatePrioritiesRequest* request,
                                v1::UpdatePrioritiesResponse* response) override;
  grpc::Status Info(grpc::ServerContext* context, const v1::InfoRequest* request,
                    v1::InfoResponse* response) override;
  grpc::Status ListEpisodes(grpc::ServerContext* context, const v1::ListEpisodesRequest* request,
                            v1::ListEpisodesResponse* response) override;
  grpc::Status GetEpisode(grpc::ServerContext* context, const v1::GetEpisodeRequest* request,
                          grpc::ServerWriter<v1::GetEpisodeResponse>* writer) override;

 private:
  grpc::Status Reject(const absl::Status& status, const std::string& reason);
  // Counts a stream open until `slot` dies; OK, or UNAVAILABLE past the shard's cap or the
  // client's. Insert calls stop short of either cap (services::InsertStreamPlaces).
  class StreamSlot;
  grpc::Status OpenStream(absl::string_view method, const grpc::ServerContext* context,
                          StreamSlot* slot);
  // OK, or the refusal (counted as a rejection and logged) of a call no allowed role makes.
  grpc::Status Authorize(const grpc::ServerContext* context, absl::string_view method,
                         std::initializer_list<services::Role> allowed);
  prometheus::Histogram& Latency(const std::string& method);
  prometheus::Counter& SampleStreams();  // dreamfleet_replay_sample_streams_total

  ReplayShard* const shard_;
  services::Metrics* const metrics_;
  const ReplayServiceOptions options_;
  InsertStreamOptions insert_options_;  // set once in the constructor
  // Open calls, counted under one mutex so that a refused call never holds a place, even briefly.
  struct OpenCount {
    int64_t calls = 0;
    int64_t inserts = 0;  // of which Insert calls
  };
  absl::Mutex streams_mu_;
  OpenCount open_ ABSL_GUARDED_BY(streams_mu_);
  absl::flat_hash_map<std::string, OpenCount> client_streams_ ABSL_GUARDED_BY(streams_mu_);
  prometheus::Gauge* open_streams_gauge_;
  SampleStreamOptions sample_options_;
};

}  // namespace dreamfleet::replay
