// Append-only record files: the replay shard's write-ahead log and checkpoints, the
// single-process trainer's replay log (learner/replay_log.h). Each record is
// [u32 length][u32 CRC-32 of the payload][payload], little endian; payloads are never empty (so
// a run of zero bytes is never taken for records). A reader reports a record that
// runs past the end of the file or fails its checksum as DATA_LOSS with the byte offset, so a
// torn tail left by a crash is detected and dropped rather than parsed, and a damaged record in
// the middle costs only itself: the reader resynchronises on the next valid record.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace dreamfleet::services {

class RecordWriter {
 public:
  // Creates (truncating) `path`.
  static absl::StatusOr<std::unique_ptr<RecordWriter>> Create(const std::string& path);
  ~RecordWriter();
  RecordWriter(const RecordWriter&) = delete;
  RecordWriter& operator=(const RecordWriter&) = delete;

  // Writes one record whose payload is `prefix` followed by `body` (one writev).
  absl::Status Append(std::string_view prefix, std::string_view body = {});
  absl::Status Sync();  // fdatasync
  absl::Status Close();
  int fd() const { return fd_; }
  uint64_t bytes() const { return bytes_; }
  const std::string& path() const { return path_; }

 private:
  RecordWriter(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}
  std::string path_;
  int fd_ = -1;
  uint64_t bytes_ = 0;
};

class RecordReader {
 public:
  static absl::StatusOr<std::unique_ptr<RecordReader>> Open(const std::string& path);
  ~RecordReader();
  RecordReader(const RecordReader&) = delete;
  RecordReader& operator=(const RecordReader&) = delete;

  // The next record: true with `payload` set; false at a clean end of file; DATA_LOSS for a
  // torn or corrupt record (the reader stays at its start).
  absl::StatusOr<bool> Next(std::string* payload);
  // After Next returned DATA_LOSS: moves to the first valid record past the damaged one (the one
  // right after it when its length survived, else the first offset, byte by byte, where a record
  // with a plausible length and a matching checksum starts). Returns the bytes skipped; when no
  // valid record follows (a torn tail), moves to the end of the file and skips the rest.
  uint64_t Resync();
  uint64_t offset() const { return offset_; }
  uint64_t size() const { return size_; }

 private:
  // Whether a whole record with a matching checksum starts at `at` (its total size in *bytes).
  bool ValidAt(uint64_t at, uint64_t* bytes);
  bool ReadExact(char* out, size_t n, uint64_t at);
  RecordReader(std::string path, int fd, uint64_t size)
      : path_(std::move(path)), fd_(fd), size_(size) {}
  std::string path_;
  int fd_ = -1;
  uint64_t size_ = 0;
  uint64_t offset_ = 0;
};

uint32_t Crc32(std::string_view prefix, std::string_view body = {});

}  // namespace dreamfleet::services
