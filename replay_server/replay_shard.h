// One replay shard's storage: a Table made durable by a write-ahead log and periodic checkpoints
// in its data directory. No gRPC. Open() restores `checkpoint.bin` and then every WAL file after
// it (a torn or corrupt tail is dropped with a warning), then starts a fresh WAL file. Insert()
// applies a chunk and returns the WAL sequence number to wait for; the caller acknowledges the
// chunk only after WaitDurable(). A background thread checkpoints every `checkpoint_interval`
// when anything changed: it rolls the WAL under the table mutex, writes every stored chunk to
// `checkpoint.tmp`, fsyncs, renames it over `checkpoint.bin` and deletes the WAL files it covers.
//
// Data directory:  checkpoint.bin  checkpoint.prev.bin  wal-<index>.log ...  WAL_FORMAT  LOCK
// (WAL_FORMAT: from which log file on every file starts with a header, so an emptied file is
// refused as the loss it is; see write_ahead_log.h.)
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "replay_server/table.h"
#include "replay_server/write_ahead_log.h"
#include "services/config.h"
#include "services/metrics.h"

namespace dreamfleet::replay {

struct ShardOptions {
  TableOptions table;
  std::string data_dir;
  absl::Duration fsync_interval = absl::Milliseconds(20);
  absl::Duration checkpoint_interval = absl::Minutes(5);
};

// The options a shard process derives from the config (`replay.*`).
ShardOptions ShardOptionsFromConfig(const services::Config& config, int shard_index);

struct RestoreStats {
  uint64_t chunks = 0;
  uint64_t steps = 0;
  uint64_t dropped_tails = 0;    // WAL files whose torn tail (damage up to the end) was dropped
  uint64_t damaged_records = 0;  // damaged WAL records skipped, each costing only itself
  uint64_t lost_bytes = 0;       // WAL bytes skipped by both
  // The newest checkpoint was damaged (kept aside as checkpoint.damaged.bin) and the shard came
  // back from the previous one plus the log after it.
  bool used_previous_checkpoint = false;
  double seconds = 0;
};

class ReplayShard {
 public:
  static absl::StatusOr<std::unique_ptr<ReplayShard>> Open(ShardOptions options,
                                                           services::Metrics* metrics);
  // Stops the checkpoint thread and writes a last checkpoint when anything changed.
  ~ReplayShard();

  struct PendingInsert {
    InsertResult result;
    uint64_t lsn = 0;  // 0 when nothing was written (a duplicate chunk)
  };
  // Checks, waits for the limiter until `deadline` (or until `abandon` says so: Table::Insert),
  // logs and applies `chunk`.
  absl::StatusOr<PendingInsert> Insert(const v1::Chunk& chunk, absl::Time deadline,
                                       const InsertAbandon& abandon = {});
  absl::Status WaitDurable(uint64_t lsn);
  absl::Status Checkpoint();
  // Wakes blocked inserts and samples (shutdown); they fail with UNAVAILABLE.
  void Close() { table_->Close(); }

  Table* table() { return table_.get(); }
  const RestoreStats& restore_stats() const { return restore_stats_; }
  const std::string& data_dir() const { return options_.data_dir; }

 private:
  // An exclusive advisory lock (flock) on <data_dir>/LOCK for the shard's lifetime: a second shard
  // process on the same directory would delete the first one's live write-ahead log at its next
  // checkpoint. Released when the process ends, however it ends.
  class DirLock {
   public:
    static absl::StatusOr<std::unique_ptr<DirLock>> Acquire(const std::string& dir);
    ~DirLock();

   private:
    explicit DirLock(int fd) : fd_(fd) {}
    int fd_;
  };

  ReplayShard(ShardOptions options, std::unique_ptr<DirLock> lock, std::unique_ptr<Table> table)
      : lock_(std::move(lock)), options_(std::move(options)), table_(std::move(table)) {}
  absl::Status Restore(services::Metrics* metrics);
  void CheckpointLoop();

  std::unique_ptr<DirLock> lock_;  // first: released after everything else is closed
  const ShardOptions options_;
  std::unique_ptr<Table> table_;
  std::unique_ptr<WriteAheadLog> wal_;
  RestoreStats restore_stats_;

  absl::Mutex checkpoint_mu_;  // one checkpoint at a time
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t inserts_since_checkpoint_ ABSL_GUARDED_BY(mu_) = 0;
  // The log index the newest good checkpoint starts from. The next checkpoint keeps that one as
  // the previous checkpoint and deletes only the log files before it, so a damaged newest
  // checkpoint can fall back to the previous one plus the log after it.
  uint64_t checkpoint_wal_index_ ABSL_GUARDED_BY(checkpoint_mu_) = 0;
  std::thread checkpointer_;
};

}  // namespace dreamfleet::replay
