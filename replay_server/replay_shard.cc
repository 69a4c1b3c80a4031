#include "replay_server/replay_shard.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "services/durable_file.h"
#include "services/logging.h"
#include "services/status_macros.h"

namespace dreamfleet::replay {
namespace {

constexpr char kCheckpoint[] = "checkpoint.bin";
constexpr char kCheckpointPrevious[] = "checkpoint.prev.bin";
constexpr char kCheckpointDamaged[] = "checkpoint.damaged.bin";
constexpr char kCheckpointTmp[] = "checkpoint.tmp";
// "headers-from <index>": the write-ahead log files from that index on start with a header
// (write_ahead_log.h); the ones before were written by a version without it.
constexpr char kWalFormat[] = "WAL_FORMAT";
constexpr char kWalFormatPrefix[] = "headers-from ";

std::optional<uint64_t> ReadHeadersFrom(const std::string& dir) {
  std::ifstream file(absl::StrCat(dir, "/", kWalFormat));
  std::string line;
  uint64_t index;
  if (!std::getline(file, line)) return std::nullopt;
  absl::string_view rest = line;
  if (!absl::ConsumePrefix(&rest, kWalFormatPrefix) || !absl::SimpleAtoi(rest, &index)) {
    return std::nullopt;
  }
  return index;
}

absl::Status WriteHeadersFrom(const std::string& dir, uint64_t index) {
  return services::ReplaceFileDurably(absl::StrCat(dir, "/", kWalFormat),
                                      absl::StrCat(kWalFormatPrefix, index, "\n"));
}

// Reads the checkpoint at `path` through its last chunk record without applying anything: its
// header, or DataLoss naming what is unreadable (FailedPrecondition for another table's).
absl::StatusOr<v1::CheckpointHeader> VerifyCheckpoint(const std::string& path,
                                                      const std::string& table) {
  ASSIGN_OR_RETURN(std::unique_ptr<services::RecordReader> reader,
                   services::RecordReader::Open(path));
  std::string payload;
  absl::StatusOr<bool> got = reader->Next(&payload);
  v1::CheckpointHeader header;
  if (!got.ok() || !*got || !header.ParseFromString(payload)) {
    return absl::DataLossError(absl::StrCat(
        path, " has no readable header: ", got.ok() ? "empty" : got.status().message()));
  }
  if (header.table() != table) {
    return absl::FailedPreconditionError(absl::StrCat(
        path, " holds table \"", header.table(), "\" but this shard serves table \"", table, "\""));
  }
  v1::StoredChunkRecord record;
  for (uint64_t i = 0; i < header.num_chunks(); ++i) {
    got = reader->Next(&payload);
    if (!got.ok() || !*got || !record.ParseFromString(payload)) {
      return absl::DataLossError(absl::StrCat(
          path, ": chunk record ", i, " of ", header.num_chunks(), " is unreadable (",
          got.ok() ? (*got ? "does not parse" : "the file ends") : got.status().message(), ")"));
    }
  }
  return header;
}

void AppendVarint(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

}  // namespace

ShardOptions ShardOptionsFromConfig(const services::Config& config, int shard_index) {
  const services::ReplayConfig& r = config.replay;
  ShardOptions options;
  options.table.name = r.table;
  options.table.capacity_steps = r.capacity_steps;
  if (r.max_actor_share > 0) {
    options.table.max_stream_steps = static_cast<uint64_t>(
        std::floor(r.max_actor_share * static_cast<double>(r.capacity_steps)));
  }
  options.table.sequence_length = static_cast<int>(r.sequence_length);
  options.table.selector.name = r.selector;
  options.table.selector.priority_exponent = r.priority_exponent;
  options.table.selector.recency_decay = r.recency_decay;
  options.table.rewarded_share = r.rewarded_share;
  options.table.limiter.samples_per_insert = r.samples_per_insert;
  options.table.limiter.tolerance = r.limiter_tolerance;
  options.table.limiter.min_size_to_sample = r.min_size_to_sample;
  options.table.compress = r.compression == "zstd";
  options.table.seed = static_cast<uint64_t>(config.run.seed) * 1000003u + shard_index;
  options.data_dir = r.data_dir.empty()
                         ? absl::StrCat(config.run.dir, "/replay/shard-", shard_index)
                         : r.data_dir;
  options.fsync_interval = absl::Milliseconds(r.wal_fsync_interval_ms);
  options.checkpoint_interval = absl::Seconds(r.checkpoint_interval_s);
  return options;
}

absl::StatusOr<std::unique_ptr<ReplayShard::DirLock>> ReplayShard::DirLock::Acquire(
    const std::string& dir) {
  const std::string path = absl::StrCat(dir, "/LOCK");
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot open ", path, ": ", std::strerror(errno)));
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    const int error = errno;
    char holder[32] = {};
    (void)::pread(fd, holder, sizeof(holder) - 1, 0);
    ::close(fd);
    if (error == EWOULDBLOCK) {
      return absl::FailedPreconditionError(
          absl::StrCat("the data directory ", dir, " is in use by another replay shard (process ",
                       absl::StripAsciiWhitespace(holder), " holds ", path,
                       "); give each shard its own replay.data_dir"));
    }
    return absl::FailedPreconditionError(
        absl::StrCat("cannot lock ", path, ": ", std::strerror(error)));
  }
  const std::string pid = absl::StrCat(::getpid(), "\n");
  if (::ftruncate(fd, 0) != 0 || ::pwrite(fd, pid.data(), pid.size(), 0) < 0) {
    DF_LOG(WARNING) << "cannot write the process id into " << path << ": " << std::strerror(errno);
  }
  return std::unique_ptr<DirLock>(new DirLock(fd));
}

ReplayShard::DirLock::~DirLock() { ::close(fd_); }

absl::StatusOr<std::unique_ptr<ReplayShard>> ReplayShard::Open(ShardOptions options,
                                                               services::Metrics* metrics) {
  std::error_code error;
  std::filesystem::create_directories(options.data_dir, error);
  if (error) {
    return absl::FailedPreconditionError(absl::StrCat("cannot create the data directory ",
                                                      options.data_dir, ": ", error.message()));
  }
  ASSIGN_OR_RETURN(std::unique_ptr<DirLock> lock, DirLock::Acquire(options.data_dir));
  ASSIGN_OR_RETURN(std::unique_ptr<Table> table, Table::Create(options.table, metrics));
  std::unique_ptr<ReplayShard> shard(
      new ReplayShard(std::move(options), std::move(lock), std::move(table)));
  RETURN_IF_ERROR(shard->Restore(metrics));
  shard->checkpointer_ = std::thread([s = shard.get()] { s->CheckpointLoop(); });
  return shard;
}

absl::Status ReplayShard::Restore(services::Metrics* metrics) {
  const absl::Time start = absl::Now();
  const std::string& dir = options_.data_dir;
  uint64_t first_wal_index = 0;
  std::string payload;
  // The newest checkpoint, or the previous one when the newest is damaged (or missing: a crash
  // between the two renames of Checkpoint) - the log files after the previous one are kept.
  const std::string newest = absl::StrCat(dir, "/", kCheckpoint);
  const std::string previous = absl::StrCat(dir, "/", kCheckpointPrevious);
  std::string checkpoint_path;
  bool set_aside_damaged = false;  // renamed only once the fallback restored everything
  if (std::filesystem::exists(newest)) {
    absl::StatusOr<v1::CheckpointHeader> verified = VerifyCheckpoint(newest, options_.table.name);
    if (verified.ok()) {
      checkpoint_path = newest;
    } else if (!absl::IsDataLoss(verified.status())) {
      return verified.status();
    } else {
      // The fallback: the previous checkpoint, or none at all when the log still starts at its
      // first file (the first checkpoint keeps the whole log).
      const bool has_previous = std::filesystem::exists(previous);
      const std::vector<std::pair<uint64_t, std::string>> logs = WriteAheadLog::ListFiles(dir);
      if (!has_previous && (logs.empty() || logs.front().first != 0)) {
        return absl::DataLossError(absl::StrCat(
            verified.status().message(), "; there is no previous checkpoint (", kCheckpointPrevious,
            ") or complete log to fall back to. Restore the file, or move "
            "the data directory aside to start an empty shard"));
      }
      if (has_previous) {
        absl::StatusOr<v1::CheckpointHeader> fallback =
            VerifyCheckpoint(previous, options_.table.name);
        if (!fallback.ok()) {
          return absl::DataLossError(
              absl::StrCat("both checkpoints are damaged: ", verified.status().message(), "; ",
                           fallback.status().message()));
        }
        checkpoint_path = previous;
      }
      DF_LOG(ERROR) << verified.status().message() << ". Restoring from "
                    << (has_previous ? "the previous checkpoint " + previous +
                                           " and the log "
                                           "after it"
                                     : std::string("the whole log"))
                    << "; the damaged file will be kept as " << kCheckpointDamaged;
      set_aside_damaged = true;
      restore_stats_.used_previous_checkpoint = true;
    }
  } else if (std::filesystem::exists(previous)) {
    ASSIGN_OR_RETURN(v1::CheckpointHeader header, VerifyCheckpoint(previous, options_.table.name));
    (void)header;
    DF_LOG(WARNING) << "no " << kCheckpoint << " but a previous checkpoint (a stop between its "
                    << "renames, or a deleted file): restoring from " << previous
                    << " and the log after it";
    checkpoint_path = previous;
    restore_stats_.used_previous_checkpoint = true;
  }
  if (!checkpoint_path.empty()) {
    ASSIGN_OR_RETURN(std::unique_ptr<services::RecordReader> reader,
                     services::RecordReader::Open(checkpoint_path));
    absl::StatusOr<bool> got = reader->Next(&payload);
    v1::CheckpointHeader header;
    if (!got.ok() || !*got || !header.ParseFromString(payload)) {
      return absl::DataLossError(absl::StrCat(checkpoint_path, " has no readable header"));
    }
    RETURN_IF_ERROR(table_->RestoreHeader(header));
    for (uint64_t i = 0; i < header.num_chunks(); ++i) {
      got = reader->Next(&payload);
      v1::StoredChunkRecord record;
      if (!got.ok() || !*got || !record.ParseFromString(payload)) {
        return absl::DataLossError(absl::StrCat(checkpoint_path, ": chunk record ", i, " of ",
                                                header.num_chunks(), " is unreadable"));
      }
      RETURN_IF_ERROR(table_->Restore(record, /*counted_in_header=*/true));
      ++restore_stats_.chunks;
      restore_stats_.steps += record.chunk().num_steps();
    }
    first_wal_index = header.wal_index();
  }
  {
    absl::MutexLock lock(&checkpoint_mu_);
    checkpoint_wal_index_ = first_wal_index;
  }
  uint64_t next_index = first_wal_index;
  const std::vector<std::pair<uint64_t, std::string>> wal_files = WriteAheadLog::ListFiles(dir);
  if (checkpoint_path.empty() && !wal_files.empty() && wal_files.front().first > 0) {
    // Log files start at index 0 and only a checkpoint lets the earlier ones go: without it, the
    // steps it held are gone, and starting from the later log alone would hide that.
    return absl::DataLossError(
        absl::StrCat(dir, " has write-ahead log files from ", wal_files.front().second,
                     " on but no checkpoint (", kCheckpoint,
                     ") covering the earlier ones: it was deleted or "
                     "lost. Restore it, or move the data directory aside to start an empty shard"));
  }
  // The log after the checkpoint must be whole: files first_wal_index, first_wal_index + 1, ...
  // (Roll creates each before the checkpoint that names it is renamed in).
  {
    uint64_t expected = first_wal_index;
    std::string next = "none";
    for (const auto& [index, path] : wal_files) {
      if (index < first_wal_index) continue;
      if (index != expected) {
        next = path;
        break;
      }
      ++expected;
    }
    const bool gap = next != "none" || (!checkpoint_path.empty() && expected == first_wal_index);
    if (gap) {
      return absl::DataLossError(
          absl::StrCat(dir, ": write-ahead log file ", expected, " is missing (",
                       checkpoint_path.empty()
                           ? std::string("no checkpoint")
                           : absl::StrCat(checkpoint_path, " starts at file ", first_wal_index),
                       "; the next file is ", next,
                       "): the steps it held are lost. Restore it, or move "
                       "the data directory aside to start an empty shard"));
    }
  }
  const std::optional<uint64_t> headers_from = ReadHeadersFrom(dir);
  for (const auto& [index, wal_path] : wal_files) {
    const std::string& path = wal_path;  // a lambda below captures it (not a structured binding)
    // Covered by the checkpoint. Kept: they back the previous checkpoint, should the newest one
    // be damaged later; the next checkpoint deletes them.
    if (index < first_wal_index) continue;
    next_index = index + 1;
    ASSIGN_OR_RETURN(std::unique_ptr<services::RecordReader> reader,
                     services::RecordReader::Open(path));
    // A file with a header is never shorter than it: an empty or cut one lost every record.
    const bool header_expected = headers_from.has_value() && index >= *headers_from;
    const uint64_t header_bytes = 8 + WriteAheadLog::HeaderPayload(index).size();
    if (header_expected && reader->size() < header_bytes) {
      return absl::DataLossError(absl::StrCat(
          path, " is ", reader->size() == 0 ? "empty" : "cut short", " (", reader->size(),
          " bytes): the header written before anything else is gone, "
          "and with it every step the file held. Restore it, or move the data directory "
          "aside to start an empty shard. (If a dreamfleet older than the log headers ran on "
          "this directory since, its files have no header: delete ",
          dir, "/", kWalFormat, ".)"));
    }
    {
      std::string first;
      uint64_t header_index = 0;
      absl::StatusOr<bool> got = reader->Next(&first);
      if (got.ok() && *got && WriteAheadLog::ParseHeader(first, &header_index)) {
        if (header_index != index) {
          return absl::DataLossError(absl::StrCat(
              path, " holds write-ahead log file ", header_index, ", not file ", index,
              " (renamed or copied over?). Restore it, or move the data directory aside"));
        }
      } else {
        // A file of an earlier version (no header), or a damaged first record: read it all.
        ASSIGN_OR_RETURN(reader, services::RecordReader::Open(path));
      }
    }
    // A damaged record costs only itself: the reader resynchronises on the next valid one, and
    // every loss is counted and logged. Damage that runs to the end is a torn tail (a crash
    // mid-write leaves one, never acknowledged).
    auto skip = [&](uint64_t at, absl::string_view why, uint64_t bytes) {
      restore_stats_.lost_bytes += bytes;
      if (reader->offset() == reader->size()) {
        ++restore_stats_.dropped_tails;
        DF_LOG(WARNING) << path << ": dropping the torn tail of " << bytes << " bytes at byte "
                        << at << " (" << why << ")";
      } else {
        ++restore_stats_.damaged_records;
        DF_LOG(ERROR) << path << ": skipped " << bytes << " damaged bytes at byte " << at << " ("
                      << why << "); resumed at the next valid record, byte " << reader->offset();
      }
    };
    while (true) {
      const uint64_t at = reader->offset();
      absl::StatusOr<bool> got = reader->Next(&payload);
      if (!got.ok()) {
        const uint64_t bytes = reader->Resync();
        skip(at, got.status().message(), bytes);
        continue;
      }
      if (!*got) break;
      v1::StoredChunkRecord record;
      if (!record.ParseFromString(payload)) {
        skip(at, "a record that does not parse", reader->offset() - at);
        continue;
      }
      if (!record.has_chunk() && !record.has_sample_counters()) {
        skip(at, "a record with neither a chunk nor sample counters", reader->offset() - at);
        continue;
      }
      if (!record.has_chunk()) {  // the sample counters after a sample
        table_->RestoreSampleCounters(record.sample_counters());
        continue;
      }
      if (absl::Status s = table_->Restore(record, /*counted_in_header=*/false); !s.ok()) {
        skip(at, s.message(), reader->offset() - at);
        continue;
      }
      ++restore_stats_.chunks;
      restore_stats_.steps += record.chunk().num_steps();
    }
  }
  if (set_aside_damaged) {
    // Out of the way of the next checkpoint (which would otherwise keep it as the previous one).
    const std::string damaged = absl::StrCat(dir, "/", kCheckpointDamaged);
    if (std::rename(newest.c_str(), damaged.c_str()) != 0) {
      return absl::InternalError(absl::StrCat("rename ", newest, " to ", damaged, " failed"));
    }
  }
  restore_stats_.seconds = absl::ToDoubleSeconds(absl::Now() - start);
  metrics
      ->Gauge("dreamfleet_replay_restore_damaged_records",
              "Damaged write-ahead-log records skipped at the last start (each lost only itself).")
      .Set(static_cast<double>(restore_stats_.damaged_records));
  metrics
      ->Gauge("dreamfleet_replay_restore_used_previous_checkpoint",
              "1 when the last start found the newest checkpoint damaged and restored from the "
              "previous one plus the log after it.")
      .Set(restore_stats_.used_previous_checkpoint ? 1 : 0);
  metrics
      ->Gauge("dreamfleet_replay_restore_lost_bytes",
              "Write-ahead-log bytes skipped at the last start: damaged records and torn tails.")
      .Set(static_cast<double>(restore_stats_.lost_bytes));
  if (restore_stats_.lost_bytes > 0) {
    DF_LOG(WARNING) << "restore skipped " << restore_stats_.lost_bytes << " bytes of " << dir
                    << ": " << restore_stats_.damaged_records << " damaged records, "
                    << restore_stats_.dropped_tails << " torn tails";
  }
  if (restore_stats_.chunks > 0) {
    DF_LOG(INFO) << "restored " << restore_stats_.steps << " steps in " << restore_stats_.chunks
                 << " chunks from " << dir << " in " << restore_stats_.seconds << " s";
  }
  ASSIGN_OR_RETURN(std::unique_ptr<WriteAheadLog> wal,
                   WriteAheadLog::Open(dir, next_index, options_.fsync_interval, metrics));
  wal_ = std::move(wal);
  if (!headers_from.has_value()) RETURN_IF_ERROR(WriteHeadersFrom(dir, next_index));
  // Every sample's counters go to the log too (under the table mutex, like inserts, so a
  // checkpoint's header and the log after it never disagree). Not waited for: a process crash
  // keeps what was written; only a machine crash before the next fsync loses the newest counts.
  table_->SetSampleLog([this](const v1::SampleCounters& counters) {
    v1::StoredChunkRecord record;
    *record.mutable_sample_counters() = counters;
    if (absl::StatusOr<uint64_t> lsn = wal_->Append(record.SerializeAsString(), ""); !lsn.ok()) {
      DF_LOG(WARNING) << "logging the sample counters: " << lsn.status();
    }
  });
  return absl::OkStatus();
}

ReplayShard::~ReplayShard() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (checkpointer_.joinable()) checkpointer_.join();
  table_->Close();
  bool dirty;
  {
    absl::MutexLock lock(&mu_);
    dirty = inserts_since_checkpoint_ > 0;
  }
  if (dirty && wal_ != nullptr) {
    if (absl::Status s = Checkpoint(); !s.ok()) {
      DF_LOG(WARNING) << "last checkpoint: " << s;
    }
  }
}

absl::StatusOr<ReplayShard::PendingInsert> ReplayShard::Insert(const v1::Chunk& chunk,
                                                               absl::Time deadline,
                                                               const InsertAbandon& abandon) {
  // Serialize outside the table mutex; only the small record header is built under it.
  const std::string body = chunk.SerializeAsString();
  PendingInsert pending;
  auto log = [&](uint64_t first_step_id, int64_t insert_time_ms) -> absl::Status {
    v1::StoredChunkRecord head;
    head.set_first_step_id(first_step_id);
    head.set_insert_time_unix_ms(insert_time_ms);
    std::string prefix = head.SerializeAsString();
    prefix.push_back(static_cast<char>((3 << 3) | 2));  // field 3 (chunk), length-delimited
    AppendVarint(body.size(), &prefix);
    ASSIGN_OR_RETURN(uint64_t lsn, wal_->Append(prefix, body));
    pending.lsn = lsn;
    return absl::OkStatus();
  };
  ASSIGN_OR_RETURN(InsertResult result, table_->Insert(chunk, deadline, log, abandon));
  pending.result = result;
  // A retransmitted chunk is acknowledged once its first copy is durable: that copy may still be
  // in the WAL's unsynced tail (sent on a stream that broke before its acknowledgement).
  if (result.duplicate && wal_ != nullptr) pending.lsn = wal_->last_appended();
  if (!result.duplicate) {
    absl::MutexLock lock(&mu_);
    ++inserts_since_checkpoint_;
  }
  return pending;
}

absl::Status ReplayShard::WaitDurable(uint64_t lsn) {
  if (lsn == 0) return absl::OkStatus();
  return wal_->WaitDurable(lsn);
}

absl::Status ReplayShard::Checkpoint() {
  absl::MutexLock checkpoint_lock(&checkpoint_mu_);
  const absl::Time start = absl::Now();
  absl::StatusOr<uint64_t> new_index = absl::UnknownError("not rolled");
  Table::Snapshot snapshot = table_->TakeSnapshot([&] { new_index = wal_->Roll(); });
  if (!new_index.ok()) return new_index.status();
  {
    absl::MutexLock lock(&mu_);
    inserts_since_checkpoint_ = 0;
  }
  snapshot.header.set_wal_index(*new_index);
  const std::string dir = options_.data_dir;
  const std::string tmp = absl::StrCat(dir, "/", kCheckpointTmp);
  ASSIGN_OR_RETURN(std::unique_ptr<services::RecordWriter> writer,
                   services::RecordWriter::Create(tmp));
  RETURN_IF_ERROR(writer->Append(snapshot.header.SerializeAsString()));
  std::string payload;
  for (const std::shared_ptr<const StoredChunk>& chunk : snapshot.chunks) {
    v1::StoredChunkRecord record;
    RETURN_IF_ERROR(table_->ToRecord(*chunk, &record));
    record.SerializeToString(&payload);
    RETURN_IF_ERROR(writer->Append(payload));
  }
  RETURN_IF_ERROR(writer->Sync());
  RETURN_IF_ERROR(writer->Close());
  // The newest checkpoint becomes the previous one, then the new one takes its name: a crash in
  // between leaves the previous one, which Restore uses with the log after it.
  const std::string path = absl::StrCat(dir, "/", kCheckpoint);
  const std::string previous = absl::StrCat(dir, "/", kCheckpointPrevious);
  if (std::filesystem::exists(path) && std::rename(path.c_str(), previous.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("rename ", path, " to ", previous, " failed"));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(absl::StrCat("rename ", tmp, " to ", path, " failed"));
  }
  RETURN_IF_ERROR(services::SyncDirectory(dir));
  // Keep the log files after the checkpoint that is now the previous one (the fallback; the
  // whole log before the first checkpoint); older ones go.
  const uint64_t keep_from = checkpoint_wal_index_;
  for (const auto& [index, file] : WriteAheadLog::ListFiles(dir)) {
    if (index < keep_from) {
      std::error_code ignored;
      std::filesystem::remove(file, ignored);
    }
  }
  checkpoint_wal_index_ = *new_index;
  DF_LOG(INFO) << "checkpoint of " << snapshot.chunks.size() << " chunks written in "
               << absl::ToDoubleSeconds(absl::Now() - start) << " s";
  return absl::OkStatus();
}

void ReplayShard::CheckpointLoop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
      // The interval is the checkpoint period, not a synchronisation wait.
      if (mu_.AwaitWithTimeout(absl::Condition(&stopping), options_.checkpoint_interval)) return;
      if (inserts_since_checkpoint_ == 0) continue;
    }
    if (absl::Status s = Checkpoint(); !s.ok()) {
      DF_LOG(WARNING) << "checkpoint failed: " << s;
    }
  }
}

}  // namespace dreamfleet::replay
