// The replay table: stores chunks of steps per actor stream, derives items (windows of T
// consecutive steps of one stream, keyed by the table-wide id of their first step) and episodes
// (runs between is_first resets), evicts whole chunks FIFO beyond the capacity (and a stream's own
// oldest beyond its share), and serves B x T batches through a selector and a rate limiter.
// Chunks are held in the form ChunkStore encodes (chunk_store.h). Plain class, no gRPC and no disk:
// the shard makes each chunk durable through the BeforeApply hook, which runs under the table mutex
// so the write-ahead log holds chunks in exactly the order they were applied.
//
// Data flow: Insert(chunk) -> signature check -> ChunkStore::Encode -> limiter wait ->
// BeforeApply (WAL) -> stream, items, episodes, eviction. Sample(B, T) -> limiter wait ->
// selector picks B keys -> ChunkStore::Reader copies the windows out of the immutable stored
// chunks outside the mutex.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "dreamfleet/v1/replay.pb.h"
#include "replay_server/chunk_store.h"
#include "replay_server/rate_limiter.h"
#include "replay_server/selectors/interface.h"
#include "replay_server/signature.h"
#include "services/metrics.h"

namespace dreamfleet::replay {

struct TableOptions {
  std::string name = "default";
  uint64_t capacity_steps = 1000000;
  // Steps one actor stream (chunk actor_id) may hold; beyond it the stream's own oldest chunks are
  // evicted, not other streams' (its newest chunk always stays). 0 = no limit: plain FIFO.
  uint64_t max_stream_steps = 0;
  int sequence_length = 64;
  SelectorOptions selector;
  // Share (0-1) of the sampled items drawn uniformly from the items holding a step with a finite
  // nonzero reward (while any is stored), the rest by `selector` (replay.rewarded_share).
  double rewarded_share = 0;
  RateLimiterOptions limiter;
  bool compress = false;  // zstd each field of each stored chunk (ChunkStore)
  uint64_t seed = 0;      // sampling RNG
};

struct InsertResult {
  uint64_t first_step_id = 0;
  bool duplicate = false;  // a chunk with this (actor, sequence) was already stored: not stored again
  uint64_t size_steps = 0;
  absl::Duration limiter_wait;
};

// A waiting insert's way out before its deadline (Table::Insert): `check` is called every `every`
// while the insert waits for the rate limiter, under the table mutex (it must not call into the
// table); when it returns true the insert gives up with CANCELLED.
struct InsertAbandon {
  std::function<bool()> check;
  absl::Duration every = absl::Milliseconds(500);
};

class Table {
 public:
  // Called under the table mutex once the chunk passed every check, with the id its first step
  // will get and its insert time; a non-OK status rejects the chunk and leaves the table as it was.
  using BeforeApply = std::function<absl::Status(uint64_t first_step_id, int64_t insert_time_ms)>;

  static absl::StatusOr<std::unique_ptr<Table>> Create(TableOptions options,
                                                       services::Metrics* metrics);
  ~Table();

  // Checks `chunk` (fixing the signature when it is the first), waits for the rate limiter until
  // `deadline` (DEADLINE_EXCEEDED), runs `before_apply`, then stores it. Blocking. Inserts that
  // wait are let through in the order they began to wait (one caller cannot be passed over
  // indefinitely while others get the limiter's room); an insert checking `abandon` keeps its
  // place between checks.
  absl::StatusOr<InsertResult> Insert(const v1::Chunk& chunk, absl::Time deadline,
                                      const BeforeApply& before_apply = nullptr,
                                      const InsertAbandon& abandon = {});

  // Restore path: applies a WAL/checkpoint chunk record as it was, without waiting for the
  // limiter. A checkpoint's chunks are already in the inserted count of its header
  // (`counted_in_header`); a chunk from the write-ahead log after it is counted now.
  absl::Status Restore(const v1::StoredChunkRecord& record, bool counted_in_header);
  // Restore path: the lifetime sample counters of a write-ahead log record.
  void RestoreSampleCounters(const v1::SampleCounters& counters);
  // Called under the table mutex with the lifetime sample counters after every sample (the shard
  // writes them to its write-ahead log). Set before the table is shared.
  using SampleLog = std::function<void(const v1::SampleCounters& counters)>;
  void SetSampleLog(SampleLog log);
  // Restores counters and signature from a checkpoint header (before its chunks are restored).
  absl::Status RestoreHeader(const v1::CheckpointHeader& header);

  // Waits until the limiter allows B*T replayed steps and at least one item exists (or until
  // `deadline`: DEADLINE_EXCEEDED), then fills `out` with a [B, T, ...] batch. Blocking.
  absl::Status Sample(int batch_size, int sequence_length, absl::Time deadline,
                      v1::SampleResponse* out);

  absl::StatusOr<v1::UpdatePrioritiesResponse> UpdatePriorities(
      const v1::UpdatePrioritiesRequest& request);

  v1::TableInfo Info() const;
  absl::StatusOr<v1::ListEpisodesResponse> ListEpisodes(
      const v1::ListEpisodesRequest& request) const;
  // Calls `emit` with each message of the episode's steps; stops early when it returns false.
  absl::Status GetEpisode(uint64_t episode_id, int max_steps_per_message,
                          const std::function<bool(const v1::GetEpisodeResponse&)>& emit) const;

  // Checkpoint support: runs `under_lock` under the table mutex (the shard rolls its WAL there)
  // and returns the header and the chunks stored at that moment.
  struct Snapshot {
    v1::CheckpointHeader header;
    std::vector<std::shared_ptr<const StoredChunk>> chunks;
  };
  Snapshot TakeSnapshot(const std::function<void()>& under_lock);
  // The record a stored chunk was made from (decompressed).
  absl::Status ToRecord(const StoredChunk& chunk, v1::StoredChunkRecord* record) const;

  // Wakes every blocked Insert/Sample; they and later ones fail with UNAVAILABLE.
  void Close();

  const std::string& name() const { return options_.name; }
  int sequence_length() const { return options_.sequence_length; }
  uint64_t size_steps() const;
  // NOT_FOUND unless `requested` (a table name from a request) is empty or this table's name.
  absl::Status CheckName(const std::string& requested) const;
  // The signature, or nullopt before the first chunk.
  std::optional<Signature> signature() const;

 private:
  struct Episode {
    uint64_t id = 0;
    Stream* stream = nullptr;
    uint64_t start_pos = 0;
    uint64_t length = 0;
    double episode_return = 0;
    int64_t start_ms = 0;
    int64_t end_ms = 0;
    bool complete = false;
    bool truncated = false;
  };

  Table(TableOptions options, std::unique_ptr<Selector> selector, services::Metrics* metrics);

  // Stores `stored` (already built) for `chunk`; returns false when it is a duplicate.
  // `count_totals`: add its steps and episodes to the stream's lifetime counts (not for a
  // checkpoint's chunks, which its header counted).
  bool Apply(const v1::Chunk& chunk, std::shared_ptr<StoredChunk> stored, bool count_totals = true)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The insert protocol, exactly once per stream: a stream's chunks are numbered 0, 1, 2, ...
  // (a stream this table has never seen may start at any number: the shard may have lost it or
  // evicted its start). kNext: `chunk` follows the stream's last stored chunk. kDuplicate: the
  // stream already stored this number (a retransmission: acknowledged, not stored again).
  // OUT_OF_RANGE naming the expected number for a gap or a number before the stream's
  // first stored one, since acknowledging either would claim steps that are not stored.
  enum class SequenceVerdict { kNext, kDuplicate };
  absl::StatusOr<SequenceVerdict> CheckSequence(const v1::Chunk& chunk) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Removes `chunk` (the oldest of its stream) with its items and the episodes it ends.
  void Evict(const std::shared_ptr<const StoredChunk>& chunk) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint64_t GlobalId(const Stream& stream, uint64_t pos) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  // Spans covering `count` steps of `stream` from `pos` (clipped to what is stored).
  std::vector<ChunkSpan> Spans(const Stream& stream, uint64_t pos, uint64_t count) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  const StoredChunk* FindChunk(uint64_t step_id) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void FillEpisodeInfo(const Episode& episode, v1::EpisodeInfo* info) const
      ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void UpdateGauges() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const TableOptions options_;
  const ChunkStore store_;  // stateless encoder: used outside the mutex
  services::Metrics* const metrics_;

  mutable absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  std::optional<Signature> signature_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<Selector> selector_ ABSL_GUARDED_BY(mu_);
  // With options_.rewarded_share: the items holding a rewarded step, drawn uniformly.
  std::unique_ptr<Selector> rewarded_ ABSL_GUARDED_BY(mu_);
  RateLimiter limiter_ ABSL_GUARDED_BY(mu_);
  std::mt19937_64 rng_ ABSL_GUARDED_BY(mu_);
  std::deque<std::shared_ptr<const StoredChunk>> chunks_ ABSL_GUARDED_BY(mu_);  // oldest first
  absl::flat_hash_map<std::string, std::unique_ptr<Stream>> streams_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, Episode> episodes_ ABSL_GUARDED_BY(mu_);  // by id = oldest first
  uint64_t next_step_id_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t size_steps_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t evicted_steps_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t sampled_items_ ABSL_GUARDED_BY(mu_) = 0;
  // The restored checkpoint's header carried lifetime counts per actor stream.
  bool checkpoint_counts_actors_ ABSL_GUARDED_BY(mu_) = false;
  SampleLog sample_log_ ABSL_GUARDED_BY(mu_);
  double insert_wait_seconds_ ABSL_GUARDED_BY(mu_) = 0;
  double sample_wait_seconds_ ABSL_GUARDED_BY(mu_) = 0;
  // Tickets of the inserts waiting for the limiter, oldest (lowest) first: only the oldest may go.
  std::set<uint64_t> insert_queue_ ABSL_GUARDED_BY(mu_);
  uint64_t next_insert_ticket_ ABSL_GUARDED_BY(mu_) = 0;
  int samples_waiting_ ABSL_GUARDED_BY(mu_) = 0;

  // Metrics (owned by metrics_).
  prometheus::Counter* inserted_steps_;
  prometheus::Counter* inserted_bytes_;
  prometheus::Counter* sampled_items_counter_;
  prometheus::Counter* insert_wait_counter_;
  prometheus::Counter* sample_wait_counter_;
  prometheus::Counter* share_evicted_steps_;
  prometheus::Gauge* size_gauge_;
  prometheus::Gauge* items_gauge_;
  prometheus::Gauge* rewarded_items_gauge_;
  prometheus::Gauge* episodes_gauge_;
  prometheus::Gauge* memory_gauge_;
};

// Per actor stream state (one per actor id).
struct Stream {
  std::string actor_id;
  std::deque<std::shared_ptr<const StoredChunk>> chunks;  // oldest first, consecutive positions
  uint64_t first_pos = 0;      // position of the oldest stored step
  uint64_t next_pos = 0;       // position the next step will get
  uint64_t segment_start = 0;  // items never start before this (set on sequence gaps/restarts)
  bool has_sequence = false;
  uint64_t first_sequence = 0;  // of the first chunk this table stored (or restored) of the stream
  uint64_t last_sequence = 0;
  std::optional<uint64_t> open_episode;  // id of the episode still being written
  std::deque<uint64_t> episodes;         // ids of its stored episodes, oldest first
  std::deque<uint64_t> rewarded;  // with a rewarded share: positions of stored rewarded steps
  uint64_t steps_total = 0;
  uint64_t episodes_total = 0;
};

}  // namespace dreamfleet::replay
