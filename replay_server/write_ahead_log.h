// The shard's write-ahead log: numbered files `wal-<index>.log` of records
// (services/record_file.h).
// Append() writes a record to the current file and returns its log sequence number; a background
// thread fdatasyncs at most every `fsync_interval` (0 = as soon as anything is pending) and
// WaitDurable(lsn) returns once that record is on disk, so many inserts share one fsync. Roll()
// closes the current file (synced) and starts the next one; checkpoints do this so the files
// before the new index can be deleted once the checkpoint is written.
//
// Every file starts with a header record (kHeaderMagic + its index, little endian), written and
// synced under a temporary name before the file is renamed into place: a file of this version is
// never empty, so an emptied file is damage, not a log that had nothing yet. Files of earlier
// versions have no header; the data directory's WAL_FORMAT file says from which index on the
// header is there (replay_shard.cc).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "services/metrics.h"
#include "services/record_file.h"

namespace dreamfleet::replay {

class WriteAheadLog {
 public:
  // Starts a new file `wal-<index>.log` in `dir` (which must exist).
  static absl::StatusOr<std::unique_ptr<WriteAheadLog>> Open(const std::string& dir,
                                                             uint64_t index,
                                                             absl::Duration fsync_interval,
                                                             services::Metrics* metrics);
  ~WriteAheadLog();  // syncs what was written, stops the thread

  // Appends one record (payload = prefix + body). Returns its sequence number (1, 2, ...).
  absl::StatusOr<uint64_t> Append(std::string_view prefix, std::string_view body);
  // Blocks until record `lsn` is on disk; the error of a failed fsync otherwise.
  absl::Status WaitDurable(uint64_t lsn);
  // Syncs and closes the current file and starts the next; returns the new index.
  absl::StatusOr<uint64_t> Roll();
  uint64_t index() const;
  // The sequence number of the last appended record (0 before the first).
  uint64_t last_appended() const;

  static std::string FileName(const std::string& dir, uint64_t index);
  // The header record's payload: kHeaderMagic followed by the file's index (8 bytes LE). A chunk
  // record never starts with it (0x44 is not a valid protobuf field tag for StoredChunkRecord).
  static constexpr char kHeaderMagic[] = "DFWAL1";
  static std::string HeaderPayload(uint64_t index);
  // True with `*index` set when `payload` is a header record.
  static bool ParseHeader(std::string_view payload, uint64_t* index);
  // The WAL files in `dir`, by index.
  static std::vector<std::pair<uint64_t, std::string>> ListFiles(const std::string& dir);

 private:
  WriteAheadLog(std::string dir, absl::Duration fsync_interval, services::Metrics* metrics);
  void SyncLoop();

  const std::string dir_;
  const absl::Duration fsync_interval_;
  prometheus::Histogram* fsync_seconds_;

  absl::Mutex io_mu_ ABSL_ACQUIRED_BEFORE(mu_);  // held while a file is synced or swapped
  mutable absl::Mutex mu_;
  std::unique_ptr<services::RecordWriter> writer_ ABSL_GUARDED_BY(mu_);
  uint64_t index_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t written_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t synced_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread syncer_;
};

}  // namespace dreamfleet::replay
