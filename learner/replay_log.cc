#include "learner/replay_log.h"

#include <fcntl.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "services/durable_file.h"
#include "services/record_file.h"
#include "services/status_macros.h"

namespace dreamfleet::learner {
namespace {

namespace fs = std::filesystem;

constexpr size_t kTickHeaderBytes = 16;  // u64 env steps before the tick, u32 envs, u32 raw bytes
constexpr char kLayoutMagic[] = "DFRLOG1";  // + its NUL: 8 bytes, then 9 u32s
constexpr size_t kLayoutBytes = 8 + 9 * 4;
constexpr char kPrefix[] = "steps-";
constexpr char kSuffix[] = ".log";

void PutLe(uint64_t v, int bytes, std::string* out) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint64_t GetLe(const char* in, int bytes) {
  uint64_t v = 0;
  for (int i = 0; i < bytes; ++i) {
    v |= static_cast<uint64_t>(static_cast<uint8_t>(in[i])) << (8 * i);
  }
  return v;
}

void Put(const void* data, size_t bytes, std::string* out) {
  out->append(static_cast<const char*>(data), bytes);
}

std::string SegmentPath(const std::string& dir, int64_t first_env_step) {
  char name[64];
  std::snprintf(name, sizeof(name), "%s%012lld%s", kPrefix, static_cast<long long>(first_env_step),
                kSuffix);
  return (fs::path(dir) / name).string();
}

std::string LayoutRecord(const ReplayLogLayout& l) {
  std::string out(kLayoutMagic, sizeof(kLayoutMagic));
  for (int64_t v :
       {static_cast<int64_t>(l.shape.image_height), static_cast<int64_t>(l.shape.image_width),
        static_cast<int64_t>(l.shape.image_channels), static_cast<int64_t>(l.shape.vector_size),
        static_cast<int64_t>(l.shape.text_length), static_cast<int64_t>(l.envs), l.deter, l.stoch,
        l.classes}) {
    PutLe(static_cast<uint64_t>(v), 4, &out);
  }
  return out;
}

// The layout a segment's first record holds; false when it is not a layout record.
bool ParseLayout(const std::string& payload, ReplayLogLayout* l) {
  if (payload.size() != kLayoutBytes ||
      std::memcmp(payload.data(), kLayoutMagic, sizeof(kLayoutMagic)) != 0) {
    return false;
  }
  const char* in = payload.data() + sizeof(kLayoutMagic);
  const auto next = [&in] {
    const int v = static_cast<int>(GetLe(in, 4));
    in += 4;
    return v;
  };
  l->shape.image_height = next();
  l->shape.image_width = next();
  l->shape.image_channels = next();
  l->shape.vector_size = next();
  l->shape.text_length = next();
  l->envs = next();
  l->deter = next();
  l->stoch = next();
  l->classes = next();
  return true;
}

// One logged step decoded into buffers of its own (aligned for the record's pointers).
struct DecodedStep {
  std::vector<uint8_t> image;
  std::vector<float> vector;
  std::vector<int32_t> text;
  std::vector<float> deter, stoch;  // stoch one-hot [stoch x classes]
  services::StepRecord record;
};

// Reads one step of `layout` at `in` (step_bytes() bytes) into `out`.
void DecodeStep(const ReplayLogLayout& layout, const char* in, DecodedStep* out) {
  const services::StepShape& s = layout.shape;
  const auto take = [&in](void* dst, size_t bytes) {
    std::memcpy(dst, in, bytes);
    in += bytes;
  };
  services::StepRecord& r = out->record;
  r = services::StepRecord();
  const size_t image = static_cast<size_t>(s.image_height) * s.image_width * s.image_channels;
  if (image > 0) {
    out->image.resize(image);
    take(out->image.data(), image);
    r.image = out->image.data();
  }
  if (s.vector_size > 0) {
    out->vector.resize(s.vector_size);
    take(out->vector.data(), out->vector.size() * sizeof(float));
    r.vector = out->vector.data();
  }
  if (s.text_length > 0) {
    out->text.resize(s.text_length);
    take(out->text.data(), out->text.size() * sizeof(int32_t));
    r.text = out->text.data();
  }
  take(&r.action, sizeof(r.action));
  take(&r.reward, sizeof(r.reward));
  uint8_t flags = 0;
  take(&flags, 1);
  r.is_first = (flags & 1) != 0;
  r.is_last = (flags & 2) != 0;
  r.is_terminal = (flags & 4) != 0;
  out->deter.resize(layout.deter);
  if (layout.deter > 0) take(out->deter.data(), out->deter.size() * sizeof(float));
  out->stoch.assign(layout.stoch * layout.classes, 0.0f);
  for (int64_t v = 0; v < layout.stoch; ++v) {
    uint8_t index = 0;
    take(&index, 1);
    out->stoch[v * layout.classes + std::min<int64_t>(index, layout.classes - 1)] = 1.0f;
  }
}

absl::Status RemoveFile(const std::string& path) {
  std::error_code error;
  fs::remove(path, error);
  if (error) {
    return absl::InternalError(absl::StrCat("cannot delete ", path, ": ", error.message()));
  }
  return absl::OkStatus();
}

// Cuts the file at `path` to `size` bytes and syncs it, so cut ticks never come back.
absl::Status TruncateDurably(const std::string& path, uint64_t size) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) {
    return absl::InternalError(
        absl::StrCat("cannot open ", path, " to cut it: ", std::strerror(errno)));
  }
  int rc = ::ftruncate(fd, static_cast<off_t>(size));
  if (rc == 0) rc = ::fdatasync(fd);
  const int saved = errno;
  ::close(fd);
  if (rc != 0) {
    return absl::InternalError(
        absl::StrCat("cannot cut ", path, " to ", size, " bytes: ", std::strerror(saved)));
  }
  return absl::OkStatus();
}

// Counts the records left in `reader` (the cut ones).
int64_t CountRest(services::RecordReader& reader) {
  int64_t n = 0;
  std::string payload;
  while (true) {
    absl::StatusOr<bool> next = reader.Next(&payload);
    if (!next.ok()) {
      reader.Resync();
      continue;
    }
    if (!*next) return n;
    ++n;
  }
}

}  // namespace

int64_t ReplayLogLayout::step_bytes() const {
  return static_cast<int64_t>(shape.image_height) * shape.image_width * shape.image_channels +
         4 * static_cast<int64_t>(shape.vector_size) + 4 * static_cast<int64_t>(shape.text_length) +
         4 + 4 + 1 + 4 * deter + stoch;
}

std::string ReplayLogLayout::Describe() const {
  return absl::StrCat(envs, " envs; image ", shape.image_height, "x", shape.image_width, "x",
                      shape.image_channels, ", vector ", shape.vector_size, ", text ",
                      shape.text_length, "; latent ",
                      deter > 0 ? absl::StrCat(deter, " + ", stoch, "x", classes) : "none");
}

bool ReplayLogLayout::operator==(const ReplayLogLayout& o) const {
  return LayoutRecord(*this) == LayoutRecord(o);
}

absl::StatusOr<std::vector<std::pair<int64_t, std::string>>> ReplayLog::Segments(
    const std::string& dir) {
  std::vector<std::pair<int64_t, std::string>> segments;
  std::error_code error;
  if (!fs::exists(dir, error) && !error) return segments;
  fs::directory_iterator it(dir, error), end;
  for (; !error && it != end; it.increment(error)) {
    const std::string name = it->path().filename().string();
    const size_t prefix = sizeof(kPrefix) - 1, suffix = sizeof(kSuffix) - 1;
    if (name.size() <= prefix + suffix || name.size() > prefix + suffix + 18 ||
        name.compare(0, prefix, kPrefix) != 0 ||
        name.compare(name.size() - suffix, suffix, kSuffix) != 0) {
      continue;
    }
    const std::string digits = name.substr(prefix, name.size() - prefix - suffix);
    if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      continue;
    }
    segments.emplace_back(std::stoll(digits), it->path().string());
  }
  if (error) {
    return absl::InternalError(
        absl::StrCat("cannot list the replay log directory ", dir, ": ", error.message()));
  }
  std::sort(segments.begin(), segments.end());
  return segments;
}

absl::StatusOr<bool> ReplayLog::HoldsTicks(const std::string& dir) {
  ASSIGN_OR_RETURN(const auto segments, Segments(dir));
  std::string payload;
  ReplayLogLayout layout;
  for (const auto& segment : segments) {
    ASSIGN_OR_RETURN(std::unique_ptr<services::RecordReader> reader,
                     services::RecordReader::Open(segment.second));
    absl::StatusOr<bool> first = reader->Next(&payload);
    if (!first.ok() || (*first && !ParseLayout(payload, &layout))) return true;  // not ours alone
    if (!*first) continue;
    absl::StatusOr<bool> second = reader->Next(&payload);
    if (!second.ok() || *second) return true;
  }
  return false;
}

ReplayLog::ReplayLog(std::string dir, const ReplayLogLayout& layout, int64_t segment_ticks)
    : dir_(std::move(dir)), layout_(layout), segment_ticks_(segment_ticks) {}

ReplayLog::~ReplayLog() {
  if (writer_) writer_->Close().IgnoreError();
}

absl::StatusOr<std::unique_ptr<ReplayLog>> ReplayLog::Open(
    const std::string& dir, const ReplayLogLayout& layout, int64_t env_step, bool resume,
    const AddFn& add, ReplayLogResume* resumed, int64_t segment_ticks) {
  const bool latent =
      layout.deter > 0 && layout.stoch > 0 && layout.classes > 0 && layout.classes <= 256;
  const bool no_latent = layout.deter == 0 && layout.stoch == 0 && layout.classes == 0;
  if (layout.envs < 1 || segment_ticks < 1 || env_step < 0 || !(latent || no_latent)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "replay log ", dir,
        ": need envs >= 1, segment ticks >= 1, env step >= 0, a latent with "
        "deter, stoch and at most 256 classes or none; got ",
        layout.Describe(), ", ", segment_ticks, " ticks a segment, env step ", env_step));
  }
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) {
    return absl::InternalError(
        absl::StrCat("cannot create the replay log directory ", dir, ": ", error.message()));
  }
  std::unique_ptr<ReplayLog> log(new ReplayLog(dir, layout, segment_ticks));
  ReplayLogResume info;
  ASSIGN_OR_RETURN(const auto segments, Segments(dir));
  bool changed = false;  // files deleted or cut: the directory is synced
  if (!resume) {
    for (const auto& segment : segments) RETURN_IF_ERROR(RemoveFile(segment.second));
    changed = !segments.empty();
  } else {
    std::string payload;
    // Every segment's layout first: a log of another run is refused before anything changes.
    std::vector<bool> readable(segments.size(), false);
    for (size_t i = 0; i < segments.size(); ++i) {
      ASSIGN_OR_RETURN(std::unique_ptr<services::RecordReader> reader,
                       services::RecordReader::Open(segments[i].second));
      absl::StatusOr<bool> first = reader->Next(&payload);
      ReplayLogLayout logged;
      if (!first.ok() || !*first || !ParseLayout(payload, &logged)) continue;
      if (!(logged == layout)) {
        return absl::FailedPreconditionError(
            absl::StrCat("the replay log ", segments[i].second, " was written by a run with ",
                         logged.Describe(), "; this run has ", layout.Describe(),
                         ": resume with the settings it was written with, or move ", dir,
                         " away to start the replay empty"));
      }
      readable[i] = true;
    }
    const int64_t step_bytes = layout.step_bytes();
    const uint64_t raw_bytes = static_cast<uint64_t>(step_bytes) * layout.envs;
    std::string raw(raw_bytes, '\0');
    DecodedStep step;
    bool cut = false;  // from here on every tick is cut
    bool gap = false;  // ticks were lost before the next one: its steps start new episodes
    const auto damaged = [&info, &gap](std::string what) {
      if (info.damaged++ == 0) info.damage = std::move(what);
      gap = true;
    };
    for (size_t i = 0; i < segments.size(); ++i) {
      const std::string& path = segments[i].second;
      ASSIGN_OR_RETURN(std::unique_ptr<services::RecordReader> reader,
                       services::RecordReader::Open(path));
      if (cut || segments[i].first >= env_step) {
        // Every tick in it was logged at or after the resume step.
        info.cut += std::max<int64_t>(CountRest(*reader) - (readable[i] ? 1 : 0), 0);
        reader.reset();
        RETURN_IF_ERROR(RemoveFile(path));
        changed = true;
        cut = true;
        continue;
      }
      uint64_t after_layout = 0;
      if (readable[i]) {
        RETURN_IF_ERROR(reader->Next(&payload).status());  // the layout, checked above
        after_layout = reader->offset();
      }
      // Else the loop meets the damaged layout record first, skips it and reads the ticks after
      // it, whose headers say whether they fit this layout.
      while (true) {
        const uint64_t at = reader->offset();
        absl::StatusOr<bool> next = reader->Next(&payload);
        if (!next.ok()) {
          const std::string what(next.status().message());
          reader->Resync();
          if (reader->offset() >= reader->size() && i + 1 == segments.size()) {
            // A torn tail (a crash while the run wrote it): cut it off.
            ++info.torn;
            reader.reset();
            RETURN_IF_ERROR(at == 0 ? RemoveFile(path) : TruncateDurably(path, at));
            changed = true;
            break;
          }
          damaged(what);
          continue;
        }
        if (!*next) break;
        const int64_t env_steps_before = payload.size() >= kTickHeaderBytes
                                             ? static_cast<int64_t>(GetLe(payload.data(), 8))
                                             : -1;
        if (payload.size() < kTickHeaderBytes ||
            GetLe(payload.data() + 8, 4) != static_cast<uint64_t>(layout.envs) ||
            GetLe(payload.data() + 12, 4) != raw_bytes) {
          damaged(absl::StrCat(path, ": the record at byte ", at, " is not a tick of this layout"));
          continue;
        }
        if (env_steps_before >= env_step) {
          cut = true;
          info.cut += 1 + CountRest(*reader);
          reader.reset();
          RETURN_IF_ERROR(at <= after_layout ? RemoveFile(path) : TruncateDurably(path, at));
          changed = true;
          break;
        }
        uLongf out_bytes = static_cast<uLongf>(raw_bytes);
        const int z = uncompress(reinterpret_cast<Bytef*>(raw.data()), &out_bytes,
                                 reinterpret_cast<const Bytef*>(payload.data() + kTickHeaderBytes),
                                 static_cast<uLong>(payload.size() - kTickHeaderBytes));
        if (z != Z_OK || out_bytes != raw_bytes) {
          damaged(absl::StrCat(path, ": the record at byte ", at, " does not decompress (zlib ", z,
                               ")"));
          continue;
        }
        for (int e = 0; e < layout.envs; ++e) {
          DecodeStep(layout, raw.data() + e * step_bytes, &step);
          if (gap) step.record.is_first = true;
          add(e, step.record, layout.deter > 0 ? step.deter.data() : nullptr,
              layout.deter > 0 ? step.stoch.data() : nullptr);
        }
        gap = false;
        if (info.ticks == 0) info.first_env_step = env_steps_before;
        info.last_env_step = env_steps_before;
        ++info.ticks;
      }
    }
  }
  if (changed) RETURN_IF_ERROR(services::SyncDirectory(dir));
  RETURN_IF_ERROR(log->StartSegment(env_step));
  if (resumed != nullptr) *resumed = info;
  return log;
}

absl::Status ReplayLog::StartSegment(int64_t first_env_step) {
  if (writer_) {
    RETURN_IF_ERROR(writer_->Sync());
    RETURN_IF_ERROR(writer_->Close());
    writer_.reset();
  }
  ASSIGN_OR_RETURN(writer_, services::RecordWriter::Create(SegmentPath(dir_, first_env_step)));
  segment_first_ = first_env_step;
  ticks_in_segment_ = 0;
  RETURN_IF_ERROR(writer_->Append(LayoutRecord(layout_)));
  RETURN_IF_ERROR(writer_->Sync());
  return services::SyncDirectory(dir_);  // the new file's name survives a crash
}

absl::Status ReplayLog::Append(int64_t env_steps_before,
                               const std::vector<services::StepRecord>& steps, const float* deter,
                               const float* stoch) {
  const services::StepShape& s = layout_.shape;
  if (static_cast<int>(steps.size()) != layout_.envs || (layout_.deter > 0) != (deter != nullptr) ||
      (layout_.deter > 0) != (stoch != nullptr)) {
    return absl::InvalidArgumentError(
        absl::StrCat("replay log: a tick of ", steps.size(), " steps", deter ? " with" : " without",
                     " a latent; the log holds ", layout_.Describe()));
  }
  raw_.clear();
  const size_t image = static_cast<size_t>(s.image_height) * s.image_width * s.image_channels;
  for (size_t e = 0; e < steps.size(); ++e) {
    const services::StepRecord& r = steps[e];
    if ((image > 0 && r.image == nullptr) || (s.vector_size > 0 && r.vector == nullptr) ||
        (s.text_length > 0 && r.text == nullptr)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "replay log: env ", e, "'s step lacks an observation of ", layout_.Describe()));
    }
    if (image > 0) Put(r.image, image, &raw_);
    if (s.vector_size > 0) Put(r.vector, sizeof(float) * s.vector_size, &raw_);
    if (s.text_length > 0) Put(r.text, sizeof(int32_t) * s.text_length, &raw_);
    Put(&r.action, sizeof(r.action), &raw_);
    Put(&r.reward, sizeof(r.reward), &raw_);
    const uint8_t flags = (r.is_first ? 1 : 0) | (r.is_last ? 2 : 0) | (r.is_terminal ? 4 : 0);
    Put(&flags, 1, &raw_);
    if (layout_.deter > 0) {
      Put(deter + e * layout_.deter, sizeof(float) * layout_.deter, &raw_);
      // The one-hot sample as its class indices.
      const float* one_hot = stoch + e * layout_.stoch * layout_.classes;
      for (int64_t v = 0; v < layout_.stoch; ++v) {
        const float* row = one_hot + v * layout_.classes;
        raw_.push_back(static_cast<char>(std::max_element(row, row + layout_.classes) - row));
      }
    }
  }
  if (!writer_ || ticks_in_segment_ >= segment_ticks_) {
    RETURN_IF_ERROR(StartSegment(env_steps_before));
  }
  compressed_.clear();
  PutLe(static_cast<uint64_t>(env_steps_before), 8, &compressed_);
  PutLe(static_cast<uint64_t>(layout_.envs), 4, &compressed_);
  PutLe(raw_.size(), 4, &compressed_);
  uLongf bound = compressBound(static_cast<uLong>(raw_.size()));
  compressed_.resize(kTickHeaderBytes + bound);
  const int z =
      compress2(reinterpret_cast<Bytef*>(compressed_.data() + kTickHeaderBytes), &bound,
                reinterpret_cast<const Bytef*>(raw_.data()), static_cast<uLong>(raw_.size()), 1);
  if (z != Z_OK) {
    return absl::InternalError(absl::StrCat("replay log: zlib compress failed (", z, ")"));
  }
  compressed_.resize(kTickHeaderBytes + bound);
  RETURN_IF_ERROR(writer_->Append(compressed_));
  ++ticks_in_segment_;
  return absl::OkStatus();
}

absl::Status ReplayLog::Sync() { return writer_ ? writer_->Sync() : absl::OkStatus(); }

absl::StatusOr<int> ReplayLog::Prune(int64_t keep_from) {
  ASSIGN_OR_RETURN(const auto segments, Segments(dir_));
  int deleted = 0;
  for (size_t i = 0; i + 1 < segments.size(); ++i) {
    // Segment i holds ticks before the next one's first; all of them are older than keep_from.
    if (segments[i + 1].first > keep_from) break;
    if (writer_ && segments[i].first == segment_first_) break;
    RETURN_IF_ERROR(RemoveFile(segments[i].second));
    ++deleted;
  }
  if (deleted > 0) RETURN_IF_ERROR(services::SyncDirectory(dir_));
  return deleted;
}

}  // namespace dreamfleet::learner
