#include "services/record_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace dreamfleet::services {
namespace {

constexpr uint32_t kMaxRecordBytes = 1u << 31;

absl::Status ErrnoError(const char* what, const std::string& path) {
  return absl::InternalError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

void PutU32(char* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out[i] = static_cast<char>((v >> (8 * i)) & 0xff);
}
uint32_t GetU32(const char* in) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(in[i])) << (8 * i);
  return v;
}

}  // namespace

uint32_t Crc32(std::string_view prefix, std::string_view body) {
  // zlib returns 0 for a null buffer (its "initial value" idiom), so empty parts are skipped.
  uLong crc = crc32(0L, Z_NULL, 0);
  if (!prefix.empty()) {
    crc = crc32_z(crc, reinterpret_cast<const Bytef*>(prefix.data()), prefix.size());
  }
  if (!body.empty()) {
    crc = crc32_z(crc, reinterpret_cast<const Bytef*>(body.data()), body.size());
  }
  return static_cast<uint32_t>(crc);
}

absl::StatusOr<std::unique_ptr<RecordWriter>> RecordWriter::Create(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("create", path);
  return std::unique_ptr<RecordWriter>(new RecordWriter(path, fd));
}

RecordWriter::~RecordWriter() {
  if (fd_ >= 0) ::close(fd_);
}

absl::Status RecordWriter::Append(std::string_view prefix, std::string_view body) {
  if (fd_ < 0) return absl::FailedPreconditionError(absl::StrCat(path_, " is closed"));
  const uint64_t length = prefix.size() + body.size();
  if (length == 0) return absl::InvalidArgumentError("an empty record cannot be written");
  if (length >= kMaxRecordBytes) {
    return absl::InvalidArgumentError(absl::StrCat("record of ", length, " bytes is too large"));
  }
  char header[8];
  PutU32(header, static_cast<uint32_t>(length));
  PutU32(header + 4, Crc32(prefix, body));
  iovec parts[3] = {{header, sizeof(header)},
                    {const_cast<char*>(prefix.data()), prefix.size()},
                    {const_cast<char*>(body.data()), body.size()}};
  int first = 0;
  while (first < 3) {
    const ssize_t n = ::writev(fd_, parts + first, 3 - first);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoError("write", path_);
    }
    size_t left = static_cast<size_t>(n);
    bytes_ += left;
    while (first < 3 && left >= parts[first].iov_len) {
      left -= parts[first].iov_len;
      ++first;
    }
    if (first < 3) {
      parts[first].iov_base = static_cast<char*>(parts[first].iov_base) + left;
      parts[first].iov_len -= left;
    }
  }
  return absl::OkStatus();
}

absl::Status RecordWriter::Sync() {
  if (fd_ < 0) return absl::OkStatus();
  if (::fdatasync(fd_) != 0) return ErrnoError("fdatasync", path_);
  return absl::OkStatus();
}

absl::Status RecordWriter::Close() {
  if (fd_ < 0) return absl::OkStatus();
  const int rc = ::close(fd_);
  fd_ = -1;
  if (rc != 0) return ErrnoError("close", path_);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<RecordReader>> RecordReader::Open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoError("open", path);
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    return ErrnoError("stat", path);
  }
  return std::unique_ptr<RecordReader>(new RecordReader(path, fd, st.st_size));
}

RecordReader::~RecordReader() {
  if (fd_ >= 0) ::close(fd_);
}

bool RecordReader::ReadExact(char* out, size_t n, uint64_t at) {
  size_t done = 0;
  while (done < n) {
    const ssize_t r = ::pread(fd_, out + done, n - done, at + done);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return false;
    done += r;
  }
  return true;
}

absl::StatusOr<bool> RecordReader::Next(std::string* payload) {
  if (offset_ == size_) return false;
  char header[8];
  if (size_ - offset_ < sizeof(header) || !ReadExact(header, sizeof(header), offset_)) {
    return absl::DataLossError(absl::StrCat(path_, ": torn record header at byte ", offset_,
                                            " (file has ", size_, " bytes)"));
  }
  const uint32_t length = GetU32(header);
  const uint32_t crc = GetU32(header + 4);
  if (length == 0) {  // never written; a run of zero bytes (a zero-filled tail) looks like one
    return absl::DataLossError(absl::StrCat(path_, ": empty record at byte ", offset_));
  }
  if (length >= kMaxRecordBytes || size_ - offset_ - sizeof(header) < length) {
    return absl::DataLossError(absl::StrCat(path_, ": record at byte ", offset_, " claims ", length,
                                            " bytes but the file ends at ", size_));
  }
  payload->resize(length);
  if (!ReadExact(payload->data(), length, offset_ + sizeof(header))) {
    return absl::DataLossError(absl::StrCat(path_, ": short read at byte ", offset_));
  }
  if (Crc32(*payload) != crc) {
    return absl::DataLossError(
        absl::StrCat(path_, ": checksum mismatch in the record at byte ", offset_));
  }
  offset_ += sizeof(header) + length;
  return true;
}

bool RecordReader::ValidAt(uint64_t at, uint64_t* bytes) {
  char header[8];
  if (size_ - at < sizeof(header) || !ReadExact(header, sizeof(header), at)) return false;
  const uint32_t length = GetU32(header);
  if (length == 0 || length >= kMaxRecordBytes || size_ - at - sizeof(header) < length) {
    return false;
  }
  std::string payload(length, '\0');
  if (!ReadExact(payload.data(), length, at + sizeof(header))) return false;
  if (Crc32(payload) != GetU32(header + 4)) return false;
  *bytes = sizeof(header) + length;
  return true;
}

uint64_t RecordReader::Resync() {
  const uint64_t damaged = offset_;
  uint64_t bytes = 0;
  // A damaged payload under an intact length: the next record starts right after it.
  char header[8];
  if (size_ - damaged >= sizeof(header) && ReadExact(header, sizeof(header), damaged)) {
    const uint64_t next = damaged + sizeof(header) + GetU32(header);
    if (next == size_ || (next < size_ && ValidAt(next, &bytes))) {
      offset_ = next;
      return next - damaged;
    }
  }
  for (uint64_t at = damaged + 1; at + sizeof(header) <= size_; ++at) {
    if (ValidAt(at, &bytes)) {
      offset_ = at;
      return at - damaged;
    }
  }
  offset_ = size_;
  return size_ - damaged;
}

}  // namespace dreamfleet::services
