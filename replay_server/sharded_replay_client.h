// Client of a set of replay shards, for actors (insert) and the learner (sample, priorities),
// with plain structs in and out so callers never see gRPC. An actor's chunks go to the shard
// ShardForActor(actor_id) = services::Fnv1a64(actor_id) mod number_of_shards, so an actor lands on
// the same shard from any machine (docker, k8s) and after restarts. Samples pick a shard with
// probability proportional to its last known size (from Info and from every batch), skip shards
// that are down and probe them again after an exponential backoff. Per shard the client keeps ONE
// Sample server stream open (num_batches = 0) for the last requested B x T (and timeout): a
// reader thread pulls its batches into a one-batch queue (the stream's flow control bounds the
// prefetch beyond that) and each Sample() takes the next batch from the chosen shard's queue. A
// stream that ends (rate-limiter timeout on the shard, shard restarted, error) is dropped, the
// shard is marked down when unreachable, and the next Sample() on that shard opens a new one.
// Metrics (optional):
// dreamfleet_replay_client_shard_up{shard} and dreamfleet_replay_client_reconnects_total{shard}.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "dreamfleet/v1/replay.pb.h"
#include "dreamfleet/v1/tensor.pb.h"
#include "services/config.h"
#include "services/grpc_util.h"
#include "services/metrics.h"
#include "services/named_tensor.h"

namespace dreamfleet::replay {

// `num_steps` consecutive steps of one actor stream; every field has shape [num_steps, ...].
struct StepChunk {
  std::string actor_id;
  uint64_t sequence = 0;  // 0, 1, 2, ... per actor stream
  uint32_t num_steps = 0;
  int64_t weights_version = 0;
  std::vector<services::NamedTensor> fields;
};

// One B x T batch: every field has shape [B, T, ...].
struct SampledBatch {
  std::vector<services::NamedTensor> fields;
  std::vector<uint64_t> keys;           // for UpdatePriorities, on `shard`
  std::vector<double> probabilities;
  int shard = 0;
  uint64_t shard_size_steps = 0;
  const services::NamedTensor* Find(const std::string& name) const {
    return services::FindTensor(fields, name);
  }
};

struct ShardStats {
  std::string address;
  bool up = false;
  std::string error;  // why it is down
  uint64_t size_steps = 0;
  uint64_t items = 0;
  uint64_t episodes = 0;
  uint64_t inserted_steps = 0;
  uint64_t sampled_items = 0;
  uint64_t bytes = 0;
};

struct ReplayClientOptions {
  std::vector<std::string> addresses;  // host:port per shard, shard order
  std::string table;                   // "" = the shards' table
  absl::Duration rpc_timeout = absl::Seconds(30);
  absl::Duration min_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);
  int max_message_bytes = 256 << 20;
  size_t max_chunks_in_flight = 16;    // per insert writer
  services::Metrics* metrics = nullptr;  // optional
  services::ClientSecurity security;     // TLS and the caller's role token (MakeClientSecurity)
};

// The shard addresses a config names: replay.addresses when set, else host:port+i.
using services::ShardAddresses;
// Client options for the shards, table and message limit of `config`.
ReplayClientOptions ReplayClientOptionsFromConfig(const services::Config& config,
                                                  services::Metrics* metrics);

class InsertWriter;

class ShardedReplayClient {
 public:
  static absl::StatusOr<std::unique_ptr<ShardedReplayClient>> Create(ReplayClientOptions options);
  ~ShardedReplayClient();

  int num_shards() const { return static_cast<int>(shards_.size()); }
  int ShardForActor(const std::string& actor_id) const;

  // A writer for the stream `stream_id` (the chunks' actor_id field), connected to the shard of
  // `actor_id`, ShardForActor(actor_id): every stream of an actor (one per env and process start)
  // goes to that one shard, from any machine and across restarts, so an actor waits on at most
  // one shard.
  std::unique_ptr<InsertWriter> NewWriter(const std::string& stream_id,
                                          const std::string& actor_id);
  // A writer for a stream that is its own actor (routed by `actor_id`).
  std::unique_ptr<InsertWriter> NewWriter(const std::string& actor_id) {
    return NewWriter(actor_id, actor_id);
  }

  // One B x T batch from a shard picked by size; tries the other shards when one is down.
  // `timeout` bounds the wait for the rate limiter (per shard tried). Batches come from a stream
  // kept open per shard, so a batch may have been drawn from the table up to about two batches
  // before it is returned (priorities updated meanwhile apply from the following batches). The
  // stream is kept per (B, T, timeout): another combination replaces the shard's stream. The
  // shard itself ends the stream when no batch is allowed within `timeout` (the client waits for
  // that answer, up to timeout + rpc_timeout). Thread-safe.
  absl::StatusOr<SampledBatch> Sample(int batch_size, int sequence_length,
                                      absl::Duration timeout);
  // Priorities for keys of a batch that came from `shard`. Returns the number updated.
  absl::StatusOr<uint64_t> UpdatePriorities(int shard, const std::vector<uint64_t>& keys,
                                            const std::vector<double>& priorities);
  // Asks every shard for its table info (refreshes the sizes used for sampling).
  std::vector<ShardStats> Info();

 private:
  friend class InsertWriter;
  struct Shard;
  class SampleStream;
  // The open sample stream of shard i for B x T, opened (or replaced) if needed.
  std::shared_ptr<SampleStream> OpenSampleStream(int shard, int batch_size, int sequence_length,
                                                 absl::Duration timeout, bool* opened);
  // Forgets `stream` as shard i's sample stream (if it still is) and shuts it down.
  void DropSampleStream(int shard, const std::shared_ptr<SampleStream>& stream);
  explicit ShardedReplayClient(ReplayClientOptions options);
  // Records the outcome of a call to shard i (up/down, backoff, metrics).
  void MarkUp(int shard, uint64_t size_steps, bool size_known);
  void MarkDown(int shard, const absl::Status& status);
  // Shards to try for a sample, best first.
  std::vector<int> SampleOrder();

  const ReplayClientOptions options_;
  std::vector<std::unique_ptr<Shard>> shards_;
  absl::Mutex mu_;
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_);
};

// Streams one actor's chunks to its shard with up to max_chunks_in_flight unacknowledged.
// A broken stream is reopened with backoff and the unacknowledged chunks are sent again (the
// shard recognises and drops chunks it already stored). A chunk the shard rejects
// (INVALID_ARGUMENT, NOT_FOUND, ...) ends the writer: Send and Flush return that error.
// Writers hold a pointer to their client: destroy (or Close) them before the client.
class InsertWriter {
 public:
  ~InsertWriter();  // Close()

  // Queues `chunk`; blocks while too many chunks are in flight. Its sequence must be the next.
  absl::Status Send(StepChunk chunk);
  // Waits until every sent chunk is acknowledged (durable on the shard) or `timeout` passes.
  absl::Status Flush(absl::Duration timeout);
  // Flushes (up to the rpc timeout, or `flush_timeout`) and ends the stream.
  absl::Status Close();
  absl::Status Close(absl::Duration flush_timeout);
  // Chunks sent and not yet acknowledged (Send blocks while this is max_chunks_in_flight).
  size_t in_flight() const;
  // Chunks acknowledged so far.
  uint64_t acknowledged() const;
  int shard() const { return shard_; }

 private:
  friend class ShardedReplayClient;
  InsertWriter(ShardedReplayClient* client, int shard, std::string actor_id);
  void Run();

  ShardedReplayClient* const client_;
  const int shard_;
  const std::string actor_id_;
  mutable absl::Mutex mu_;
  std::deque<std::shared_ptr<const v1::InsertRequest>> unacked_ ABSL_GUARDED_BY(mu_);
  size_t sent_on_stream_ ABSL_GUARDED_BY(mu_) = 0;  // of unacked_, already written this stream
  uint64_t acknowledged_ ABSL_GUARDED_BY(mu_) = 0;
  bool closing_ ABSL_GUARDED_BY(mu_) = false;
  // The open stream's context (nullptr between streams): Close cancels it when it abandons
  // chunks, which also ends a Write blocked because the shard reads no further.
  grpc::ClientContext* stream_context_ ABSL_GUARDED_BY(mu_) = nullptr;
  bool stream_broken_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  std::thread thread_;
};

}  // namespace dreamfleet::replay
