#include "replay_server/write_ahead_log.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "services/durable_file.h"
#include "services/logging.h"
#include "services/status_macros.h"

namespace dreamfleet::replay {

std::string WriteAheadLog::FileName(const std::string& dir, uint64_t index) {
  return absl::StrFormat("%s/wal-%020d.log", dir, index);
}

std::string WriteAheadLog::HeaderPayload(uint64_t index) {
  std::string payload(kHeaderMagic, sizeof(kHeaderMagic) - 1);
  for (int i = 0; i < 8; ++i) payload.push_back(static_cast<char>((index >> (8 * i)) & 0xff));
  return payload;
}

bool WriteAheadLog::ParseHeader(std::string_view payload, uint64_t* index) {
  constexpr size_t kMagic = sizeof(kHeaderMagic) - 1;
  if (payload.size() != kMagic + 8 || payload.substr(0, kMagic) != kHeaderMagic) return false;
  *index = 0;
  for (int i = 0; i < 8; ++i) {
    *index |= static_cast<uint64_t>(static_cast<uint8_t>(payload[kMagic + i])) << (8 * i);
  }
  return true;
}

namespace {

// Creates wal-<index>.log holding only its header, synced, under a temporary name first so the
// file never exists without its header.
absl::StatusOr<std::unique_ptr<services::RecordWriter>> CreateLogFile(const std::string& dir,
                                                                      uint64_t index) {
  const std::string path = WriteAheadLog::FileName(dir, index);
  const std::string tmp = path + ".tmp";
  ASSIGN_OR_RETURN(std::unique_ptr<services::RecordWriter> writer,
                   services::RecordWriter::Create(tmp));
  RETURN_IF_ERROR(writer->Append(WriteAheadLog::HeaderPayload(index)));
  RETURN_IF_ERROR(writer->Sync());
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return absl::InternalError(
        absl::StrCat("rename ", tmp, " to ", path, " failed: ", std::strerror(errno)));
  }
  RETURN_IF_ERROR(services::SyncDirectory(dir));
  return writer;
}

}  // namespace

std::vector<std::pair<uint64_t, std::string>> WriteAheadLog::ListFiles(const std::string& dir) {
  std::vector<std::pair<uint64_t, std::string>> files;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) return files;
  while (dirent* entry = ::readdir(d)) {
    const std::string name = entry->d_name;
    if (!absl::StartsWith(name, "wal-") || !absl::EndsWith(name, ".log")) continue;
    uint64_t index;
    if (!absl::SimpleAtoi(name.substr(4, name.size() - 8), &index)) continue;
    files.emplace_back(index, absl::StrCat(dir, "/", name));
  }
  ::closedir(d);
  std::sort(files.begin(), files.end());
  return files;
}

WriteAheadLog::WriteAheadLog(std::string dir, absl::Duration fsync_interval,
                             services::Metrics* metrics)
    : dir_(std::move(dir)), fsync_interval_(fsync_interval) {
  fsync_seconds_ = &metrics->Histogram("dreamfleet_replay_wal_fsync_seconds",
                                       "Latency of one write-ahead log fdatasync.",
                                       services::Metrics::LatencyBuckets());
}

absl::StatusOr<std::unique_ptr<WriteAheadLog>> WriteAheadLog::Open(const std::string& dir,
                                                                   uint64_t index,
                                                                   absl::Duration fsync_interval,
                                                                   services::Metrics* metrics) {
  ASSIGN_OR_RETURN(std::unique_ptr<services::RecordWriter> writer, CreateLogFile(dir, index));
  std::unique_ptr<WriteAheadLog> wal(new WriteAheadLog(dir, fsync_interval, metrics));
  {
    absl::MutexLock lock(&wal->mu_);
    wal->writer_ = std::move(writer);
    wal->index_ = index;
  }
  wal->syncer_ = std::thread([w = wal.get()] { w->SyncLoop(); });
  return wal;
}

WriteAheadLog::~WriteAheadLog() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  syncer_.join();
}

uint64_t WriteAheadLog::index() const {
  absl::MutexLock lock(&mu_);
  return index_;
}

uint64_t WriteAheadLog::last_appended() const {
  absl::MutexLock lock(&mu_);
  return written_;
}

absl::StatusOr<uint64_t> WriteAheadLog::Append(std::string_view prefix, std::string_view body) {
  absl::MutexLock lock(&mu_);
  if (!error_.ok()) return error_;
  if (absl::Status s = writer_->Append(prefix, body); !s.ok()) {
    error_ = s;  // a partial record may be on disk: nothing after it may be acknowledged
    return s;
  }
  return ++written_;
}

absl::Status WriteAheadLog::WaitDurable(uint64_t lsn) {
  absl::MutexLock lock(&mu_);
  auto done = [this, lsn]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return synced_ >= lsn || !error_.ok() || stop_;
  };
  mu_.Await(absl::Condition(&done));
  if (synced_ >= lsn) return absl::OkStatus();
  if (!error_.ok()) return error_;
  return absl::UnavailableError("the write-ahead log was closed before the record was synced");
}

void WriteAheadLog::SyncLoop() {
  while (true) {
    {
      absl::MutexLock lock(&mu_);
      auto pending = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stop_ || (written_ > synced_ && error_.ok());
      };
      mu_.Await(absl::Condition(&pending));
      if (stop_ && (written_ == synced_ || !error_.ok())) return;
      if (!stop_ && fsync_interval_ > absl::ZeroDuration()) {
        // Let more records join this fsync (group commit); wakes early on shutdown.
        auto stopping = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_; };
        mu_.AwaitWithTimeout(absl::Condition(&stopping), fsync_interval_);
      }
    }
    absl::MutexLock io_lock(&io_mu_);
    int fd;
    uint64_t target;
    {
      absl::MutexLock lock(&mu_);
      fd = writer_->fd();
      target = written_;
    }
    const absl::Time start = absl::Now();
    const bool ok = ::fdatasync(fd) == 0;
    fsync_seconds_->Observe(absl::ToDoubleSeconds(absl::Now() - start));
    absl::MutexLock lock(&mu_);
    if (ok) {
      synced_ = std::max(synced_, target);
    } else {
      error_ = absl::InternalError(absl::StrCat("fdatasync of the write-ahead log failed: ",
                                                std::strerror(errno)));
      DF_LOG(ERROR) << error_.message();
    }
  }
}

absl::StatusOr<uint64_t> WriteAheadLog::Roll() {
  absl::MutexLock io_lock(&io_mu_);
  absl::MutexLock lock(&mu_);
  if (!error_.ok()) return error_;
  if (absl::Status s = writer_->Sync(); !s.ok()) {
    error_ = s;
    return s;
  }
  synced_ = written_;
  ASSIGN_OR_RETURN(std::unique_ptr<services::RecordWriter> next, CreateLogFile(dir_, index_ + 1));
  (void)writer_->Close();
  writer_ = std::move(next);
  return ++index_;
}

}  // namespace dreamfleet::replay
